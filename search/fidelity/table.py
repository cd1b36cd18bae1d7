"""The study's tables, each one parquet file rewritten whole and atomically after every row.

- ``fidelity.parquet``: one row per ground-truth training run (``TRUTH_COLUMNS``).
- ``proxy.parquet``: one row per proxy evaluation of a (layout, seed) (``PROXY_COLUMNS``).
- ``lr_grid.parquet``: one row per learning-rate run of a (layout, seed, budget), scored on the dev
  split only (``GRID_COLUMNS``); the truth row of the cell records the rate chosen from them.

pandas and pyarrow only: a notebook reads them without JAX. In memory a table is a list of its
typed rows (``truth_rows``); the columns are those rows' fields, in the same order.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable

import pandas as pd

from composer.atomic import atomic_path
from composer.jsontypes import JSONObject
from search.fidelity.truth_rows import GridRow, ProxyScore, TruthRow
from search.results.parquet import read_parquet

__all__ = ["StudyTables",
           "TRUTH_FILE", "PROXY_FILE", "GRID_FILE", "TRUTH_COLUMNS", "PROXY_COLUMNS", "GRID_COLUMNS", "read_table",
           "write_table"]

TRUTH_FILE = "fidelity.parquet"
PROXY_FILE = "proxy.parquet"
GRID_FILE = "lr_grid.parquet"

TRUTH_COLUMNS = (
    "key", "layout", "n_attention", "seed", "tokens", "steps", "scale", "rule", "target_pattern", "arch_id",
    "params", "non_embedding_params", "val_loss", "val_loss_se", "val_bpb", "val_accuracy", "val_tokens",
    "train_loss", "wall_s", "tokens_per_s", "compile_s", "status", "error", "device", "finished_at",
    "lr", "lr_source", "lr_grid_json", "lr_at_edge", "dev_loss", "match", "param_ratio", "flops_per_token",
    "flops_ratio", "tie_embeddings",
)
"""``val_loss`` is nats per byte on the fixed validation windows; ``val_bpb`` = ``val_loss / ln 2``.
``lr`` is the peak rate the row trained at (under a grid: the one chosen on ``dev_loss``, with every
rate's dev loss in ``lr_grid_json``); ``param_ratio``/``flops_ratio`` are the extrapolated spec's
non-embedding parameters and layer FLOPs per token over the scale's Llama shape's."""

GRID_COLUMNS = ("key", "cell", "layout", "seed", "tokens", "lr", "dev_loss", "dev_loss_se", "train_loss", "status",
                "error", "wall_s", "tokens_per_s", "compile_s", "folder", "arch_id", "finished_at", "pack")

PROXY_COLUMNS = ("layout", "seed", "protocol", "score", "tasks_json", "source", "wall_s")


def read_table(path: str | os.PathLike, columns: tuple[str, ...]) -> pd.DataFrame:
    """The table at ``path`` (an empty frame with ``columns`` when it does not exist yet)."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    try:
        return read_parquet(path)  # one open file: a live study may replace it meanwhile
    except Exception as e:  # pyarrow raises several types for a damaged file
        from composer.errors import UsageError

        raise UsageError(f"{path} is not a readable parquet file ({type(e).__name__}); restore it or move it "
                         "away to start that table afresh") from None


def write_table(rows: Iterable[JSONObject], path: str | os.PathLike, columns: tuple[str, ...]) -> Path:
    """Write ``rows`` with ``columns`` first, atomically (temporary file, then ``os.replace``)."""
    path = Path(path)
    df = pd.DataFrame(list(rows))
    for c in columns:
        if c not in df.columns:
            df[c] = pd.Series([None] * len(df), dtype=object)
    df = df[list(columns) + [c for c in df.columns if c not in columns]]
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return path


class StudyTables:
    """The three parquet tables held in memory as typed rows and rewritten atomically on every change."""

    def __init__(self, run_dir: Path):
        self.truth_path, self.proxy_path = run_dir / TRUTH_FILE, run_dir / PROXY_FILE
        self.grid_path = run_dir / GRID_FILE
        self.truth = [TruthRow.from_dict(r) for r in read_table(self.truth_path, TRUTH_COLUMNS).to_dict("records")]
        self.proxy = [ProxyScore.from_dict(r) for r in read_table(self.proxy_path, PROXY_COLUMNS).to_dict("records")]
        self.grid = [GridRow.from_dict(r) for r in read_table(self.grid_path, GRID_COLUMNS).to_dict("records")]

    def done(self) -> set[str]:
        return {r.key for r in self.truth if r.status in ("ok", "diverged")}

    def add_grid(self, row: GridRow) -> None:
        self.grid = [r for r in self.grid if r.key != row.key] + [row]
        write_table([r.to_dict() for r in self.grid], self.grid_path, GRID_COLUMNS)

    def dev_losses(self, cell: str) -> dict[float, float]:
        """``{rate: dev loss}`` of the finished grid runs of the (layout, seed, budget) ``cell``
        (``inf`` for a diverged rate)."""
        return {float(r.lr): (float(r.dev_loss) if r.status == "ok" else math.inf)
                for r in self.grid if r.cell == cell and r.status in ("ok", "diverged")}

    def add_truth(self, row: TruthRow) -> None:
        self.truth = [r for r in self.truth if r.key != row.key] + [row]
        write_table([r.to_dict() for r in self.truth], self.truth_path, TRUTH_COLUMNS)

    def add_proxy(self, rows: list[ProxyScore]) -> int:
        have = {r.key for r in self.proxy}
        new = [r for r in rows if r.key not in have]
        if new:
            self.proxy += new
            write_table([r.to_dict() for r in self.proxy], self.proxy_path, PROXY_COLUMNS)
        return len(new)

    def proxy_seeds_of(self, layout: str, protocol: str) -> set[int]:
        return {int(r.seed) for r in self.proxy if r.layout == layout and r.protocol == protocol}
