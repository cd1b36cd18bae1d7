"""Injected faults: a lost worker or an out-of-memory is retried elsewhere; a layout's own failure is
recorded at once; nothing is evaluated or counted twice."""

import os

import pytest

from search.backends import run_with_retries
from search.evaluators import EvalOutcome, transient_outcome
from search.evaluators.fake import FAKE_FAULT_ENV
from search.results.leaderboard import read_leaderboard
from tests.search.helpers import evaluated_trials, same_leaderboard

SEARCH = ("--depth", "3", "--budget", "8", "--final-seeds", "0")


class _Scripted:
    """A backend answering each job from a script of outcomes (``"ok"``, ``"lost"``, ``"bad"``)."""

    def __init__(self, script: dict[str, list[str]]):
        self.script, self.calls = script, []

    def run(self, jobs):
        out = []
        for pattern, _ in jobs:
            self.calls.append(pattern)
            kind = self.script[pattern].pop(0) if len(self.script[pattern]) > 1 else self.script[pattern][0]
            if kind == "lost":
                out.append(transient_outcome((pattern, None), "WorkerLost: a worker process died"))
            else:
                out.append(EvalOutcome(pattern, None, None if kind == "ok" else "ValueError: bad layout", 0, 0))
        return out


def test_transient_failures_are_retried_and_layout_failures_are_not():
    backend = _Scripted({"AM": ["lost", "lost", "ok"], "MA": ["bad"], "AA": ["lost"]})
    out = run_with_retries(backend, [("AM", None), ("MA", None), ("AA", None)], retries=2)
    assert [o.error for o in out[:2]] == [None, "ValueError: bad layout"]
    assert out[2].error == "WorkerLost: a worker process died (gave up after 3 attempts)"
    assert not any(o.transient for o in out)
    assert backend.calls.count("AM") == 3 and backend.calls.count("MA") == 1 and backend.calls.count("AA") == 3






def test_a_worker_killed_mid_evaluation_is_redone_and_counted_once(cli, tmp_path, monkeypatch):
    clean = tmp_path / "runs" / "clean"
    assert cli(*SEARCH, "--name", "clean", "--workers", "2") == 0
    marker = tmp_path / "killed-once"
    monkeypatch.setenv(FAKE_FAULT_ENV, f"exit:{marker}:AMA")
    assert cli(*SEARCH, "--name", "killed", "--workers", "2") == 0
    assert marker.exists(), "the fault should have fired"
    killed = tmp_path / "runs" / "killed"
    same_leaderboard(read_leaderboard(clean), read_leaderboard(killed))
    keys = evaluated_trials(killed)
    assert len(keys) == len(set(keys)) == len(evaluated_trials(clean))


def test_out_of_memory_is_retried_then_recorded(cli, tmp_path, monkeypatch):
    monkeypatch.setenv(FAKE_FAULT_ENV, f"oom:{tmp_path / 'oom-1'}:AMA")
    assert cli(*SEARCH, "--name", "retried") == 0
    df = read_leaderboard(tmp_path / "runs" / "retried")
    assert (df.status == "ok").all() and (df.pattern == "AMA").sum() == 1

    monkeypatch.setenv(FAKE_FAULT_ENV, f"oom:{tmp_path / 'oom-2'}:AMA")
    assert cli(*SEARCH, "--name", "no-retry", "--max-retries", "0") == 0
    row = read_leaderboard(tmp_path / "runs" / "no-retry").query("pattern == 'AMA'").iloc[0]
    assert row.status == "error" and row.error.startswith("MemoryError: injected")
    assert row.error.endswith("(gave up after 1 attempts)")


def test_a_layout_that_fails_by_itself_is_recorded_at_once(cli, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(FAKE_FAULT_ENV, f"error:{os.devnull}:MAM")
    with caplog.at_level("WARNING", logger="search.backends"):
        assert cli(*SEARCH, "--name", "bad") == 0
    row = read_leaderboard(tmp_path / "runs" / "bad").query("pattern == 'MAM'").iloc[0]
    assert row.status == "error" and row.error == "ValueError: injected deterministic failure of MAM"
    assert not any("retrying" in r.message for r in caplog.records)


@pytest.mark.parametrize("value", ["-1"])
def test_negative_retries_are_refused(cli, value, capsys):
    assert cli(*SEARCH, "--name", "x", "--max-retries", value) == 2
    assert "--max-retries" in capsys.readouterr().err
