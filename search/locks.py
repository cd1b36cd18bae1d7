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
    path = Path(run_dir) / ".lock"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UsageError(f"run folder {run_dir} is in use by another `{command}`") from None
        try:  # the holder before us removes the file as it lets go: the lock must be on the file still there
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        # A finished run leaves no lock file behind; removed while still held, so no one can take the
        # old file's lock after us and think the run folder is theirs.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)
