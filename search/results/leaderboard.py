"""Read and write ``runs/<name>/leaderboard.parquet`` with pandas and pyarrow only (never JAX).

One row per evaluation; columns in docs/leaderboard.md. The file is rewritten whole after every
evaluation from the rows stored in the study, through a temporary file and ``os.replace``, so a
reader never sees a half-written file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import pandas as pd

from search.results.parquet import read_parquet
from search.results.records import Row

__all__ = ["FILENAME", "COLUMNS", "read_leaderboard", "write_leaderboard", "rows_to_frame", "DETERMINISTIC_COLUMNS"]

FILENAME = "leaderboard.parquet"

COLUMNS = (
    "run", "study", "phase", "stage", "rung", "trial_number", "eval_index", "search_seed", "sampler",
    "arch_id", "pattern", "run_length", "n_layers", "protocol", "seed", "status", "error", "score",
    "tasks_json", "steps", "tokens", "wall_s", "compile_s", "eval_wall_s", "device", "pack",
    "proxy_params", "spec_json", "target_scale", "target_rule", "target_match", "target_param_ratio",
    "target_pattern", "target_arch_id",
    "target_n_layers", "target_params", "target_non_embedding_params", "target_flops_per_token",
    "target_kv_cache_bytes", "target_seq_len", "target_spec_json", "git_sha", "git_dirty", "versions_json",
    "platform", "started_at", "finished_at",
)
"""Fixed columns in file order; ``task_<name>`` columns (one per MAD task) follow ``score``."""

DETERMINISTIC_COLUMNS = (
    "phase", "stage", "eval_index", "search_seed", "sampler", "arch_id", "pattern", "protocol", "seed",
    "status", "score", "target_pattern", "target_params", "target_kv_cache_bytes",
)
"""Columns that two runs with the same settings and seed must agree on (timings and trial numbers may not)."""


def rows_to_frame(rows: Iterable[Row]) -> pd.DataFrame:
    """Flatten rows (``tasks`` -> ``task_<name>`` columns) into the leaderboard frame."""
    flat = []
    task_names: list[str] = []
    for row in rows:
        r = {k: v for k, v in row.to_dict().items() if k != "tasks"}
        for name, value in row.tasks.items():
            r[f"task_{name}"] = value
            if name not in task_names:
                task_names.append(name)
        flat.append(r)
    df = pd.DataFrame(flat)
    for col in COLUMNS:
        if col not in df.columns:
            df[col] = pd.Series([None] * len(df), dtype=object)
    score_at = COLUMNS.index("score") + 1
    ordered = list(COLUMNS[:score_at]) + [f"task_{t}" for t in task_names] + list(COLUMNS[score_at:])
    extra = [c for c in df.columns if c not in ordered]
    df = df[ordered + extra]
    if "eval_index" in df and len(df):
        df = df.sort_values(["eval_index"], kind="stable").reset_index(drop=True)
    return df


def write_leaderboard(rows: Iterable[Row], path: str | os.PathLike) -> Path:
    """Write the rows atomically (temporary file in the same folder, then ``os.replace``)."""
    from composer.atomic import atomic_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        rows_to_frame(rows).to_parquet(tmp, index=False)
    return path


def read_leaderboard(path: str | os.PathLike) -> pd.DataFrame:
    """The leaderboard of a run folder or parquet file, one row per evaluation."""
    path = Path(path)
    if path.is_dir():
        path = path / FILENAME
    return read_parquet(path)  # one open file: a live search may replace it meanwhile
