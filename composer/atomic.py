"""One way to write a file atomically: a temporary file in the same folder, renamed onto the target.

A reader (another process, a notebook, a resumed run) sees the old file or the new one, never half of
one, provided it opens the file once (``search.results.parquet.read_parquet``). ``mkstemp`` gives a
unique temporary name, so two writers never share one; a write that fails removes its temporary file
and leaves the target as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

__all__ = ["atomic_path", "write_text", "write_bytes", "write_json"]


def _umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it: set and restore at once (done once, at
    os.umask(mask)          # import, before any thread of ours could create a file meanwhile)
    return mask


_UMASK = _umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``, on failure it is removed.

    For writers that want a path rather than a string (``DataFrame.to_parquet``, ``Figure.savefig``).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file 0600; a result file gets the mode any new file of this user would
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, **dumps: Any) -> Path:
    """``obj`` as JSON (indent 2 unless given), with a trailing newline."""
    dumps.setdefault("indent", 2)
    return write_text(path, json.dumps(obj, **dumps) + "\n")
