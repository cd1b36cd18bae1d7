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


def test_the_winner_margin_pools_the_seed_noise_of_every_layout():
    """Two fresh seeds give the pair's own t df 1 (t = 12.7); the seed SD of the run's other layouts
    gives the verdict its degrees of freedom, and both intervals are reported."""
    rng = np.random.default_rng(0)
    rows = [_row("AAMM", s, 0.80 + d) for s, d in zip((10, 11), (0.01, -0.01))]
    rows += [_row("AMAM", s, 0.75 + d) for s, d in zip((10, 11), (-0.012, 0.012))]
    others = {p: 0.5 + 0.1 * rng.normal(size=4) * 0.1 for p in ("MMMM", "MAMA", "MMAA", "AMMA")}
    rows += [_row(p, s, float(v)) for p, vals in others.items() for s, v in enumerate(vals)]
    w = winner_margin(rows, "AAMM", "AMAM", seeds=(10, 11))
    assert w.difference["df"] == 1 and w.pooled["df"] == 1 + 1 + 4 * 3 and w.claim_on == "pooled"
    groups = [[0.81, 0.79], [0.738, 0.762]] + [list(v) for v in others.values()]
    sd = math.sqrt(sum(((np.asarray(g) - np.mean(g)) ** 2).sum() for g in groups) / 14)
    assert w.pooled["pooled_sd"] == pytest.approx(sd) and w.pooled["mean"] == pytest.approx(0.05)
    half = sps.t.ppf(0.975, 14) * sd
    assert (w.pooled["lo"], w.pooled["hi"]) == pytest.approx((0.05 - half, 0.05 + half))
    assert w.pooled["lo"] > 0 and not w.difference["significant"]  # the pair's own t: df 1, [-0.25, +0.35]
    assert w.verdict == "better than Llama: the pooled 95 % interval excludes zero"
    d = w.to_dict()
    assert d["pooled"]["df"] == 14 and d["claim_on"] == "pooled" and d["df"] == 1
    from search.results.summary import margin_text

    line = margin_text(d)
    assert line.index("pooled 95 % CI") < line.index("the pair's own, df 1")
    assert "pooled" not in margin_text({k: v for k, v in d.items() if k not in ("pooled", "claim_on")})
    # alone, the pair still pools its two layouts' seed variance (df 2 against the paired t's 1)
    alone = winner_margin(rows[:4], "AAMM", "AMAM")
    assert alone.claim_on == "pooled" and alone.pooled["df"] == 2 and alone.difference["df"] == 1
    # one seed on a side: no noise estimate of that side, so no claim, whatever the pool says
    one = winner_margin(rows[:3] + rows[4:], "AAMM", "AMAM")
    assert one.claim_on == "pooled" and one.verdict.startswith("no claim: one seed")


def test_the_pooled_verdict_is_calibrated_when_the_seed_noise_is_shared():
    """No true margin, every layout with the same seed SD: the pooled verdict claims a win (or loss)
    about 5 % of the time, and finds a margin of three SDs with two fresh seeds most of the time."""
    rng = np.random.default_rng(1)

    def verdict(gap):
        others = ("MAMA", "MMAA", "AMMA", "MAAM")
        rows = [_row(p, s, float(0.5 + rng.normal(0, 0.02))) for p in others for s in range(3)]
        rows += [_row("AAMM", s, float(0.6 + gap + rng.normal(0, 0.02))) for s in (10, 11)]
        rows += [_row("AMAM", s, float(0.6 + rng.normal(0, 0.02))) for s in (10, 11)]
        w = winner_margin(rows, "AAMM", "AMAM", seeds=(10, 11))
        return w.claim_on == "pooled" and w.verdict.startswith(("better", "worse"))

    null = np.mean([verdict(0.0) for _ in range(400)])
    assert 0.02 <= null <= 0.09
    assert np.mean([verdict(0.06) for _ in range(100)]) >= 0.7
