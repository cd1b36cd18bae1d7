"""Checks shared by the durability, fault and backend tests."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import optuna
import pandas as pd

from search.results.leaderboard import DETERMINISTIC_COLUMNS, read_leaderboard


def same_leaderboard(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Two runs agree on every column that does not depend on timing (``DETERMINISTIC_COLUMNS``)."""
    cols = list(DETERMINISTIC_COLUMNS)
    pd.testing.assert_frame_equal(a[cols].reset_index(drop=True), b[cols].reset_index(drop=True))


def evaluated_trials(run_dir: Path) -> list[str]:
    """The dedup keys of the trials that hold an evaluation, over every study of the run."""
    storage = f"sqlite:///{run_dir / 'study.db'}"
    keys = []
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        keys += [t.user_attrs["key"] for t in study.trials if "row" in t.user_attrs]
    return keys


def wait_for_rows(path: Path, n: int, proc: subprocess.Popen, timeout: float = 240) -> pd.DataFrame:
    """The leaderboard at ``path`` once it has ``n`` rows, while ``proc`` still runs."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the search ended before it could be killed"
        if path.exists():
            df = read_leaderboard(path)
            if len(df) >= n:
                return df
        time.sleep(0.2)
    raise AssertionError(f"fewer than {n} rows after {timeout} s")
