"""The per-layout view of a leaderboard: one row per (layout, protocol) over its seeds.

The leaderboard keeps one row per evaluation; a layout evaluated at several seeds is judged by the
mean of its scores with the standard error and the seed count beside it, never by its best seed.
Written as ``layouts.parquet`` next to ``leaderboard.parquet`` (pandas and pyarrow only).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import pandas as pd

from search.results.records import LayoutStats, Row
from search.stats import mean_se

__all__ = ["FILENAME", "per_layout", "write_layouts", "seed_scores"]

FILENAME = "layouts.parquet"


def seed_scores(rows: Iterable[Row], pattern: str) -> dict[int, float]:
    """``seed -> score`` of ``pattern``'s successful evaluations (the first one of a repeated seed)."""
    out: dict[int, float] = {}
    for r in rows:
        if r.pattern == pattern and r.ok:
            out.setdefault(int(r.seed) if r.seed is not None else 0, float(r.score))
    return out


def per_layout(rows: Iterable[Row]) -> list[LayoutStats]:
    """One record per (pattern, protocol) over its seeds, best mean first."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        if r.ok:
            groups.setdefault((r.pattern, str(r.protocol)), []).append(r)
    stats = []
    for (pattern, protocol), rs in groups.items():
        by_seed = seed_scores(rs, pattern)
        mean, se = mean_se(by_seed.values())
        t = rs[0].target
        stats.append(dict(pattern=pattern, protocol=protocol, n_seeds=len(by_seed), seeds=tuple(sorted(by_seed)),
                          score_mean=mean, score_se=se, score_min=min(by_seed.values()),
                          score_max=max(by_seed.values()), n_attention=pattern.count("A"),
                          target_pattern=t.pattern, target_params=t.params,
                          target_kv_cache_bytes=t.kv_cache_bytes, target_flops_per_token=t.flops_per_token))
    stats.sort(key=lambda r: -r["score_mean"])
    return [LayoutStats(**rec, rank=rank) for rank, rec in enumerate(stats, 1)]


def write_layouts(rows: Iterable[Row], path: str | os.PathLike) -> Path:
    """Write the per-layout view atomically (temporary file, then ``os.replace``)."""
    from composer.atomic import atomic_path

    with atomic_path(path) as tmp:
        pd.DataFrame([v.to_dict() for v in per_layout(rows)]).to_parquet(tmp, index=False)
    return Path(path)
