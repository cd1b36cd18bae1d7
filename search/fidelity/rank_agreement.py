"""Rank agreement between a proxy and the ground truth, with a two-level bootstrap for its uncertainty.

Both correlations are computed between the proxy score (higher is better) and the **negated**
validation loss (lower is better), so +1 means the proxy orders the layouts exactly as real text does.

The bootstrap resamples what is random in a study (Efron & Tibshirani 1993, ch. 6; the two-level
"cases then repeats" scheme of Davison & Hinkley 1997, §3.8): the layouts (with replacement, as draws
from the space of layouts one might compare) and, inside each drawn layout, its proxy seeds and its
ground-truth seeds (with replacement). The interval is the percentile interval of the statistic over
the resamples. Everything is vectorised over resamples; no Python loop per resample.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats as sps

from search.stats import paired_difference  # re-exported: the report pairs runs by seed

__all__ = ["spearman", "kendall", "bootstrap_rank_ci", "paired_difference", "rank_corr"]


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank)."""
    return sps.rankdata(x, axis=-1)


def spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho along the last axis: Pearson correlation of average ranks (NaN if a side is constant)."""
    rx, ry = _ranks(np.asarray(x, float)), _ranks(np.asarray(y, float))
    rx = rx - rx.mean(-1, keepdims=True)
    ry = ry - ry.mean(-1, keepdims=True)
    den = np.sqrt((rx * rx).sum(-1) * (ry * ry).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry).sum(-1) / np.where(den > 0, den, 1), np.nan)


def kendall(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b along the last axis (ties counted as in ``scipy.stats.kendalltau``)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    sx = np.sign(x[..., :, None] - x[..., None, :])
    sy = np.sign(y[..., :, None] - y[..., None, :])
    iu = np.triu_indices(x.shape[-1], 1)
    sx, sy = sx[..., iu[0], iu[1]], sy[..., iu[0], iu[1]]
    num = (sx * sy).sum(-1)
    den = np.sqrt((sx != 0).sum(-1) * (sy != 0).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def rank_corr(kind: str):
    return {"spearman": spearman, "kendall": kendall}[kind]


def _resampled_means(values: Sequence[Sequence[float]], picks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``[R, n]``: for each resample and drawn layout, the mean of that layout's values drawn with
    replacement. ``picks`` ``[R, n]`` are the drawn layout indices."""
    out = np.empty(picks.shape)
    for j, vals in enumerate(values):
        vals = np.asarray(vals, float)
        mask = picks == j
        count = int(mask.sum())
        if not count:
            continue
        draws = vals[rng.integers(0, vals.size, size=(count, vals.size))]
        out[mask] = draws.mean(-1)
    return out


def bootstrap_rank_ci(proxy: Sequence[Sequence[float]], truth_loss: Sequence[Sequence[float]], *,
                      kind: str = "spearman", n_boot: int = 2000, level: float = 0.95,
                      seed: int = 0) -> dict[str, float]:
    """Point estimate and two-level bootstrap CI of the rank correlation of proxy vs ground truth.

    Args:
        proxy: per layout, its proxy scores over seeds (higher is better).
        truth_loss: per layout (same order), its validation losses over seeds (lower is better).
        kind: ``spearman`` or ``kendall``.

    Returns ``{"value", "lo", "hi", "n_layouts", "n_boot", "level"}``; ``value`` is the statistic of the
    seed means, ``lo``/``hi`` the percentile interval (resamples where a side is constant are dropped).
    """
    if len(proxy) != len(truth_loss):
        raise ValueError("proxy and truth_loss need one entry per layout")
    n = len(proxy)
    fn = rank_corr(kind)
    p_mean = np.array([np.mean(v) for v in proxy])
    t_mean = np.array([np.mean(v) for v in truth_loss])
    value = float(fn(p_mean, -t_mean)) if n >= 2 else math.nan
    out = {"value": value, "lo": math.nan, "hi": math.nan, "n_layouts": n, "n_boot": n_boot, "level": level}
    if n < 3:
        return out
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(n_boot, n))
    stat = fn(_resampled_means(proxy, picks, rng), -_resampled_means(truth_loss, picks, rng))
    stat = stat[np.isfinite(stat)]
    if stat.size:
        alpha = (1 - level) / 2
        out["lo"], out["hi"] = (float(q) for q in np.quantile(stat, [alpha, 1 - alpha]))
    return out
