"""Statistics of a proxy against a published set: rank agreement, a rule of thumb, and the ceiling.

Rank agreement is Spearman's rho and Kendall's tau-b between the proxy's seed-mean score (higher is
better) and the negated published value (lower is better), with the two-level bootstrap of
``search.fidelity.rank_agreement`` (layouts resampled, and each drawn layout's proxy seeds inside it; the
published side has one value per layout). The comparison with the set's heuristic is paired: the
same resampled layouts give both correlations, and the interval is that of their difference.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats as sps

from search.fidelity.rank_agreement import bootstrap_rank_ci, spearman
from search.published.judge_records import Agreement, CrossScale, RankInterval

__all__ = ["agreement", "paired_difference_ci", "seed_agreement", "replicate_ceiling", "cross_scale", "mapping_ceiling"]


def _truth(values: Sequence[float], direction: str) -> list[list[float]]:
    """Published values as 'losses' (lower is better) for ``bootstrap_rank_ci``."""
    sign = 1.0 if direction == "lower" else -1.0
    return [[sign * float(v)] for v in values]


def agreement(scores: Sequence[Sequence[float]], values: Sequence[float], direction: str = "lower", *,
              n_boot: int = 2000, seed: int = 0) -> Agreement:
    """Spearman and Kendall of per-layout scores (over seeds) against the values."""
    truth = _truth(values, direction)
    return Agreement(*(RankInterval.from_dict(bootstrap_rank_ci(scores, truth, kind=kind, n_boot=n_boot, seed=seed))
                       for kind in ("spearman", "kendall")))


def paired_difference_ci(scores: Sequence[Sequence[float]], heuristic: Sequence[float], values: Sequence[float],
                         direction: str = "lower", *, n_boot: int = 2000, level: float = 0.95,
                         seed: int = 0) -> RankInterval:
    """Spearman(proxy) - Spearman(heuristic) with a paired bootstrap interval (same layouts drawn)."""
    n = len(scores)
    sign = 1.0 if direction == "lower" else -1.0
    truth = -sign * np.asarray(values, float)
    means = np.array([np.mean(s) for s in scores])
    h = np.asarray(heuristic, float)
    value = float(spearman(means, truth) - spearman(h, truth))
    if n < 3:
        return RankInterval(value, math.nan, math.nan, n_boot, level)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(n_boot, n))
    drawn = np.empty(picks.shape)
    for j, vals in enumerate(scores):  # each drawn layout: the mean of its seeds drawn with replacement
        vals = np.asarray(vals, float)
        mask = picks == j
        if mask.any():
            drawn[mask] = vals[rng.integers(0, vals.size, size=(int(mask.sum()), vals.size))].mean(-1)
    diff = spearman(drawn, truth[picks]) - spearman(h[picks], truth[picks])
    diff = diff[np.isfinite(diff)]
    if not diff.size:
        return RankInterval(value, math.nan, math.nan, n_boot, level)
    alpha = (1 - level) / 2
    lo, hi = (float(q) for q in np.quantile(diff, [alpha, 1 - alpha]))
    return RankInterval(value, lo, hi, n_boot, level)


def seed_agreement(by_seed: dict[int, dict[str, float]]) -> float | None:
    """Spearman between the proxy's first two seeds over the layouts scored at both (its own noise)."""
    seeds = sorted(by_seed)
    if len(seeds) < 2:
        return None
    a, b = by_seed[seeds[0]], by_seed[seeds[1]]
    common = sorted(set(a) & set(b))
    if len(common) < 3:
        return None
    value = float(spearman(np.array([a[k] for k in common]), np.array([b[k] for k in common])))
    return None if math.isnan(value) else value


def replicate_ceiling(values: Sequence[float], sd: Sequence[float] | float, *, n_sim: int = 2000,
                      seed: int = 0) -> float:
    """Median Spearman between the published values and a simulated replicate of the study.

    A replicate measures the same models with new noise: published = truth + e1, replicate = truth + e2,
    so replicate - published ~ N(0, 2 sd^2). No proxy can be expected to agree with the published order
    better than a second run of the published study would.
    """
    v = np.asarray(values, float)
    sd = np.broadcast_to(np.asarray(sd, float), v.shape)
    rng = np.random.default_rng(seed)
    rep = v + rng.normal(size=(n_sim, v.size)) * sd * math.sqrt(2.0)
    return float(np.nanmedian(spearman(np.broadcast_to(v, rep.shape), rep)))


def cross_scale(a: dict[str, float], b: dict[str, float]) -> CrossScale | None:
    """Spearman between two sets' values over the designs they share (>= 4), else ``None``."""
    common = sorted(set(a) & set(b))
    if len(common) < 4:
        return None
    value = float(spearman(np.array([a[k] for k in common]), np.array([b[k] for k in common])))
    return CrossScale(value, len(common))


def mapping_ceiling(values: Sequence[float], evaluated: Sequence[str]) -> float:
    """An upper bound on the Spearman any proxy can reach on a set whose published layouts are mapped to
    ``evaluated`` layouts: a proxy scores each evaluated layout once, so its ranks are constant over the
    published layouts that share one, and no vector constant on those groups correlates with the
    published ranks better than the ranks' own group means (their projection onto such vectors). The
    bound is ``sqrt(between-group / total sum of squares)`` of the published ranks: 1 when no two
    published layouts share an evaluated one. A rule of thumb scores the published layouts themselves,
    so it is not bound by it."""
    t = sps.rankdata(np.asarray(values, float))
    t = t - t.mean()
    total = float((t * t).sum())
    if total == 0.0:
        return math.nan
    groups: dict[str, list[float]] = {}
    for v, e in zip(t, evaluated, strict=True):
        groups.setdefault(e, []).append(float(v))
    between = sum(len(g) * (sum(g) / len(g)) ** 2 for g in groups.values())
    return math.sqrt(between / total)
