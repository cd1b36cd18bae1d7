"""How many local worker processes a search evaluates with: ``--workers``, and its default by device.

The default (``--workers 0``) follows measurements on 2 CPU cores: one JAX process training a proxy
of d = 64 keeps them only partly busy (XLA's threads help a small matmul little, and compilation
runs on one core), so two worker processes each evaluating a layout finished 1.21x (``capacity``),
1.58x (``text-short``) and 1.22x (``text``) the evaluations per second of one process, and a
``--budget 40`` search under ``text-short`` took 321 s against 420 s with the same scores
(``experiments/bench/search_packing.py --workers``). So on a CPU host the search evaluates with two
workers where the evaluator trains and says so (``cpu_bound = True``: ``mad``, ``text``, ``mix``; not
the ``fake`` test evaluator, nor a user's evaluator that has not opted in); on an accelerator one
process per device keeps the default of one, and ``--backend ray`` sizes its own pool.

Two workers propose layouts two at a time: on a space the budget enumerates (``make search``'s 64
layouts) the leaderboard is the one a single worker gives; a model-based sampler on a larger space
sees each pair's results only after proposing both (docs/search.md, "Parallel evaluation").
"""

from __future__ import annotations

import os

from search.pack_choice import device_kind

__all__ = ["AUTO_WORKERS", "resolve_workers"]

AUTO_WORKERS = {"cpu": 2}
"""Workers of the default per device kind, at most one per core (the CPU number measured on 2 cores;
elsewhere 1)."""


def _trains(settings) -> bool:
    """Whether the search's evaluator opts in (``cpu_bound = True`` on its class: the built-in ``mad``,
    ``text`` and ``mix``). A user's evaluator keeps one worker unless it opts in: one registered from a
    running script is unknown to a spawned worker process."""
    from search.evaluators import EvaluatorConfig

    factory = EvaluatorConfig(kind=settings.evaluator, protocol=settings.protocol).factory
    return getattr(factory, "cpu_bound", False)


def resolve_workers(settings, device: str | None = None, cpus: int | None = None) -> int:
    """The workers the search runs with: ``settings.workers``, or for 0 the device's default (1 on the
    Ray backend, which is sized by its flags, and for an evaluator that does not train)."""
    if settings.workers:
        return settings.workers
    if settings.backend != "local" or not _trains(settings):
        return 1
    auto = AUTO_WORKERS.get(device or device_kind(), 1)
    return max(1, min(auto, cpus if cpus is not None else (os.cpu_count() or 1)))
