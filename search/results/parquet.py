"""The reading side of ``composer.atomic``'s writes: a parquet table read through one open file.

Light on import (pandas only), so a notebook reads a run's tables without JAX.
"""

from __future__ import annotations

import os

import pandas as pd

__all__ = ["read_parquet"]


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    """The parquet file at ``path`` as a DataFrame, read through one open file.

    Given a path, pyarrow notes the file's size and opens it again to read; a writer replacing the file
    in between (a live study rewriting its table while a notebook, a dashboard or a poll reads it) makes
    it read one version's pages with the other's size ("Page was smaller than expected"). One handle
    keeps one version, the old or the new, whatever is renamed meanwhile."""
    with open(path, "rb") as f:
        return pd.read_parquet(f)
