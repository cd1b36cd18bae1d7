"""experiments/grid_check.py on synthetic tables: the chosen rate against its neighbours at a longer budget."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from tests.scripts import load_script

grid_check = load_script("grid_check.py")

T = 4_001_792


def _fair(rows):
    return pd.DataFrame([dict(layout=l, tokens=T, seed=0, status="ok", lr=lr, dev_loss=d, val_loss=v)
                         for l, lr, d, v in rows])


def _grid(rows):
    return pd.DataFrame([dict(layout=l, tokens=T, seed=0, status=s, lr=lr, dev_loss=d)
                         for l, lr, d, s in rows])


def _truth(rows):
    return pd.DataFrame([dict(layout=l, tokens=T, seed=0, lr=lr, val_loss=v) for l, lr, v in rows],
                        columns=["layout", "tokens", "seed", "lr", "val_loss"])


def _written(prefix: Path, suffix: str) -> str:
    """What the script wrote beside its ``<out>`` prefix (``<out>.md``, ``<out>.json``)."""
    return prefix.with_name(prefix.name + suffix).read_text()


def test_the_main_rate_still_best_costs_nothing_and_is_bracketed():
    fair = _fair([("AAMM", 2.5e-4, 1.42, 1.51)])
    grid = _grid([("AAMM", 1.25e-4, 1.45, "ok"), ("AAMM", 5e-4, 1.43, "ok")])
    c = grid_check.check_layout(fair, grid, _truth([("AAMM", 5e-4, 1.52)]), "AAMM", T, 0)
    assert (c.best_rate, c.steps_moved, c.shortcut_cost, c.bracketed) == (2.5e-4, 0.0, 0.0, True)
    assert c.best_val_loss == 1.51  # the fair study's own run


def test_a_neighbour_that_wins_moves_the_rate_and_prices_the_shortcut():
    fair = _fair([("MMAA", 2e-3, 1.45, 1.55)])
    grid = _grid([("MMAA", 1e-3, 1.40, "ok"), ("MMAA", 4e-3, 1.60, "ok")])
    c = grid_check.check_layout(fair, grid, _truth([("MMAA", 1e-3, 1.50)]), "MMAA", T, 0)
    assert c.best_rate == 1e-3 and c.steps_moved == -1.0
    assert c.shortcut_cost == pytest.approx(0.05)
    assert not c.bracketed  # the lowest rate tried: the best may lie further down
    assert c.best_val_loss == 1.50  # the neighbour study's chosen run


def test_a_diverged_or_missing_neighbour_leaves_the_layout_waiting():
    fair = _fair([("MMAA", 2e-3, 1.45, 1.55)])
    grid = _grid([("MMAA", 1e-3, math.nan, "diverged")])
    assert grid_check.check_layout(fair, grid, _truth([]), "MMAA", T, 0) is None


def test_the_pair_at_best_rates_uses_the_pooled_sd(tmp_path):
    a = grid_check.LayoutCheck("A", T, 0, 1e-3, {1e-3: 1.0}, 1e-3, 0.0, 0.0, 1.50, True)
    b = grid_check.LayoutCheck("B", T, 0, 1e-3, {1e-3: 1.0}, 1e-3, 0.0, 0.0, 1.46, True)
    p = grid_check.pair_at_best(a, b, 0.01, 6)
    assert p["mean"] == pytest.approx(0.04)
    assert p["se"] == pytest.approx(0.01 * math.sqrt(2))
    assert p["lo"] > 0 and p["significant"]


def test_the_script_writes_its_tables_from_committed_prefixes(tmp_path):
    fair = _fair([("AAMM", 2.5e-4, 1.42, 1.51), ("MMAA", 2e-3, 1.45, 1.55)])
    fair.to_parquet(tmp_path / "fair.parquet")
    (tmp_path / "fair_summary.json").write_text(json.dumps({"pairs": [
        {"tokens": T, "pooled": {"pooled_sd": 0.009, "df": 6}}]}))
    for layout, rows in {"AAMM": [(1.25e-4, 1.45), (5e-4, 1.43)], "MMAA": [(1e-3, 1.47), (4e-3, 1.52)]}.items():
        _grid([(layout, lr, d, "ok") for lr, d in rows]).to_parquet(tmp_path / f"g-{layout}_lr_grid.parquet")
    rc = grid_check.main([str(tmp_path / "fair"), str(tmp_path / "out"), str(tmp_path / "g-AAMM"),
                          str(tmp_path / "g-MMAA")])
    assert rc == 0
    out = json.loads(_written(tmp_path / "out", ".json"))
    (pair,) = out["pairs"]
    assert (pair["a"], pair["b"]) == ("MMAA", "AAMM")
    assert pair["mean"] == pytest.approx(0.04) and pair["df"] == 6
    assert "MMAA - AAMM = +0.0400" in _written(tmp_path / "out", ".md")


def test_a_layouts_rates_from_several_studies_are_read_together(tmp_path):
    """The neighbours in one study, the next rate out in another: one row with every rate."""
    _fair([("AAMM", 2.5e-4, 1.42, 1.51)]).to_parquet(tmp_path / "fair.parquet")
    (tmp_path / "fair_summary.json").write_text(json.dumps({"pairs": []}))
    _grid([("AAMM", 1.25e-4, 1.50, "ok"), ("AAMM", 5e-4, 1.38, "ok")]).to_parquet(tmp_path / "a_lr_grid.parquet")
    _truth([("AAMM", 5e-4, 1.47)]).to_parquet(tmp_path / "a.parquet")
    _grid([("AAMM", 1e-3, 1.39, "ok")]).to_parquet(tmp_path / "up_lr_grid.parquet")
    _truth([("AAMM", 1e-3, 1.48)]).to_parquet(tmp_path / "up.parquet")
    assert grid_check.main([str(tmp_path / "fair"), str(tmp_path / "out"), str(tmp_path / "a"),
                            str(tmp_path / "up")]) == 0
    (c,) = json.loads(_written(tmp_path / "out", ".json"))["layouts"]
    assert sorted(c["dev"]) == ["0.000125", "0.00025", "0.0005", "0.001"]
    assert (c["best_rate"], c["steps_moved"], c["bracketed"], c["best_val_loss"]) == (5e-4, 1.0, True, 1.47)
    assert c["shortcut_cost"] == pytest.approx(0.04)


def test_a_best_rate_its_study_has_not_scored_reads_the_kept_validation_score(tmp_path):
    """A cell with a rate still queued has no validation row; the score kept in <out>_val.json is used,
    and a run folder that is not here leaves it unscored instead of failing."""
    _fair([("MMAA", 2e-3, 1.45, 1.55)]).to_parquet(tmp_path / "fair.parquet")
    (tmp_path / "fair_summary.json").write_text(json.dumps({"pairs": []}))
    grid = _grid([("MMAA", 1e-3, 1.44, "ok")]).assign(key="MMAA/s0/t4000000/lr1e-03", folder="MMAA-lr1e-03")
    grid.to_parquet(tmp_path / "m_lr_grid.parquet")
    _grid([("MMAA", 5e-4, 1.46, "ok")]).assign(key="MMAA/s0/t4000000/lr5e-04", folder="f").to_parquet(
        tmp_path / "d_lr_grid.parquet")
    args = ["--runs-dir", str(tmp_path / "runs"), str(tmp_path / "fair"), str(tmp_path / "out"),
            str(tmp_path / "m"), str(tmp_path / "d")]
    assert grid_check.main(args) == 0
    (c,) = json.loads(_written(tmp_path / "out", ".json"))["layouts"]
    assert c["best_rate"] == 1e-3 and math.isnan(c["best_val_loss"])  # no folder, no stored score
    (tmp_path / "out_val.json").write_text(json.dumps({"MMAA/s0/t4000000/lr1e-03": 1.53}))
    assert grid_check.main(args) == 0
    (c,) = json.loads(_written(tmp_path / "out", ".json"))["layouts"]
    assert c["best_val_loss"] == 1.53 and c["steps_moved"] == -1.0
