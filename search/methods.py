"""Search methods as a sequence of stages (docs/method.md §2.1).

- ``oneshot``: one stage over all ``depth`` layers.
- ``end``: stage 0 searches ``depth`` layers; each later stage freezes the current winner as a
  prefix and searches up to ``depth`` layers appended at the end, until ``total_depth``.
- ``middle``: like ``end``, but each later stage splits the winner in the middle (head gets the
  shorter half when its length is odd) and searches the new layers inserted there.

The budget is split evenly over the stages (earlier stages get the remainder).
"""

from __future__ import annotations

import math

from search.settings import SearchSettings
from search.space import SearchSpace

__all__ = ["n_stages", "stage_budgets", "stage_space"]


def n_stages(settings: SearchSettings) -> int:
    if settings.method == "oneshot":
        return 1
    return math.ceil(settings.final_depth / settings.depth)


def stage_budgets(budget: int, stages: int) -> list[int]:
    return [budget // stages + (1 if s < budget % stages else 0) for s in range(stages)]


def stage_space(settings: SearchSettings, stage: int, previous: str | None) -> SearchSpace:
    """The space of ``stage``; ``previous`` is the frozen winner of the stage before (``None`` at 0)."""
    common = dict(primitives=settings.primitives, constraints=settings.constraints, scale=settings.scale,
                  rule=settings.rule, match=settings.match)
    if stage == 0 or previous is None:
        return SearchSpace(depth=settings.depth, **common)
    depth = min(settings.depth, settings.final_depth - len(previous))
    if settings.method == "end":
        return SearchSpace(depth=depth, prefix=previous, **common)
    half = len(previous) // 2
    return SearchSpace(depth=depth, prefix=previous[:half], suffix=previous[half:], **common)
