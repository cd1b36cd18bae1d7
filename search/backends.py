"""Where evaluations run: in this process, in local worker processes, or on Ray.

A backend only maps layouts to ``EvalOutcome``s, in order; the loop and the storage stay in the
driver, so every backend gives the same results for the same settings. Each worker process builds its
own evaluator once (keeping its compiled steps across candidates).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from search.evaluators import EvalOutcome, EvaluatorConfig, transient_outcome
from search.evaluators.packing import pack_units, run_jobs, run_unit

__all__ = ["Backend", "InlineBackend", "ProcessBackend", "make_backend", "run_with_retries", "BACKENDS"]

log = logging.getLogger(__name__)

BACKENDS = ("local", "ray")


class Backend(Protocol):
    def run(self, jobs: list) -> list[EvalOutcome]:
        """Evaluate ``jobs`` (patterns, or ``(pattern, seed)`` pairs) and return outcomes in order."""

    def close(self) -> None: ...


class InlineBackend:
    """Evaluate one layout (or one pack of a layout's seeds) after another in the driver process."""

    def __init__(self, evaluator, pack: int = 1):
        self.evaluator, self.pack = evaluator, pack
        self.workers = 1

    def run(self, jobs: list) -> list[EvalOutcome]:
        return run_jobs(self.evaluator, jobs, self.pack)

    def close(self) -> None:
        pass


_WORKER_EVALUATOR = None


def _exit_with_parent(parent: int, poll_s: float = 1.0) -> None:
    """Stop this worker when its driver dies (SIGKILL, a crash): a pool worker left behind would finish
    its job for nobody and then wait on its queue forever, holding a core and its memory."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _init_worker(config: EvaluatorConfig, driver: int) -> None:
    global _WORKER_EVALUATOR
    # The driver's pid comes from the driver: read here with getppid(), it would already be the
    # reaper's if the driver died while this worker was still importing, and the watch would never fire.
    _exit_with_parent(driver)
    _WORKER_EVALUATOR = config.build()


def _run_in_worker(unit: list) -> list[EvalOutcome]:
    return run_unit(_WORKER_EVALUATOR, unit)


class ProcessBackend:
    """``workers`` spawned processes, each with its own evaluator; a pack of seeds runs in one worker."""

    def __init__(self, config: EvaluatorConfig, workers: int, pack: int = 1):
        # Spawned JAX processes must not each grab most of an accelerator's memory (docs/method.md §6).
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        self._config, self._workers, self.pack = config, workers, pack
        self.workers = workers
        self._pool = self._new_pool()
        # Packing needs an evaluator that can pack (``evaluate_many``); the workers' kind decides.
        self._packs = pack > 1 and hasattr(config.factory, "evaluate_many")

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self._workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(self._config, os.getpid()))

    def run(self, jobs: list) -> list[EvalOutcome]:
        """Outcomes in order; a job whose worker died (the pool breaks for every job in flight) comes
        back transient, and the next call runs on a fresh pool."""
        units = pack_units(jobs, self.pack if self._packs else 1, _Packable if self._packs else None)
        try:
            futures = [self._pool.submit(_run_in_worker, [jobs[i] for i in u]) for u in units]
        except BrokenProcessPool:  # a worker died after the last batch was collected
            self._restart()
            futures = [self._pool.submit(_run_in_worker, [jobs[i] for i in u]) for u in units]
        out: list[EvalOutcome | None] = [None] * len(jobs)
        broken = False
        for unit, fut in zip(units, futures):
            try:
                outcomes = fut.result()
            except BrokenProcessPool as e:
                broken = True
                outcomes = [transient_outcome(jobs[i], f"WorkerLost: a worker process died ({e})") for i in unit]
            for i, o in zip(unit, outcomes):
                out[i] = o
        if broken:
            self._restart()
        return out

    def _restart(self) -> None:
        log.warning("a worker process died; starting a fresh pool of %d", self._workers)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class _Packable:
    """Stands for a worker's evaluator in ``pack_units`` (the driver holds none)."""

    evaluate_many = None



def make_backend(kind: str, config: EvaluatorConfig, workers: int, evaluator=None, *, address: str | None = None,
                 cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0, pack: int = 1) -> Backend:
    """``local`` with one worker runs inline; more workers use processes; ``ray`` uses Ray actors
    (``address``, ``cpus_per_worker`` and ``gpus_per_worker`` apply to Ray only). ``pack``: up to this
    many seeds of one layout train together (local backends; ``composer.mad.packed``)."""
    if kind == "ray":
        if pack > 1:
            raise ValueError("--pack: packed evaluation runs on the local backend; with --backend ray give --pack 1")
        from search.ray_backend import RayBackend

        return RayBackend(config, workers, address=address, cpus_per_worker=cpus_per_worker,
                          gpus_per_worker=gpus_per_worker)
    if kind != "local":
        raise ValueError(f"backend: unknown backend {kind!r}; valid: {', '.join(BACKENDS)}")
    if workers <= 1:
        return InlineBackend(evaluator if evaluator is not None else config.build(), pack)
    return ProcessBackend(config, workers, pack)


def run_with_retries(backend: Backend, jobs: list, retries: int) -> list[EvalOutcome]:
    """``backend.run(jobs)``, running again the jobs whose failure was transient (a lost worker, out of
    memory) up to ``retries`` times; a job still failing is returned as an error naming its attempts.
    A failure of the layout itself (any other exception) is returned at once."""
    outcomes = list(backend.run(jobs))
    for attempt in range(1, retries + 1):
        redo = [i for i, o in enumerate(outcomes) if o.transient]
        if not redo:
            break
        for i in redo:
            log.warning("retrying %s (attempt %d of %d): %s", outcomes[i].pattern, attempt + 1, retries + 1,
                        outcomes[i].error)
        for i, o in zip(redo, backend.run([jobs[i] for i in redo])):
            outcomes[i] = o
    return [dataclasses.replace(o, error=f"{o.error} (gave up after {retries + 1} attempts)", transient=False)
            if o.transient else o for o in outcomes]
