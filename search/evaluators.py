"""The evaluator seen by the search: ``pattern -> result`` behind a small protocol.

The search needs two things from an evaluator: the proxy ``spec`` of a layout *before* evaluating it
(its ``arch_id`` plus the protocol label is the dedup key) and the result. ``EvaluatorConfig``
is picklable so that worker processes build their own evaluator (and keep its compiled steps).

Two kinds: ``mad`` adapts ``composer.mad.evaluate.Evaluator`` (JAX, imported lazily); ``fake`` is a
deterministic analytic score for tests and for exercising the engine (hidden ``--evaluator fake``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from typing import Any, Protocol

__all__ = ["Evaluator", "EvaluatorConfig", "EvalOutcome", "FakeEvaluator", "normalize_result", "FAKE_SLEEP_ENV",
           "dedup_key", "run_one"]

FAKE_SLEEP_ENV = "COMPOSER_FAKE_EVAL_SLEEP"
"""Seconds the fake evaluator sleeps per call (lets tests interrupt a run mid-evaluation)."""


class Evaluator(Protocol):
    """What the search calls; any object with these members plugs in."""

    protocol: str
    """Label of the protocol; part of the dedup key and of every leaderboard row."""

    def spec(self, pattern: str) -> Any:
        """The proxy ``ArchSpec`` that ``pattern`` is trained as (no training; its ``arch_id`` dedups)."""

    def __call__(self, pattern: str) -> dict[str, Any]:
        """Evaluate ``pattern``; a dict with at least ``score`` (``normalize_result`` fills the rest)."""


@dataclasses.dataclass(frozen=True)
class EvaluatorConfig:
    """Picklable recipe of an evaluator (built once per process)."""

    kind: str = "mad"
    """``mad`` (the real MAD proxy) or ``fake`` (analytic, for tests)."""
    protocol: str = "cpu"
    """MAD protocol name (``cpu`` or ``paper``)."""
    seed: int = 0
    """Training/data seed of every evaluation."""
    tasks: tuple[str, ...] | None = None
    """Subset of MAD tasks (default: all six)."""
    steps_scale: float | None = None
    """Fidelity: multiply every task's training steps (``None`` = the protocol's own)."""
    space: tuple[str, ...] = ()
    """Primitives the search may propose, built in up front so no candidate triggers a recompile."""

    @property
    def label(self) -> str:
        """Protocol label stored in rows; two fidelities never share a dedup key."""
        label = self.protocol if self.kind == "mad" else f"fake-{self.protocol}"
        if self.tasks:
            label += "[" + ",".join(self.tasks) + "]"
        if self.steps_scale is not None and self.steps_scale != 1.0:
            label += f"@steps*{self.steps_scale:g}"
        return label

    def build(self) -> Evaluator:
        if self.kind == "fake":
            return FakeEvaluator(self)
        if self.kind == "mad":
            from search.mad_adapter import MadEvaluator

            return MadEvaluator(self)
        raise ValueError(f"evaluator: unknown kind {self.kind!r}; valid: mad, fake")


@dataclasses.dataclass
class EvalOutcome:
    """One finished evaluator call: the normalised result, or the error it raised."""

    pattern: str
    result: dict[str, Any] | None
    error: str | None
    started_at: float
    finished_at: float


def dedup_key(evaluator: Evaluator, pattern: str) -> str:
    """``<arch_id>|<protocol>``: two evaluations with the same key are the same experiment."""
    from composer.spec import arch_id

    return f"{arch_id(evaluator.spec(pattern))}|{evaluator.protocol}"


def run_one(evaluator: Evaluator, pattern: str) -> EvalOutcome:
    """Call the evaluator, turning an exception into an error outcome (KeyboardInterrupt propagates)."""
    from composer.errors import UsageError

    start = time.time()
    try:
        result = normalize_result(evaluator(pattern), evaluator.protocol)
        return EvalOutcome(pattern, result, None, start, time.time())
    except UsageError:
        raise  # bad settings, not a bad layout
    except Exception as e:  # noqa: BLE001 - any evaluator failure becomes a leaderboard row
        return EvalOutcome(pattern, None, f"{type(e).__name__}: {e}", start, time.time())


def _task_value(v: Any) -> float | None:
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, dict):
        for k in ("score", "accuracy", "acc"):
            if isinstance(v.get(k), (int, float)):
                return float(v[k])
    return None


def normalize_result(raw: Any, protocol: str) -> dict[str, Any]:
    """A plain dict from an ``EvalResult``-like object or dict; ``tasks`` maps task -> float."""
    d = raw.to_dict() if hasattr(raw, "to_dict") else dict(raw)
    if d.get("score") is None:
        raise ValueError("evaluator result has no score")
    tasks = {str(k): _task_value(v) for k, v in (d.get("tasks") or {}).items()}
    out = {k: d.get(k) for k in ("steps", "tokens", "wall_s", "compile_s", "device", "arch_id", "seed")}
    for key in ("steps", "tokens"):  # per-task dicts (MAD EvalResult) -> totals
        if isinstance(out[key], dict):
            out[key] = d.get(f"total_{key}", sum(out[key].values()))
    out.update(score=float(d["score"]), tasks=tasks, protocol=d.get("protocol") or protocol,
               task_details=d.get("details") or d.get("tasks") or {})
    return out


def _noise(pattern: str, seed: int) -> float:
    h = hashlib.sha256(f"{pattern}:{seed}".encode()).digest()
    return (int.from_bytes(h[:4], "big") / 2**32 - 0.5) * 0.02


class FakeEvaluator:
    """Analytic stand-in for MAD: recall wants two early attention layers, memorisation wants MLPs.

    Shaped after the cpu-v1 panel of mad_tasks.md §11.2 (all-MLP at chance, one attention layer half
    way, two or more solve recall), plus a seeded +-1 % jitter so that scores are distinct.
    """

    def __init__(self, config: EvaluatorConfig = EvaluatorConfig(kind="fake")):
        self.config = config
        self.protocol = config.label
        self._sleep = float(os.environ.get(FAKE_SLEEP_ENV, "0") or 0)

    def spec(self, pattern: str) -> Any:
        from composer.presets import spec_from_pattern

        return spec_from_pattern(pattern, "proxy")

    def tasks(self, pattern: str) -> dict[str, float]:
        n, a = len(pattern), pattern.count("A")
        m = n - a
        early = 1.0 - 0.3 * (pattern.find("A") / n if a else 1.0)
        mixers = min(a, 2) / 2
        return {
            "in_context_recall": 0.25 + 0.75 * mixers * early,
            "noisy_in_context_recall": 0.24 + 0.7 * mixers * early * (0.6 + 0.4 * min(1.0, m / max(1, 2 * a))),
            "fuzzy_in_context_recall": 0.21 + 0.3 * mixers * (1 - abs(a / n - 1 / 3)),
            "selective_copying": 0.08 + 0.9 * mixers,
            "compression": 0.12 + 0.15 * (m / n),
            "memorization": 0.01 + 0.99 * (a > 0) * min(1.0, 0.5 + m / n),
        }

    def __call__(self, pattern: str) -> dict[str, Any]:
        start = time.time()
        if self._sleep:
            time.sleep(self._sleep)
        seed = self.config.seed
        tasks = {k: round(min(1.0, v + _noise(pattern + k, seed)), 6) for k, v in self.tasks(pattern).items()}
        if self.config.tasks:
            tasks = {k: v for k, v in tasks.items() if k in self.config.tasks}
        steps = round(100 * (self.config.steps_scale or 1.0))
        return {"arch_id": dedup_key(self, pattern).split("|")[0], "pattern": pattern, "protocol": self.protocol,
                "seed": self.config.seed, "score": round(sum(tasks.values()) / len(tasks), 6), "tasks": tasks,
                "steps": steps, "tokens": steps * 32 * 32 * len(tasks), "wall_s": time.time() - start,
                "compile_s": 0.0, "device": "cpu (fake evaluator)"}
