"""Where evaluations run: in this process, in local worker processes, or on Ray.

A backend only maps layouts to ``EvalOutcome``s, in order; the loop and the storage stay in the
driver, so every backend gives the same results for the same settings. Each worker process builds its
own evaluator once (keeping its compiled steps across candidates).
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Protocol

from search.evaluators import EvalOutcome, EvaluatorConfig, run_one

__all__ = ["Backend", "InlineBackend", "ProcessBackend", "make_backend", "BACKENDS"]

BACKENDS = ("local", "ray")


class Backend(Protocol):
    def run(self, jobs: list) -> list[EvalOutcome]:
        """Evaluate ``jobs`` (patterns, or ``(pattern, seed)`` pairs) and return outcomes in order."""

    def close(self) -> None: ...


class InlineBackend:
    """Evaluate one layout after another in the driver process."""

    def __init__(self, evaluator):
        self.evaluator = evaluator

    def run(self, jobs: list) -> list[EvalOutcome]:
        return [run_one(self.evaluator, j) for j in jobs]

    def close(self) -> None:
        pass


_WORKER_EVALUATOR = None


def _init_worker(config: EvaluatorConfig) -> None:
    global _WORKER_EVALUATOR
    _WORKER_EVALUATOR = config.build()


def _run_in_worker(job) -> EvalOutcome:
    return run_one(_WORKER_EVALUATOR, job)


class ProcessBackend:
    """``workers`` spawned processes, each with its own evaluator."""

    def __init__(self, config: EvaluatorConfig, workers: int):
        # Spawned JAX processes must not each grab most of an accelerator's memory (docs/method.md §6).
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_worker, initargs=(config,))

    def run(self, jobs: list) -> list[EvalOutcome]:
        return list(self._pool.map(_run_in_worker, jobs))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_backend(kind: str, config: EvaluatorConfig, workers: int, evaluator=None) -> Backend:
    """``local`` with one worker runs inline; more workers use processes; ``ray`` uses Ray actors."""
    if kind == "ray":
        from search.ray_backend import RayBackend

        return RayBackend(config, workers)
    if kind != "local":
        raise ValueError(f"backend: unknown backend {kind!r}; valid: {', '.join(BACKENDS)}")
    if workers <= 1:
        return InlineBackend(evaluator if evaluator is not None else config.build())
    return ProcessBackend(config, workers)
