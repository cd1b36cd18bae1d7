"""The judge's records read back what older files stored, and serialise to the keys the report has always had."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from composer.errors import UsageError
from search.published.judge_records import Judgement, JudgeRow
from search.published.sets import Citation, Noise, resolve_sets

OLD_ROW = {"layout": "AMSM", "seed": np.int64(1), "protocol": "capacity", "status": "ok", "score": 0.5,
           "params": 1234, "tasks_json": '{"memorization": 0.5}', "error": None, "wall_s": 2.0, "compile_s": math.nan,
           "device": math.nan, "finished_at": "2026-01-01T00:00:00+00:00", "retired_column": 7}
"""A row written before ``source`` existed, as pandas gives it back: NaN cells, numpy ints, a stray column."""


def test_a_row_written_before_newer_columns_loads():
    row = JudgeRow.from_dict(OLD_ROW)
    assert row.source is None and row.compile_s is None and row.device is None  # missing or NaN: None
    assert row.seed == 1 and type(row.seed) is int and row.ok
    assert JudgeRow.from_dict({"layout": "AM", "seed": 0, "protocol": "cpu"}).status == "ok"
    assert JudgeRow.from_dict({**OLD_ROW, "status": None}).status is None  # an empty cell is not ok
    assert not JudgeRow.from_dict({**OLD_ROW, "score": math.nan}).ok
    assert JudgeRow.from_dict(row.to_dict()) == row
    assert "retired_column" not in row.to_dict() and list(row.to_dict())[:3] == ["layout", "seed", "protocol"]


def test_an_older_table_is_read_and_rewritten_with_every_column(tmp_path):
    from search.published.judge import COLUMNS, ROWS_FILE, _Rows

    pd.DataFrame([{k: v for k, v in OLD_ROW.items() if k != "retired_column"}]).to_parquet(tmp_path / ROWS_FILE)
    rows = _Rows(tmp_path)
    assert rows.get("AMSM", 1, "capacity").source is None
    rows.add(JudgeRow("AMAM", 0, "capacity", score=0.25, wall_s=1.0, source="evaluated"))
    df = pd.read_parquet(tmp_path / ROWS_FILE)
    assert tuple(df.columns) == COLUMNS and len(df) == 2 and df["source"].tolist()[1] == "evaluated"


def test_plan_entries_round_trip_and_a_damaged_plan_is_refused(tmp_path):
    from search.published.judge import PLAN_FILE, _stored_plan

    j = Judgement("samba2025_position", "capacity", 12, (0, 1), ("AM", "SM"))
    assert Judgement.from_dict(json.loads(json.dumps(j.to_dict()))) == j
    (tmp_path / PLAN_FILE).write_text(json.dumps({"judgements": [{**j.to_dict(), "depth": None}]}))
    assert _stored_plan(tmp_path)[0].depth is None
    broken = j.to_dict()
    del broken["layouts"]
    (tmp_path / PLAN_FILE).write_text(json.dumps({"judgements": [broken]}))
    with pytest.raises(UsageError, match="damaged"):
        _stored_plan(tmp_path)


def test_citation_and_noise_default_their_optional_fields():
    c = Citation.from_dict({"authors": "A, B", "year": 2024, "title": "T", "arxiv": "1234.5678"})
    assert c.version == "" and c.table == "" and c.to_dict()["arxiv"] == "1234.5678"
    n = Noise.from_dict({"kind": "none"})
    assert n.value is None and n.note == "" and n.other_set == ""
    assert Noise.from_dict({"kind": "seed_sd", "value": 1}).value == 1.0
    with pytest.raises(KeyError):
        Citation.from_dict({"authors": "A"})


def test_a_judgement_reports_its_statistics_only_once_four_layouts_are_scored():
    from search.published.judge_report import judge

    s = resolve_sets("samba2025_position")[0]
    j = Judgement(s.name, "p", None, (0,), tuple(row.layout for row in s.layouts))
    rows = [JudgeRow(lay, 0, "p", score=-row.value, wall_s=1.0) for row, lay in zip(s.layouts, j.layouts)]
    few = judge(s, j, rows[:3]).to_dict()
    assert "spearman" not in few and few["heuristic"] == {"name": s.heuristic} and few["n_scored"] == 3
    full = judge(s, j, rows).to_dict()
    assert list(full) == ["set", "protocol", "depth", "seeds", "n_layouts", "n_scored", "n_evaluated_layouts",
                          "complete", "heuristic", "ceiling", "cost", "mapping_ceiling", "spearman", "kendall",
                          "vs_heuristic", "beats_heuristic", "seed_agreement", "layouts"]
    assert full["spearman"]["value"] == pytest.approx(1.0) and full["seed_agreement"] is None
    assert full["layouts"][0]["scores"] == {"0": -s.layouts[0].value}  # JSON keys: the seed as a string
    assert json.loads(json.dumps(full)) == full
