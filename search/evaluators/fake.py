"""The ``fake`` evaluator: an analytic stand-in for MAD that exercises the engine in tests (``--evaluator fake``)."""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

from search.evaluators import Evaluation, EvaluatorConfig, dedup_key

__all__ = ["FakeEvaluator", "FAKE_SLEEP_ENV", "FAKE_FAULT_ENV"]

FAKE_SLEEP_ENV = "COMPOSER_FAKE_EVAL_SLEEP"
"""Seconds the fake evaluator sleeps per call (lets tests interrupt a run mid-evaluation)."""
FAKE_FAULT_ENV = "COMPOSER_FAKE_EVAL_FAULT"
"""Injected fault ``KIND:MARKER[:PATTERN]`` for tests. ``exit`` kills the evaluating process mid-call and
``oom`` raises ``MemoryError``, each once per marker file (the first call finding it absent creates it);
``error`` raises ``ValueError`` on every call. ``PATTERN`` limits the fault to one layout."""


def _inject_fault(pattern: str) -> None:
    spec = os.environ.get(FAKE_FAULT_ENV)
    if not spec:
        return
    kind, marker, *only = spec.split(":")
    if only and only[0] != pattern:
        return
    if kind == "error":
        raise ValueError(f"injected deterministic failure of {pattern}")
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))  # once per marker, across processes
    except FileExistsError:
        return
    if kind == "exit":
        os._exit(17)
    if kind == "oom":
        raise MemoryError(f"injected out-of-memory while evaluating {pattern}")


def _noise(pattern: str, seed: int) -> float:
    h = hashlib.sha256(f"{pattern}:{seed}".encode()).digest()
    return (int.from_bytes(h[:4], "big") / 2**32 - 0.5) * 0.02


class FakeEvaluator:
    """Analytic stand-in for MAD: recall wants two early attention layers, memorisation wants MLPs.

    Shaped after the cpu-v1 panel of docs/mad_tasks.md §11.2 (all-MLP at chance, one attention layer half
    way, two or more solve recall), plus a seeded +-1 % jitter so that scores are distinct.
    """

    def __init__(self, config: EvaluatorConfig | None = None):
        self.config = config = config or EvaluatorConfig(kind="fake")
        self.protocol = config.label
        self._sleep = float(os.environ.get(FAKE_SLEEP_ENV, "0") or 0)

    def spec(self, pattern: str) -> Any:
        from composer.presets import spec_from_pattern

        return spec_from_pattern(pattern, "proxy")

    def tasks(self, pattern: str) -> dict[str, float]:
        """One analytic score per registered MAD task (a task without a curve here gets the mean of
        the recall curves, so a newly registered task is scored without editing this file)."""
        from composer.mad.tasks import TASKS

        n, a = len(pattern), pattern.count("A")
        m = n - a
        early = 1.0 - 0.3 * (pattern.find("A") / n if a else 1.0)
        mixers = min(a, 2) / 2
        curves = {
            "in_context_recall": 0.25 + 0.75 * mixers * early,
            "noisy_in_context_recall": 0.24 + 0.7 * mixers * early * (0.6 + 0.4 * min(1.0, m / max(1, 2 * a))),
            "fuzzy_in_context_recall": 0.21 + 0.3 * mixers * (1 - abs(a / n - 1 / 3)),
            "selective_copying": 0.08 + 0.9 * mixers,
            "compression": 0.12 + 0.15 * (m / n),
            "memorization": 0.01 + 0.99 * (a > 0) * min(1.0, 0.5 + m / n),
        }
        other = sum(curves[k] for k in curves if k.endswith("recall")) / 3
        return {name: curves.get(name, other) for name in TASKS}

    def evaluate_many(self, pattern: str, seeds: list[int | None]) -> list[Evaluation]:
        """A "pack" for tests of the search's packing: the members evaluated in turn (same results)."""
        return [self(pattern, seed) for seed in seeds]

    def __call__(self, pattern: str, seed: int | None = None) -> Evaluation:
        start = time.time()
        if self._sleep:
            time.sleep(self._sleep)
        _inject_fault(pattern)
        seed = self.config.seed if seed is None else seed
        tasks = {k: round(min(1.0, v + _noise(pattern + k, seed)), 6) for k, v in self.tasks(pattern).items()}
        if self.config.tasks:
            tasks = {k: v for k, v in tasks.items() if k in self.config.tasks}
        steps = round(100 * (self.config.steps_scale or 1.0))
        return Evaluation(arch_id=dedup_key(self, pattern).split("|")[0], pattern=pattern, protocol=self.protocol,
                          seed=seed, score=round(sum(tasks.values()) / len(tasks), 6), tasks=tasks, steps=steps,
                          tokens=steps * 32 * 32 * len(tasks), wall_s=time.time() - start, compile_s=0.0,
                          device="cpu (fake evaluator)", details=dict(tasks))
