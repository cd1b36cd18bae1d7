"""Successive halving over seeds: the budget left after every candidate has one seed buys more seeds
for the leaders (Jamieson & Talwalkar 2016; Li et al. 2018, Hyperband's inner loop).

Rung 0 is the search itself: every candidate at the run's seed. Rung ``r`` keeps the best
``ceil(n0 / eta**r)`` layouts by their mean score over the rows of the earlier rungs and brings each to
``eta**r`` seeds (the run's seed + 0, 1, ...). A rung is planned only from the rows of the rungs before
it, so a run killed in the middle of a rung plans the same rung again on resume, and the rung's own
rows (already stored) are not evaluated twice. The jobs of a rung are ordered seed-major (every
survivor's next seed before anyone's seed after it), so a rung cut short by the budget spreads its
evaluations over the leaders. Rungs stop when the budget is used or fewer than two layouts remain.
"""

from __future__ import annotations

import math

from search.results.layout_view import per_layout
from search.results.records import Row

__all__ = ["ETA", "plan_rung", "rung0_budget", "largest_rung_unit"]

ETA = 2
"""Halving rate: each rung keeps 1/ETA of the layouts and multiplies their seeds by ETA."""


def rung0_budget(budget: int, n_feasible: int | None, rung_share: float) -> int:
    """Evaluations of rung 0: the whole space when it fits the budget, else all but ``rung_share``."""
    if n_feasible is not None and n_feasible <= budget:
        return n_feasible
    return max(1, budget - math.floor(budget * rung_share))


def plan_rung(rows: list[Row], r: int, n0: int, base_seed: int, left: int,
              eta: int = ETA) -> list[tuple[str, int]]:
    """The ``(pattern, seed)`` jobs of rung ``r`` (>= 1) from the ``rows`` of the earlier rungs.

    ``n0`` is the number of layouts scored in rung 0; ``left`` the budget still free before the rung.
    Returns ``[]`` when the rung would keep fewer than two layouts or nothing is left.
    """
    keep = math.ceil(n0 / eta**r)
    if keep < 2 or left <= 0:
        return []
    view = per_layout(rows)[:keep]
    have = {v.pattern: set(v.seeds) for v in view}
    jobs = [(v.pattern, base_seed + k) for k in range(eta**r) for v in view if base_seed + k not in have[v.pattern]]
    return jobs[:left]


def largest_rung_unit(budget: int, n_feasible: int | None, rung_share: float, eta: int = ETA) -> int:
    """The most new seeds of one layout any rung of a stage with ``budget`` can hold (what a pack of
    seeds can fill): rung ``r`` adds ``eta**(r-1)`` seeds to each of its ``ceil(n0 / eta**r)`` layouts,
    spread seed-major over what the budget has left. An upper bound (``n0`` is rung 0's budget)."""
    n0 = rung0_budget(budget, n_feasible, rung_share)
    left, most, r = budget - n0, 1, 1
    while left > 0 and (keep := math.ceil(n0 / eta**r)) >= 2:
        jobs = min(left, keep * eta ** (r - 1))
        most = max(most, math.ceil(jobs / keep))
        left -= jobs
        r += 1
    return most
