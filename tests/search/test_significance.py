"""The margin rule on synthetic scores with known noise, and the per-layout view."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from search.results.layout_view import per_layout, write_layouts
from search.results.records import Row
from search.results.summary import winner_margin
from search.stats import margin, welch_difference


def _scores(rng, mean, sd, seeds):
    return {s: float(mean + sd * rng.standard_normal()) for s in seeds}


@pytest.mark.parametrize("paired", [True, False])
def test_no_true_margin_is_rarely_called_significant(paired):
    rng = np.random.default_rng(0)
    calls = []
    for _ in range(400):
        a = _scores(rng, 0.75, 0.017, range(4))
        b = _scores(rng, 0.75, 0.017, range(4) if paired else range(10, 14))
        calls.append(margin(a, b)["significant"])
    assert np.mean(calls) <= 0.09  # nominal 5 % false claims


def test_a_real_margin_is_found_with_enough_seeds():
    rng = np.random.default_rng(1)
    found = [margin(_scores(rng, 0.80, 0.017, range(5)), _scores(rng, 0.75, 0.017, range(5)))["significant"]
             for _ in range(200)]
    assert np.mean(found) >= 0.9  # 3 SD of one evaluation, 5 seeds


def test_one_seed_is_never_significant_however_large():
    m = margin({0: 0.9}, {0: 0.1})
    assert m["mean"] == pytest.approx(0.8) and not m["significant"] and math.isnan(m["lo"])


def test_welch_matches_scipy():
    a, b = [0.70, 0.74, 0.73, 0.76], [0.69, 0.70, 0.68]
    w = welch_difference(a, b)
    ref = sps.ttest_ind(a, b, equal_var=False)
    assert w["mean"] / w["se"] == pytest.approx(ref.statistic)
    ci = ref.confidence_interval(0.95)
    assert (w["lo"], w["hi"]) == pytest.approx((ci.low, ci.high))


def _row(pattern, seed, score, status="ok"):
    return Row.from_dict({"pattern": pattern, "seed": seed, "score": score, "status": status, "protocol": "cpu",
                          "target_pattern": pattern * 2, "target_params": 1, "target_kv_cache_bytes": 2,
                          "target_flops_per_token": 3})


def test_per_layout_view_and_winner_verdict(tmp_path):
    rows = [_row("AAMM", 0, 0.80), _row("AAMM", 1, 0.78), _row("AMAM", 0, 0.70), _row("AMAM", 1, 0.71),
            _row("MMMM", 0, 0.1), _row("MMMM", 1, None, "error")]
    view = per_layout(rows)
    assert [v.pattern for v in view] == ["AAMM", "AMAM", "MMMM"] and [v.rank for v in view] == [1, 2, 3]
    assert view[0].n_seeds == 2 and view[0].score_mean == pytest.approx(0.79)
    assert view[0].score_se == pytest.approx(np.std([0.80, 0.78], ddof=1) / math.sqrt(2))
    assert view[2].n_seeds == 1 and math.isnan(view[2].score_se) and view[0].target_pattern == "AAMMAAMM"
    import pandas as pd

    assert len(pd.read_parquet(write_layouts(rows, tmp_path / "layouts.parquet"))) == 3
    w = winner_margin(rows, "AAMM", "AMAM")
    assert w.difference["paired"] and w.difference["n_seeds"] == 2 and w.difference["mean"] == pytest.approx(0.085)
    one = winner_margin(rows[:1] + rows[2:3], "AAMM", "AMAM")
    assert not one.difference["significant"] and one.verdict.startswith("no claim: one seed")
