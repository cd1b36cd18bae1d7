"""Sequence-mixing ops, one folder each: ``reference.py`` (readable recurrence), a chunked XLA path
and a Pallas kernel, behind one ``impl=`` switch.

Which path the *primitives* use is an execution choice, not part of the architecture, so it is
not a layer option (it would change the arch id): it is a process-wide default, set with
``set_default_impl`` / ``use_impl`` or the ``COMPOSER_OP_IMPL`` environment variable.
"""

from __future__ import annotations

import contextlib
import os

__all__ = ["IMPLS", "default_impl", "set_default_impl", "use_impl"]

IMPLS = ("reference", "chunked", "pallas")
_default = os.environ.get("COMPOSER_OP_IMPL", "chunked")


def _check(impl: str) -> str:
    if impl not in IMPLS:
        raise ValueError(f"op impl must be one of {IMPLS}, got {impl!r} (COMPOSER_OP_IMPL or set_default_impl)")
    return impl


def default_impl() -> str:
    """The path primitives use when tracing: ``chunked`` unless changed."""
    return _check(_default)


def set_default_impl(impl: str) -> None:
    global _default
    _default = _check(impl)


@contextlib.contextmanager
def use_impl(impl: str):
    """Temporarily trace primitives with ``impl`` (e.g. in parity tests or benchmarks)."""
    global _default
    old, _default = _default, _check(impl)
    try:
        yield
    finally:
        _default = old
