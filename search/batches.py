"""How a batch of pending evaluations is cut into the chunks a stage evaluates and records at a time."""

from __future__ import annotations

from search.claims import Pending

__all__ = ["layout_chunks"]


def layout_chunks(batch: list[Pending], layouts: int) -> list[list[Pending]]:
    """``batch`` cut into chunks of ``layouts`` layouts each, every job of a layout in one chunk (so a
    pack of its seeds stays whole) and the jobs layout by layout, the layouts in the order they first
    appear: the chunks joined are the same list whatever ``layouts`` is, so rows are numbered alike by
    any backend. A rung is evaluated and recorded chunk by chunk: a run killed mid-rung keeps every
    chunk it finished, and a backend with ``layouts`` workers has a layout per worker."""
    order: dict[str, list[Pending]] = {}
    for p in batch:
        order.setdefault(p.full, []).append(p)
    groups = list(order.values())
    step = max(layouts, 1)
    return [[p for g in groups[k:k + step] for p in g] for k in range(0, len(groups), step)]
