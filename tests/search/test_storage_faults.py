"""Bad storage URLs, missing drivers, unreachable databases, unwritable run folders, heartbeat failures:
one line and exit 2 before any work, or a logged warning, never a traceback."""

import logging
import os
import socket
import time
import types

import optuna
import pytest

from search.heartbeat import Heartbeat


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket is closed


@pytest.mark.parametrize("url, message", [
    ("not a url", "is not a database URL"),
    ("foodb://x/y", "unknown database kind 'foodb'"),
    ("postgresql+pg8000://u:p@127.0.0.1:5432/db", "driver 'pg8000' is not installed"),
])
def test_bad_storage_is_one_line_exit_2_before_any_work(cli, tmp_path, capsys, url, message):
    assert cli("--budget", "2", "--storage", url, "--name", "s") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "runs" / "s" / "leaderboard.parquet").exists()


def test_unreachable_database_is_one_line_exit_2(cli, capsys):
    pytest.importorskip("psycopg2")
    url = f"postgresql+psycopg2://u:p@127.0.0.1:{_closed_port()}/db"
    assert cli("--budget", "2", "--storage", url, "--name", "s") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot open the database" in err[0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through any permission bits")
def test_unwritable_run_folder_is_one_line_exit_2(cli, tmp_path, capsys):
    runs = tmp_path / "ro"
    runs.mkdir(mode=0o500)
    assert cli("--budget", "2", "--runs-dir", str(runs), "--name", "s") == 2
    assert "is not writable" in capsys.readouterr().err


def test_run_folder_that_is_a_file_is_one_line_exit_2(cli, tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    assert cli("--budget", "2", "--runs-dir", str(tmp_path / "afile"), "--name", "s") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not writable" in err[0]


def test_heartbeat_failures_are_logged(caplog):
    class Broken:
        def get_trial(self, trial_id):
            return types.SimpleNamespace(state=optuna.trial.TrialState.RUNNING)

        def record_heartbeat(self, trial_id):
            raise RuntimeError("database is locked")

    with caplog.at_level(logging.WARNING, logger="composer.search"):
        with Heartbeat(Broken(), interval=0.05) as beat:
            beat._ids.add(7)  # tracked without the first synchronous beat, which would raise here

            time.sleep(0.3)
    assert beat.failures >= 2
    assert any("heartbeat of trial 7 failed" in r.getMessage() and "database is locked" in r.getMessage()
               for r in caplog.records)


def test_the_heartbeat_stops_by_itself_once_its_trial_is_finished(tmp_path):
    # A trial is tracked from the moment it is taken; one told while proposing (infeasible, known) is never
    # untracked by hand, and must not be beaten for the rest of the run.
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'hb.db'}", heartbeat_interval=1)
    study = optuna.create_study(storage=storage)
    live, told = study.ask(), study.ask()
    with Heartbeat(storage, interval=0.05) as beat:
        beat.track(live._trial_id)
        beat.track(told._trial_id)
        study.tell(told, state=optuna.trial.TrialState.FAIL)
        deadline = time.monotonic() + 10
        while told._trial_id in beat._ids and time.monotonic() < deadline:
            time.sleep(0.05)
        assert beat._ids == {live._trial_id} and beat.failures == 0


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "/abs"])
def test_run_names_cannot_leave_the_runs_folder(cli, tmp_path, capsys, name):
    assert cli("--budget", "2", "--name", name) == 2
    assert "--name: use letters, digits" in capsys.readouterr().err
    assert not (tmp_path / "escape").exists() and not (tmp_path / "runs").exists()


def test_a_full_disk_stops_before_any_evaluation_and_keeps_the_stored_run(cli, tmp_path, capsys, monkeypatch):
    import errno
    import pathlib

    import pandas as pd

    assert cli("--budget", "3", "--depth", "2", "--name", "s") == 0
    board = tmp_path / "runs" / "s" / "leaderboard.parquet"
    before = pd.read_parquet(board)
    stamp = board.stat().st_mtime_ns
    capsys.readouterr()

    real = pathlib.Path.write_text

    def full(self, *args, **kwargs):  # the disk takes no new file (what ENOSPC does to the probe)
        if self.name.startswith(".write-probe"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", full)
    assert cli("--budget", "6", "--depth", "2", "--name", "s", "--resume") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not writable (No space left on device)" in err[0]
    assert board.stat().st_mtime_ns == stamp  # nothing rewritten, nothing evaluated
    pd.testing.assert_frame_equal(pd.read_parquet(board), before)
