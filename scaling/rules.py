"""The two depth rules of the extrapolator, on a pattern or a sequence of layers (docs/method.md §2.4).

``scaling.extrapolate`` applies them to a layout at a target scale; ``scaling.matching`` enumerates the
depths they can produce. All arithmetic is exact (``fractions.Fraction``).
"""

from __future__ import annotations

import math
from fractions import Fraction
from itertools import groupby
from typing import Sequence, TypeVar

from composer.spec import SpecError

__all__ = ["runs", "stretch", "stack", "scale_runs", "round_half_up"]

T = TypeVar("T")


def runs(pattern: Sequence[T]) -> list[tuple[T, int]]:
    """Maximal runs ``(p_g, h_g)``: ``"AAMMMM"`` -> ``[("A", 2), ("M", 4)]``."""
    return [(item, len(list(group))) for item, group in groupby(pattern)]


def _exact(x: int | float | Fraction) -> Fraction:
    # A float is read by its shortest decimal form, so stretch(p, 0.1) of a 10-run gives 1, not 2.
    return Fraction(repr(x)) if isinstance(x, float) else Fraction(x)


def round_half_up(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))


def _join(pattern: Sequence[T], items: list[T]):
    return "".join(items) if isinstance(pattern, str) else tuple(items)


def scale_runs(pattern: Sequence[T], factor: Fraction, rounding) -> list[T]:
    out: list[T] = []
    for item, h in runs(pattern):
        out.extend([item] * rounding(factor * h))
    return out


def stretch(pattern: Sequence[T], factor: int | float | Fraction):
    """Stretch every run ``(p_g, h_g)`` to ``ceil(factor * h_g)`` (docs/method.md §2.4).

    Args:
        pattern: a shorthand string (``"AAMMMM"``) or a sequence of layers (``LayerSpec``).
        factor: ``s = M / m`` > 0.

    Returns:
        The same kind as ``pattern``: a string for a string, a tuple otherwise.
    """
    f = _exact(factor)
    if f <= 0:
        raise SpecError(f"factor: must be > 0, got {factor!r}")
    return _join(pattern, scale_runs(pattern, f, math.ceil))


def stack(pattern: Sequence[T], M: int | Fraction, m: int | Fraction):
    """``floor(M / m)`` whole copies, then the layout stretched by the remainder (docs/method.md §2.4).

    The remainder copy uses ``r = (M - m * floor(M / m)) / m`` and rounds each run half up,
    dropping runs that round to zero (module docstring). ``M`` and ``m`` must be > 0.
    """
    M, m = _exact(M), _exact(m)
    if M <= 0 or m <= 0:
        raise SpecError(f"M, m: must be > 0, got M={M}, m={m}")
    q = math.floor(M / m)
    r = (M - m * q) / m
    out = list(pattern) * q + scale_runs(pattern, r, round_half_up)
    if not out:
        raise SpecError(f"stack: target M={M} is under half the layout (m={m}); nothing is left, use stretch")
    return _join(pattern, out)


