"""Differences of scores with their uncertainty, and the rule that calls a margin significant.

A search ranks layouts by noisy scores, so a margin is reported with its standard error and a 95 %
Student-t interval, and called significant only when that interval excludes zero. Paired by seed when
both layouts were scored on the same seeds (the same data and initialisation stream, so what the two
runs share cancels); otherwise Welch's unequal-variance interval. One seed on a side leaves the
variance unknown: the interval is undefined (NaN) and the margin is never significant.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

__all__ = ["paired_difference", "welch_difference", "margin", "mean_se", "pooled_sd", "pooled_difference",
           "pooled_mean_interval"]


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error of the mean (NaN for an empty list; SE NaN for one value)."""
    v = np.asarray(list(values), float)
    if not v.size:
        return math.nan, math.nan
    return float(v.mean()), (float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else math.nan)


def _interval(mean: float, se: float, df: float, level: float) -> tuple[float, float]:
    if not (math.isfinite(se) and df > 0):
        return math.nan, math.nan
    half = float(sps.t.ppf(0.5 + level / 2, df)) * se
    return mean - half, mean + half


def paired_difference(a: dict[int, float], b: dict[int, float], *, level: float = 0.95) -> dict[str, float]:
    """Mean of ``a[s] - b[s]`` over the seeds both have, its standard error and Student-t interval."""
    seeds = sorted(set(a) & set(b))
    d = np.array([a[s] - b[s] for s in seeds], float)
    mean, se = mean_se(d)
    lo, hi = _interval(mean, se, len(d) - 1, level)
    return {"mean": mean, "se": se, "lo": lo, "hi": hi, "n_seeds": len(seeds), "df": max(len(d) - 1, 0),
            "level": level, "paired": True}


def welch_difference(a, b, *, level: float = 0.95) -> dict[str, float]:
    """Difference of means ``mean(a) - mean(b)`` with Welch's standard error and interval."""
    a, b = np.asarray(list(a), float), np.asarray(list(b), float)
    out = {"mean": math.nan, "se": math.nan, "lo": math.nan, "hi": math.nan, "n_a": int(a.size), "n_b": int(b.size),
           "df": 0.0, "level": level, "paired": False}
    if not (a.size and b.size):
        return out
    out["mean"] = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return out
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if va + vb > 0 else a.size + b.size - 2
    out["se"], out["df"] = se, float(df)
    out["lo"], out["hi"] = _interval(out["mean"], se, df, level)
    return out


def margin(a: dict[int, float], b: dict[int, float], *, level: float = 0.95) -> dict[str, float]:
    """``a`` minus ``b`` (seed -> score): paired when they share at least two seeds, else Welch.

    Adds ``significant``: the interval lies wholly above or below zero.
    """
    common = set(a) & set(b)
    if len(common) >= 2:
        out = paired_difference(a, b, level=level)
    else:
        out = welch_difference(list(a.values()), list(b.values()), level=level)
    return _with_significance(out)


def _with_significance(out: dict) -> dict:
    """Adds ``significant``: the interval lies wholly above or below zero."""
    out["significant"] = bool(math.isfinite(out["lo"]) and (out["lo"] > 0 or out["hi"] < 0))
    return out


def pooled_sd(groups) -> tuple[float, int]:
    """Pooled within-group standard deviation and its degrees of freedom, sum of (n_i - 1).

    Each group is one layout's values over seeds; a group with one value adds nothing. Two seeds of
    one pair say little about the noise (df = 1, t = 12.7); the seeds of every layout in a study say
    much more, if the seed noise is about the same for all of them (which the report shows)."""
    ss, df = 0.0, 0
    for g in groups:
        v = np.asarray(list(g), float)
        if v.size >= 2:
            ss += float(((v - v.mean()) ** 2).sum())
            df += v.size - 1
    return (math.sqrt(ss / df) if df else math.nan), df


def pooled_difference(a: dict[int, float], b: dict[int, float], sd: float, df: int, *,
                      level: float = 0.95) -> dict[str, float]:
    """``mean(a) - mean(b)`` with the standard error ``sd * sqrt(1/n_a + 1/n_b)`` of a pooled seed SD
    (``pooled_sd``) and a Student-t interval on its ``df``; ``significant`` as in ``margin``."""
    out = {"mean": math.nan, "se": math.nan, "lo": math.nan, "hi": math.nan, "n_a": len(a), "n_b": len(b),
           "pooled_sd": sd, "df": df, "level": level, "pooled": True, "significant": False}
    if not (a and b):
        return out
    out["mean"] = float(np.mean(list(a.values())) - np.mean(list(b.values())))
    out["se"] = float(sd * math.sqrt(1 / len(a) + 1 / len(b))) if math.isfinite(sd) else math.nan
    out["lo"], out["hi"] = _interval(out["mean"], out["se"], df, level)
    return _with_significance(out)


def pooled_mean_interval(values, sd: float, df: int, *, level: float = 0.95) -> tuple[float, float]:
    """A Student-t interval for ``mean(values)`` with the pooled seed SD (``pooled_sd``) of the study:
    ``sd / sqrt(n)`` on ``df`` degrees of freedom, so a layout run on one seed still gets one."""
    v = np.asarray(list(values), float)
    if not v.size:
        return math.nan, math.nan
    se = sd / math.sqrt(v.size) if math.isfinite(sd) else math.nan
    return _interval(float(v.mean()), se, df, level)
