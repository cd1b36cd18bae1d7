"""The per-layout view of a leaderboard: one row per (layout, protocol) over its seeds.

The leaderboard keeps one row per evaluation; a layout evaluated at several seeds is judged by the
mean of its scores with the standard error and the seed count beside it, never by its best seed.
Written as ``layouts.parquet`` next to ``leaderboard.parquet`` (pandas and pyarrow only).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from search.stats import mean_se

__all__ = ["FILENAME", "per_layout", "write_layouts", "seed_scores"]

FILENAME = "layouts.parquet"

_TARGET = ("target_pattern", "target_params", "target_kv_cache_bytes", "target_flops_per_token")


def seed_scores(rows: Iterable[dict[str, Any]], pattern: str) -> dict[int, float]:
    """``seed -> score`` of ``pattern``'s successful evaluations (the first one of a repeated seed)."""
    out: dict[int, float] = {}
    for r in rows:
        if r.get("pattern") == pattern and r.get("status") == "ok" and r.get("score") is not None:
            out.setdefault(int(r["seed"]) if r.get("seed") is not None else 0, float(r["score"]))
    return out


def per_layout(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per (pattern, protocol) with ``n_seeds``, ``seeds``, ``score_mean``, ``score_se``,
    ``score_min``, ``score_max`` and the target costs, best mean first."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("status") == "ok" and r.get("score") is not None:
            groups.setdefault((r["pattern"], str(r.get("protocol"))), []).append(r)
    out = []
    for (pattern, protocol), rs in groups.items():
        by_seed = seed_scores(rs, pattern)
        mean, se = mean_se(by_seed.values())
        rec = {"pattern": pattern, "protocol": protocol, "n_seeds": len(by_seed), "seeds": sorted(by_seed),
               "score_mean": mean, "score_se": se, "score_min": min(by_seed.values()),
               "score_max": max(by_seed.values()), "n_attention": pattern.count("A")}
        rec.update({k: rs[0].get(k) for k in _TARGET})
        out.append(rec)
    out.sort(key=lambda r: -r["score_mean"])
    for rank, rec in enumerate(out, 1):
        rec["rank"] = rank
    return out


def write_layouts(rows: Iterable[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write the per-layout view atomically (temporary file, then ``os.replace``)."""
    from composer.atomic import atomic_path

    with atomic_path(path) as tmp:
        pd.DataFrame(per_layout(rows)).to_parquet(tmp, index=False)
    return Path(path)
