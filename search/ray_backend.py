"""Evaluate on Ray actors (``--backend ray``); Ray is imported only here.

Ray runs evaluations only. Unlike Ray Tune with ``OptunaSearch``, the study stays in the run's Optuna
storage and the proposals come from the same loop as local runs, so a Ray run resumes like a local
one and gives the same results (docs/method.md §6: Tune restores that swap the searcher, studies kept in
memory). ``ray.init`` joins the cluster named by ``RAY_ADDRESS`` when set, else starts a local one.
"""

from __future__ import annotations

import os

from search.evaluators import EvalOutcome, EvaluatorConfig, run_one

__all__ = ["RayBackend"]


class _EvalActor:
    def __init__(self, config: EvaluatorConfig):
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        self._evaluator = config.build()

    def evaluate(self, job) -> EvalOutcome:
        return run_one(self._evaluator, job)


class RayBackend:
    """``workers`` Ray actors, each keeping its own evaluator; layouts go round-robin."""

    def __init__(self, config: EvaluatorConfig, workers: int, *, address: str | None = None,
                 cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0):
        import ray

        self._ray = ray
        self._owns = not ray.is_initialized()
        if self._owns:
            kwargs = {} if os.environ.get("RAY_ADDRESS") else {"num_cpus": max(1, workers)}
            ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
        actor = ray.remote(num_cpus=1)(_EvalActor)
        self._actors = [actor.remote(config) for _ in range(max(1, workers))]

    def run(self, jobs: list) -> list[EvalOutcome]:
        refs = [self._actors[i % len(self._actors)].evaluate.remote(j) for i, j in enumerate(jobs)]
        return self._ray.get(refs)

    def close(self) -> None:
        for a in self._actors:
            self._ray.kill(a)
        if self._owns:
            self._ray.shutdown()
