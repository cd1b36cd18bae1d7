"""One driver per run folder: an advisory lock held for the whole run (no Optuna needed here)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

__all__ = ["run_lock"]


@contextlib.contextmanager
def run_lock(run_dir: Path, command: str = "composer search") -> Iterator[None]:
    """Hold ``run_dir/.lock`` for the whole run: one driver per run folder."""
    from composer.errors import UsageError

    Path(run_dir).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(run_dir) / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"run folder {run_dir} is in use by another `{command}`") from None
        yield
    finally:
        os.close(fd)
