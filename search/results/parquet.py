"""The reading side of ``composer.atomic``'s writes: a parquet table read through one open file.

Light on import (pandas and pyarrow only), so a notebook reads a run's tables without JAX.
"""

from __future__ import annotations

import os

import pandas as pd
import pyarrow as pa

__all__ = ["read_parquet"]


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    """The parquet file at ``path`` as a DataFrame, read through one open file.

    Given a path, pyarrow notes the file's size and opens it again to read; a writer replacing the file
    in between (a live study rewriting its table while a notebook, a dashboard or a poll reads it) makes
    it read one version's pages with the other's size ("Page was smaller than expected"). One handle
    keeps one version, the old or the new, whatever is renamed meanwhile.

    The bytes are read here and handed to pyarrow as its own buffer, not as the Python file: Arrow
    reads a Python file from its I/O threads, which take the GIL, and a thread still parked there when
    the interpreter exits is killed inside C++ and aborts the process after its work is done
    ("terminate called without an active exception", exit -6: 5 of 150 fresh interpreters reading a
    Python file, none of 150 reading the buffer, ``experiments/bench/parquet_exit.py``)."""
    with open(path, "rb") as f:
        data = f.read()
    return pd.read_parquet(pa.BufferReader(data))
