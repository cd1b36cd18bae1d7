"""Adapter from ``composer.mad.evaluate.Evaluator`` to the search's evaluator protocol (imports JAX).

One adapter per process keeps one MAD ``Evaluator``, created with the whole primitive space, so every
candidate of a depth reuses one compiled run per task (its switch stack initialises each layer from
the layer's own key, so the space does not change a candidate's result).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from search.evaluators import Evaluation, EvaluatorConfig, normalize_result

__all__ = ["MadEvaluator", "scaled_protocol"]


def scaled_protocol(protocol: Any, steps_scale: float | None, label: str) -> Any:
    """``protocol`` with every task's training shortened or lengthened by ``steps_scale``."""
    if steps_scale is None or steps_scale == 1.0:
        return protocol
    if steps_scale <= 0:
        raise ValueError(f"steps_scale: must be > 0, got {steps_scale}")
    if protocol.data == "stream":
        steps = {t: max(1, round(s * steps_scale)) for t, s in protocol.steps.items()}
        return dataclasses.replace(protocol, name=label, steps=steps)
    return dataclasses.replace(protocol, name=label, epochs=max(1, round(protocol.epochs * steps_scale)))


def _device() -> str:
    import jax

    d = jax.devices()[0]
    return f"{d.platform}:{getattr(d, 'device_kind', '?')} x{jax.device_count()}"


class MadEvaluator:
    """The real MAD proxy behind ``search.evaluators.Evaluator``."""

    cpu_bound = True
    """Trains JAX models that leave 2 CPU cores partly idle: ``--workers 0`` runs two on a CPU host."""

    def __init__(self, config: EvaluatorConfig):
        from composer.mad.evaluate import Evaluator, check_tasks
        from composer.mad.protocol import get_protocol

        self.config = config
        self.protocol = config.label
        proto = scaled_protocol(get_protocol(config.protocol), config.steps_scale, config.label)
        check_tasks(config.tasks, proto)  # a bad task name is a usage error now, not an error row later
        self._inner = Evaluator(proto, space=config.space)
        self._device: str | None = None

    def spec(self, pattern: str) -> Any:
        return self._inner.proxy_spec(pattern)

    def evaluate_full(self, candidate: Any, seed: int | None = None, progress=None) -> Any:
        """The MAD ``EvalResult`` of ``candidate`` (a pattern or a proxy spec with layer options)."""
        seed = self.config.seed if seed is None else seed
        return self._inner.evaluate(candidate, seed=seed, tasks=self.config.tasks, progress=progress)

    def __call__(self, pattern: str, seed: int | None = None) -> Evaluation:
        return self._evaluation(self.evaluate_full(pattern, seed=seed))

    def evaluate_many(self, pattern: str, seeds: list[int | None]) -> list[Evaluation | Exception]:
        """``pattern`` at every seed in one packed program (``composer.mad.packed``); per seed its
        ``Evaluation`` or the error its solo evaluation would raise."""
        from composer.mad.packed import evaluate_packed

        resolved = [self.config.seed if s is None else s for s in seeds]
        out = evaluate_packed(self._inner, pattern, resolved, tasks=self.config.tasks)
        return [r if isinstance(r, Exception) else self._evaluation(r) for r in out]

    def _evaluation(self, result) -> Evaluation:
        d = result.to_dict()
        if self._device is None:
            self._device = _device()
        return normalize_result({"arch_id": d["arch_id"], "pattern": d["pattern"], "protocol": self.protocol,
                                 "seed": d["seed"], "score": d["score"], "tasks": d["tasks"], "steps": d["total_steps"],
                                 "tokens": d["total_tokens"], "wall_s": d["wall_s"], "compile_s": d["compile_s"],
                                 "device": self._device, "details": d.get("details") or {}}, self.protocol)
