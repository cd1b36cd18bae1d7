"""The typed result records: a row survives every form it is stored in (the Optuna attribute, the
leaderboard parquet), rows written by older versions still load, and unknown columns are kept."""



from search.results.leaderboard import COLUMNS, rows_to_frame
from search.results.records import Row, Target
from search.results.reports import StageWinner, WinnerChoice


def _stored(**over):
    row = {c: None for c in COLUMNS}
    row.update(run="r", study="r/stage0", phase="search", stage=0, trial_number=3, eval_index=4, search_seed=5,
               sampler="random", arch_id="1A1M-abc", pattern="AM", run_length="1A1M", n_layers=2, protocol="cpu",
               seed=5, status="ok", score=0.25, tasks={"recall": 0.5, "copy": 0.0}, tasks_json="{}",
               target_pattern="AMAM", target_params=10, target_match="params", target_param_ratio=1.01)
    row.update(over)
    return row


def test_row_round_trips_through_its_stored_form():
    d = _stored(rung=2)
    row = Row.from_dict(d)
    assert row.rung == 2 and row.target == Target.from_columns(d) and row.target.param_ratio == 1.01
    assert row.tasks == {"recall": 0.5, "copy": 0.0} and row.ok
    assert Row.from_dict(row.to_dict()) == row
    assert set(row.to_dict()) == set(COLUMNS) | {"tasks"}


def test_row_reads_back_from_the_leaderboard_frame():
    rows = [Row.from_dict(_stored()), Row.from_dict(_stored(eval_index=5, seed=6, score=None, status="error",
                                                            tasks={}))]
    frame = rows_to_frame(rows)
    back = Row.many(frame.to_dict("records"))
    assert [r.eval_index for r in back] == [4, 5] and back[0].tasks == {"recall": 0.5, "copy": 0.0}
    assert back[1].tasks == {} and back[1].score is None and not back[1].ok  # NaN read back as missing
    assert isinstance(back[0].seed, int) and back[0].target.pattern == "AMAM"


def test_an_older_row_loads_and_unknown_columns_are_kept():
    old = {k: v for k, v in _stored().items() if k not in ("rung", "target_match", "target_param_ratio")}
    old["legacy_note"] = "written by an older version"
    row = Row.from_dict(old)
    assert row.rung is None and row.target.match is None and row.target.param_ratio is None
    assert row.extra == {"legacy_note": "written by an older version"}
    assert row.to_dict()["legacy_note"] == "written by an older version"
    assert "legacy_note" in rows_to_frame([row]).columns


def test_report_records_serialise_as_before():
    won = StageWinner(pattern="AM", aggregation={"method": "kmeans"}, note=None, cluster_min_score=0.5,
                      cluster=("AM", "MA"))
    assert StageWinner.from_dict(won.to_dict()) == won and won.to_dict()["cluster"] == ["AM", "MA"]
    assert WinnerChoice().to_dict() == {"source": "aggregate"}
    assert WinnerChoice("best", "why").to_dict() == {"source": "best", "reason": "why"}
