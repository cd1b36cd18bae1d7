"""Packed jobs: up to ``pack`` seeds of one layout go to the evaluator together (``evaluate_many``,
``composer.mad.packed``), every other job alone (``run_one``); outcomes come back one per job, in order,
each recording its pack size."""

from __future__ import annotations

import time

from composer.errors import UsageError
from search.evaluators import EvalOutcome, Evaluator, as_job, is_transient, normalize_result, run_one

__all__ = ["pack_units", "run_unit", "run_jobs", "can_pack"]


def pack_units(jobs: list, pack: int, evaluator: Evaluator | None = None) -> list[list[int]]:
    """Indices of ``jobs`` grouped into what runs together: up to ``pack`` seeds of one layout (in the
    jobs' order) when the evaluator can pack (``evaluate_many``), else one job each."""
    if pack <= 1 or not can_pack(evaluator):
        return [[i] for i in range(len(jobs))]
    by_pattern: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        by_pattern.setdefault(as_job(job)[0], []).append(i)
    return [idx[k:k + pack] for idx in by_pattern.values() for k in range(0, len(idx), pack)]


def can_pack(evaluator) -> bool:
    """Whether ``evaluator`` trains several seeds in one program (``evaluate_many``; ``can_pack`` when
    that depends on its recipe)."""
    return hasattr(evaluator, "evaluate_many") and bool(getattr(evaluator, "can_pack", True))


def run_unit(evaluator: Evaluator, jobs: list) -> list[EvalOutcome]:
    """The outcomes of one unit of ``pack_units``: alone (``run_one``) or packed (``evaluate_many``; a
    member that fails is an error outcome of its own, a failure of the whole pack is every member's)."""
    if len(jobs) == 1 or not can_pack(evaluator):
        return [run_one(evaluator, j) for j in jobs]
    pattern = as_job(jobs[0])[0]
    seeds = [as_job(j)[1] for j in jobs]
    start = time.time()
    try:
        results = evaluator.evaluate_many(pattern, seeds)
    except UsageError:
        raise
    except Exception as e:  # noqa: BLE001 - the pack failed as a whole (out of memory, a lost device)
        error = f"{type(e).__name__}: {e}"
        return [EvalOutcome(pattern, None, error, start, time.time(), transient=is_transient(error), pack=len(jobs))
                for _ in jobs]
    end, out = time.time(), []
    for r in results:
        if isinstance(r, Exception):
            out.append(EvalOutcome(pattern, None, f"{type(r).__name__}: {r}", start, end, pack=len(jobs)))
        else:
            out.append(EvalOutcome(pattern, normalize_result(r, evaluator.protocol), None, start, end, pack=len(jobs)))
    return out


def run_jobs(evaluator: Evaluator, jobs: list, pack: int = 1) -> list[EvalOutcome]:
    """Outcomes of ``jobs`` in order, up to ``pack`` seeds of a layout trained together."""
    out: list[EvalOutcome | None] = [None] * len(jobs)
    for unit in pack_units(jobs, pack, evaluator):
        for i, o in zip(unit, run_unit(evaluator, [jobs[i] for i in unit])):
            out[i] = o
    return out
