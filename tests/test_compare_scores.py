"""``experiments/bench/compare_scores.py``: how far two search runs' scores are apart."""

import shutil

import pandas as pd
import pytest

from tests.scripts import load_script


def _compare():
    return load_script("bench/compare_scores.py").compare


def test_identical_runs_agree_and_a_moved_score_shows(tmp_path, monkeypatch):
    from cli.main import main

    monkeypatch.chdir(tmp_path)
    args = ["search", "--evaluator", "fake", "--quiet", "--budget", "8", "--depth", "3", "--final-seeds", "2"]
    assert main([*args, "--name", "a"]) == 0
    assert main([*args, "--name", "b"]) == 0
    a, b = tmp_path / "runs" / "a", tmp_path / "runs" / "b"
    compare = _compare()
    same = compare(a, b)
    assert same["common_evaluations"] == 12 and same["max_abs_score_diff"] == 0.0
    assert same["seed0_layouts"] == 8 and same["seed0_kendall"] == pytest.approx(1.0)
    assert same["seed0_swapped_pairs"] == [] and same["winners"][0] == same["winners"][1]

    # move one seed-0 score of a copy past its neighbour's: one pair swaps, by the gap moved
    c = tmp_path / "runs" / "c"
    shutil.copytree(b, c)
    df = pd.read_parquet(c / "leaderboard.parquet")
    seed0 = df[(df.phase == "search") & (df.seed == 0)].sort_values("score")
    low, high = seed0.iloc[0], seed0.iloc[1]
    df.loc[low.name, "score"] = high.score + 0.01
    df.to_parquet(c / "leaderboard.parquet")
    moved = compare(a, c)
    assert moved["max_abs_score_diff"] == pytest.approx(high.score + 0.01 - low.score)
    (swap,) = moved["seed0_swapped_pairs"]
    assert set(swap["pair"]) == {low.pattern, high.pattern}
    assert moved["seed0_kendall"] < 1.0
