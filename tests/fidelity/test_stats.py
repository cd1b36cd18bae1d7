"""Rank statistics against scipy, bootstrap coverage on synthetic studies, paired differences."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from search.fidelity.rank_agreement import bootstrap_rank_ci, kendall, paired_difference, spearman


@pytest.mark.parametrize("seed", range(5))
def test_rank_correlations_match_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, size=(4, 11)).astype(float)  # many ties
    y = x + rng.integers(-2, 3, size=(4, 11))
    for i in range(4):
        assert spearman(x[i], y[i]) == pytest.approx(sps.spearmanr(x[i], y[i]).statistic, abs=1e-12)
        assert kendall(x[i], y[i]) == pytest.approx(sps.kendalltau(x[i], y[i]).statistic, abs=1e-12)
    assert np.allclose(spearman(x, y), [sps.spearmanr(a, b).statistic for a, b in zip(x, y)])


def test_hand_computed_cases():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall([1, 2, 3], [3, 2, 1]) == -1.0
    assert kendall([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)  # 5 concordant, 1 discordant
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def _synthetic(rng, n, rho, seeds, noise):
    """Layout qualities from a bivariate normal with correlation rho; seed noise on each side."""
    cov = [[1, rho], [rho, 1]]
    q = rng.multivariate_normal([0, 0], cov, size=n)
    proxy = [list(q[i, 0] + noise * rng.standard_normal(seeds)) for i in range(n)]
    loss = [list(-q[i, 1] + noise * rng.standard_normal(seeds)) for i in range(n)]
    return proxy, loss


def test_bootstrap_ci_covers_the_true_value():
    """Population Spearman of seed means: rho_eff from the noise, then 6/pi asin(rho_eff / 2)."""
    rho, seeds, noise, n = 0.7, 2, 0.5, 30
    rho_eff = rho / (1 + noise**2 / seeds)
    truth = 6 / math.pi * math.asin(rho_eff / 2)
    rng = np.random.default_rng(0)
    hits = 0
    reps = 80
    for r in range(reps):
        proxy, loss = _synthetic(rng, n, rho, seeds, noise)
        ci = bootstrap_rank_ci(proxy, loss, n_boot=400, seed=r)
        hits += ci["lo"] <= truth <= ci["hi"]
    assert hits / reps >= 0.85, f"coverage {hits / reps:.2f} for a nominal 95 % interval"


def test_bootstrap_ci_separates_signal_from_none():
    rng = np.random.default_rng(1)
    strong = bootstrap_rank_ci(*_synthetic(rng, 20, 0.95, 2, 0.1), n_boot=500)
    assert strong["lo"] > 0.5 and strong["value"] > 0.8
    # With no correlation at all, a 95 % interval should hold 0 in most studies (not in every one).
    holds = [(ci := bootstrap_rank_ci(*_synthetic(rng, 20, 0.0, 2, 0.1), n_boot=300, seed=k))["lo"] < 0 < ci["hi"]
             for k in range(30)]
    assert np.mean(holds) >= 0.8
    kt = bootstrap_rank_ci(*_synthetic(rng, 20, 0.95, 2, 0.1), kind="kendall", n_boot=300)
    assert kt["lo"] <= kt["value"] <= kt["hi"]


def test_bootstrap_degenerate_sizes():
    two = bootstrap_rank_ci([[1.0], [2.0]], [[2.0], [1.0]])
    assert two["value"] == 1.0 and math.isnan(two["lo"])
    with pytest.raises(ValueError):
        bootstrap_rank_ci([[1.0]], [[1.0], [2.0]])


def test_paired_difference_by_hand():
    d = paired_difference({0: 3.0, 1: 3.2, 2: 3.1}, {0: 3.1, 1: 3.25, 2: 3.3, 7: 9.0})
    diffs = np.array([-0.1, -0.05, -0.2])
    assert d["n_seeds"] == 3 and d["mean"] == pytest.approx(diffs.mean())
    se = diffs.std(ddof=1) / math.sqrt(3)
    assert d["se"] == pytest.approx(se)
    assert d["hi"] - d["mean"] == pytest.approx(sps.t.ppf(0.975, 2) * se)
    one = paired_difference({0: 1.0}, {0: 2.0})
    assert one["mean"] == -1.0 and math.isnan(one["lo"])


def test_report_ranks_each_proxy_task_against_the_ground_truth():
    import json

    from search.fidelity.truth_report import build_summary
    from search.fidelity.truth_rows import ProxyScore, TruthRow

    layouts = ["AAMM", "AMAM", "MAAM", "MMAA", "AMMA"]
    loss = {p: 2.0 + 0.1 * i for i, p in enumerate(layouts)}  # AAMM best
    truth = [TruthRow(key=f"{p}/s{s}/t100", layout=p, seed=s, tokens=100, status="ok", val_loss=loss[p] + 0.001 * s,
                      val_loss_se=0.01, target_pattern=p, non_embedding_params=1) for p in layouts for s in (0, 1)]
    proxy = [ProxyScore(layout=p, seed=s, protocol="cpu", score=0.5, tasks_json=json.dumps({"good": 1.0 - loss[p],
                                                                                           "bad": loss[p]}))
             for p in layouts for s in (0, 1)]
    per_task = build_summary(truth, proxy, n_boot=200).per_task["all"]
    assert per_task["good"]["value"] == 1.0 and per_task["bad"]["value"] == -1.0


def test_budget_agreement_compares_each_layout_on_the_seeds_run_at_both_budgets():
    """A second main-budget seed of one layout must not flip the comparison: seed 0 at both budgets says
    A is better than B both times (Kendall +1), though B's mean over two main-budget seeds is lower."""
    from search.fidelity.truth_report import build_summary
    from search.fidelity.truth_rows import TruthRow

    def row(layout, seed, tokens, loss):
        return TruthRow(key=f"{layout}/s{seed}/t{tokens}", layout=layout, seed=seed, tokens=tokens, status="ok",
                        val_loss=loss, val_loss_se=0.01, target_pattern=layout, non_embedding_params=1)

    truth = [row("AM", 0, 100, 2.00), row("AM", 1, 100, 2.20), row("MA", 0, 100, 2.05),
             row("AM", 0, 400, 1.50), row("MA", 0, 400, 1.60), row("MM", 0, 100, 3.0)]
    (b,) = build_summary(truth, [], n_boot=50).budget_agreement
    assert b.kendall == 1.0 and b.main_order == b.long_order == ("AM", "MA")
    assert b.seeds == {"AM": (0,), "MA": (0,)} and b.main_loss["AM"] == 2.00
    flipped = truth[:3] + [row("AM", 0, 400, 1.70), row("MA", 0, 400, 1.60), truth[5]]
    assert build_summary(flipped, [], n_boot=50).budget_agreement[0].kendall == -1.0


def test_pooled_seed_sd_and_its_interval_cover_the_truth():
    """13 layouts x 2 seeds with seed SD 0.05 and a true gap of 0.03 between two of them: the pooled
    interval (df 13) covers the gap about 95 % of the time and is far narrower than the paired one (df 1)."""
    import numpy as np

    from search.stats import paired_difference, pooled_difference, pooled_sd

    rng = np.random.default_rng(0)
    covered, widths_pooled, widths_paired = 0, [], []
    for _ in range(400):
        means = np.r_[2.00, 2.03, rng.uniform(1.6, 2.5, 11)]
        truth = {i: {s: float(m + rng.normal(0, 0.05)) for s in (0, 1)} for i, m in enumerate(means)}
        sd, df = pooled_sd(list(v.values()) for v in truth.values())
        assert df == 13
        d = pooled_difference(truth[0], truth[1], sd, df)
        covered += d["lo"] <= -0.03 <= d["hi"]
        widths_pooled.append(d["hi"] - d["lo"])
        p = paired_difference(truth[0], truth[1])
        widths_paired.append(p["hi"] - p["lo"])
    assert 0.92 <= covered / 400 <= 0.98
    assert np.median(widths_pooled) * 4 < np.median(widths_paired)


def test_pooled_sd_by_hand():
    from search.stats import pooled_difference, pooled_sd

    sd, df = pooled_sd([[1.0, 3.0], [2.0, 2.0, 5.0], [7.0]])  # ss = 2 + 6, df = 1 + 2
    assert df == 3 and sd == pytest.approx((8 / 3) ** 0.5)
    d = pooled_difference({0: 1.0, 1: 3.0}, {0: 2.0}, sd, df)
    assert d["mean"] == 0.0 and d["se"] == pytest.approx(sd * (1 / 2 + 1) ** 0.5)
    assert pooled_sd([[1.0]]) [1] == 0


def test_a_rung_of_one_seed_per_layout_borrows_the_pooled_sd_of_the_longest_shorter_budget():
    """1M and 4M on two seeds, 16M on one: the 16M pair gets 4M's pooled SD (not 1M's, not none) and the
    report says where it came from; budgets with seed pairs of their own keep their own SD."""
    from search.fidelity.truth_markdown import render_markdown
    from search.fidelity.truth_report import build_summary
    from search.fidelity.truth_rows import TruthRow
    from search.stats import pooled_sd

    def row(layout, seed, tokens, loss):
        return TruthRow(key=f"{layout}/s{seed}/t{tokens}", layout=layout, seed=seed, tokens=tokens, status="ok",
                        val_loss=loss, val_loss_se=0.01, target_pattern=layout, non_embedding_params=1)

    m1, m4 = {"AM": (2.00, 2.06), "MA": (2.10, 2.02)}, {"AM": (1.50, 1.51), "MA": (1.55, 1.57)}
    rows = [row(p, s, 100, v[s]) for p, v in m1.items() for s in (0, 1)]
    rows += [row(p, s, 400, v[s]) for p, v in m4.items() for s in (0, 1)]
    rows += [row("AM", 0, 1600, 1.20), row("MA", 0, 1600, 1.23), row("MM", 0, 100, 3.0), row("MM", 1, 100, 3.0)]
    s = build_summary(rows, [], n_boot=50, pairs=[("MA", "AM")])
    by_tokens = {p.tokens: p.pooled for p in s.pairs}
    sd1, df1 = pooled_sd([m1["AM"], m1["MA"], (3.0, 3.0)])
    sd4, df4 = pooled_sd(m4.values())
    assert (by_tokens[100]["pooled_sd"], by_tokens[100]["df"], by_tokens[100]["sd_tokens"]) == (sd1, df1, 100)
    assert (by_tokens[400]["pooled_sd"], by_tokens[400]["df"], by_tokens[400]["sd_tokens"]) == (sd4, df4, 400)
    p16 = by_tokens[1600]
    assert (p16["pooled_sd"], p16["df"], p16["sd_tokens"]) == (sd4, df4, 400) and sd4 < sd1
    assert p16["mean"] == pytest.approx(0.03) and p16["lo"] < 0.03 < p16["hi"]
    assert p16["se"] == pytest.approx(sd4 * 2 ** 0.5)
    assert [p.tokens for p in s.pairs] == [100, 400, 1600]
    md = render_markdown(s)
    line = next(x for x in md.splitlines() if x.startswith("| MA - AM | 1,600 "))
    assert "SD pooled at 400 tokens" in line
    assert "SD pooled at" not in next(x for x in md.splitlines() if x.startswith("| MA - AM | 400 "))


def test_every_layout_gets_a_loss_interval_on_the_pooled_seed_sd_even_on_one_seed():
    from search.fidelity.truth_markdown import render_markdown
    from search.fidelity.truth_report import build_summary
    from search.fidelity.truth_rows import TruthRow
    from search.stats import pooled_mean_interval, pooled_sd

    losses = {"AM": (2.00, 2.04), "MA": (2.10, 2.16), "MM": (3.0,)}
    rows = [TruthRow(key=f"{p}/s{s}/t100", layout=p, seed=s, tokens=100, status="ok", val_loss=v,
                     val_loss_se=0.01, target_pattern=p, non_embedding_params=1)
            for p, vs in losses.items() for s, v in enumerate(vs)]
    sd, df = pooled_sd(losses.values())
    assert df == 2 and sd == pytest.approx(((0.02 ** 2 * 2 + 0.03 ** 2 * 2) / 2) ** 0.5)
    lay = build_summary(rows, [], n_boot=20).layouts
    half = sps.t.ppf(0.975, 2) * sd
    assert lay["MM"].val_loss_pooled_ci == pytest.approx((3.0 - half, 3.0 + half))
    assert lay["AM"].val_loss_pooled_ci == pytest.approx((2.02 - half / 2 ** 0.5, 2.02 + half / 2 ** 0.5))
    assert lay["AM"].val_loss_pooled_ci == pooled_mean_interval(losses["AM"], sd, df)
    assert all(math.isnan(x) for x in pooled_mean_interval([1.0], sd, 0))  # no pooled df: no interval
    line = next(x for x in render_markdown(build_summary(rows, [], n_boot=20)).splitlines() if x.startswith("| MM |"))
    assert f"[{3.0 - half:.4f}, {3.0 + half:.4f}]" in line
