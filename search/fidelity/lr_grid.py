"""Choosing a layout's learning rate on the dev split: which rates to train, and which one wins.

Pure functions over ``{rate: dev loss}``; the study (``search.fidelity.study``) trains the rates and
never shows this module a validation number, so the choice cannot read the scored windows.

The rule (docs/fidelity.md, "The fair recipe"): train every rate of the grid; if the best is the
lowest (highest) rate tried, also train half (twice) that rate, at most ``extend`` times; keep the rate
with the lowest dev loss (ties: the lower rate, the safer one). A diverged rate counts as infinitely bad.
"""

from __future__ import annotations

import math

__all__ = ["choose", "next_rates", "at_edge"]


def _finite(dev: dict[float, float]) -> dict[float, float]:
    return {lr: v for lr, v in dev.items() if v is not None and math.isfinite(v)}


def choose(dev: dict[float, float]) -> float | None:
    """The rate with the lowest dev loss (``None`` when every rate diverged or none ran)."""
    ok = _finite(dev)
    return min(ok, key=lambda lr: (ok[lr], lr)) if ok else None


def at_edge(dev: dict[float, float]) -> bool:
    """Whether the chosen rate is the lowest or highest rate tried (the grid may not bracket it)."""
    best = choose(dev)
    return best is not None and len(dev) > 1 and best in (min(dev), max(dev))


def next_rates(grid: tuple[float, ...], dev: dict[float, float], extend: int) -> list[float]:
    """Rates still to train, given the dev losses ``dev`` of the rates trained so far.

    Empty when the cell is complete: the whole grid ran and either the best rate is inside the rates
    tried, or ``extend`` rates were already added past the edges.
    """
    missing = [lr for lr in grid if lr not in dev]
    if missing:
        return missing
    added = len([lr for lr in dev if lr not in grid])
    best = choose(dev)
    if best is None or added >= extend or len(dev) < 2:
        return []
    if best == min(dev):
        return [_round(best / 2)]
    if best == max(dev):
        return [_round(best * 2)]
    return []


def _round(lr: float) -> float:
    """Three significant digits, so a halved 5e-4 is 2.5e-4 and keys stay readable."""
    return float(f"{lr:.3g}")
