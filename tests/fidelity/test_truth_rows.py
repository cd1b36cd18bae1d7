"""The typed rows of a fidelity study: their fields are the tables' columns, and rows stored by older
studies (before the learning-rate grid, size matching or remembered pairs) still load and rewrite unchanged."""

import dataclasses
import json
import math

import pandas as pd

from search.fidelity.table import GRID_COLUMNS, PROXY_COLUMNS, TRUTH_COLUMNS, StudyTables
from search.fidelity.truth_rows import GridRow, ProxyScore, StoredPlan, TruthRow

LEGACY_TRUTH = {  # a row of a fixed-rate study written before the grid and size matching (fidelity_small)
    "key": "AMAM/s0/t1000", "layout": "AMAM", "n_attention": 2, "seed": 0, "tokens": 1024, "steps": 4,
    "scale": "small", "rule": "auto", "target_pattern": "AMAMAMAM", "arch_id": "4AM-abc123", "params": 1000,
    "non_embedding_params": 800, "val_loss": 2.5, "val_loss_se": 0.01, "val_bpb": 2.5 / math.log(2),
    "val_accuracy": 0.3, "val_tokens": 4096, "train_loss": 2.6, "wall_s": 10.0, "tokens_per_s": 100.0,
    "compile_s": 1.0, "status": "ok", "error": None, "device": "cpu:cpu", "finished_at": "2025-01-01T00:00:00+00:00",
}


def test_fields_are_the_table_columns_in_order():
    for record, columns in ((TruthRow, TRUTH_COLUMNS), (GridRow, GRID_COLUMNS), (ProxyScore, PROXY_COLUMNS)):
        assert tuple(f.name for f in dataclasses.fields(record)) == columns


def test_a_legacy_truth_row_reads_the_newer_fields_as_none_and_keeps_its_values():
    row = TruthRow.from_dict({**LEGACY_TRUTH, "a_column_from_nowhere": 1})
    assert row.lr is None and row.lr_source is None and row.match is None and row.tie_embeddings is None
    assert row.val_loss == 2.5 and row.key == "AMAM/s0/t1000"
    d = row.to_dict()
    assert tuple(d) == TRUTH_COLUMNS and {k: d[k] for k in LEGACY_TRUTH} == LEGACY_TRUTH
    assert TruthRow.from_dict(d) == row


def test_a_legacy_table_is_rewritten_with_the_same_values(tmp_path):
    """Loading a pre-grid table and rewriting it keeps every stored value and adds the newer columns empty."""
    pd.DataFrame([LEGACY_TRUTH, {**LEGACY_TRUTH, "key": "AMAM/s1/t1000", "seed": 1, "val_loss": 2.4}]).to_parquet(
        tmp_path / "fidelity.parquet", index=False)
    tables = StudyTables(tmp_path)
    assert [r.seed for r in tables.truth] == [0, 1] and tables.done() == {"AMAM/s0/t1000", "AMAM/s1/t1000"}
    tables.add_truth(tables.truth[0])
    after = pd.read_parquet(tmp_path / "fidelity.parquet")
    assert list(after.columns) == list(TRUTH_COLUMNS)
    assert after["lr"].isna().all() and after["lr_source"].isna().all()
    assert sorted(after["val_loss"]) == [2.4, 2.5] and list(after["key"]) == ["AMAM/s1/t1000", "AMAM/s0/t1000"]


def test_grid_and_proxy_rows_read_back_their_own_serialisation():
    grid = GridRow(key="AM/s0/t1/lr1e-03", cell="AM/s0/t1", layout="AM", seed=0, tokens=1, lr=1e-3, folder="AM-s0-t1",
                   status="diverged", error="nan")
    assert GridRow.from_dict(grid.to_dict()) == grid and grid.dev_loss is None
    old = ProxyScore.from_dict({"layout": "AM", "seed": 2, "score": 0.5, "protocol": "cpu"})  # no source, wall_s
    assert old.source is None and old.tasks_json is None and old.key == ("AM", 2, "cpu")


def test_an_older_plan_without_protocol_or_pairs_reads_with_defaults():
    plan = StoredPlan.from_dict({"layouts": ["AMAM", "MAMA"], "winner": "MAMA"})
    assert plan == StoredPlan(layouts=("AMAM", "MAMA"), winner="MAMA", proxy_protocol=None, pairs=())
    full = {"layouts": ["AMAM"], "winner": None, "proxy_protocol": "capacity", "pairs": [["AMAM", "MAMA"]]}
    assert StoredPlan.from_dict(full).to_dict() == full
    assert json.dumps(StoredPlan.from_dict(full).to_dict()) == json.dumps(full)  # same keys, same order


def test_summary_sections_serialise_in_the_stored_order():
    from search.fidelity.truth_report import build_summary

    rows = [TruthRow(key=f"{p}/s0/t1", layout=p, seed=0, tokens=1, status="ok", val_loss=v, val_loss_se=0.01,
                     target_pattern=p, non_embedding_params=1) for p, v in (("AM", 2.0), ("MA", 2.1), ("MM", 2.2))]
    proxy = [ProxyScore(layout=r.layout, seed=0, score=-r.val_loss, protocol="cpu") for r in rows]
    d = build_summary(rows, proxy, winner="MA", n_boot=20).to_dict()
    assert list(d) == ["settings", "main_tokens", "other_tokens", "runs", "proxy_protocols", "layouts", "correlation",
                       "per_task", "truth_noise", "budget_agreement", "winner_vs_llama", "pairs"]
    assert list(d["layouts"]["AM"])[-6:] == ["lr", "lr_at_edge", "dev_losses", "param_ratio", "flops_ratio",
                                             "val_loss_pooled_ci"]  # a newer field goes last
    assert math.isnan(d["layouts"]["AM"]["lr"]["0"])  # seed keys as JSON writes them; no rate stored
    assert list(d["winner_vs_llama"]) == ["winner", "llama", "val_loss_difference", "val_loss_difference_pooled",
                                          "proxy_difference"]
    same = build_summary(rows, proxy, winner="AM", n_boot=20).to_dict()["winner_vs_llama"]  # AM: Llama at depth 2
    assert same == {"winner": "AM", "llama": "AM", "note": "the winner is the Llama layout"}
