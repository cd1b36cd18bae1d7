"""Errors that the CLI reports as one line: ``UsageError`` (bad input, exit code 2) and
``DivergenceError`` (a training run whose loss became NaN or infinite)."""

from collections.abc import Mapping
from typing import TypeVar

__all__ = ["UsageError", "DivergenceError", "lookup"]

_V = TypeVar("_V")


class UsageError(ValueError):
    """Bad user input: the message names the field or flag, the bad value and the fix."""


class DivergenceError(RuntimeError):
    """The loss or gradient became NaN/inf; the message names the run (task) and the step."""


def lookup(table: Mapping[str, _V], key: str, *, field: str, what: str, error: type[Exception] = UsageError) -> _V:
    """``table[key]``; an unknown key raises ``error`` naming the field, the bad value and every valid one
    (``"scale: unknown scale '7Q'; valid scales: tiny, small, ..."``), the one wording of every registry."""
    try:
        return table[key]
    except KeyError:
        raise error(f"{field}: unknown {what} {key!r}; valid {what}s: {', '.join(table)}") from None
