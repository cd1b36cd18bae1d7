"""The ``mix`` protocol: one score from the ``capacity`` proxy and the ``text`` proxy together.

The two proxies see different things (docs/search.md, "Choosing a protocol"): ``capacity`` orders the
attention/MLP contenders by how much they store (Spearman +0.93 against the real-text ground truth
among layouts with >= 2 attention layers) but is blind to what recurrent layers add on text; ``text``
places the recurrent hybrids where real text does but orders the contenders poorly (+0.55). ``mix``
evaluates a layout under both at the same seed and adds their standardised scores:

    score = sum_i  w_i * (s_i - center_i) / scale_i

with fixed ``center``/``scale`` per part (``MIX_PARTS``), so a candidate's score depends on nothing
but itself: no other candidate, no leaderboard, no order of evaluation. The constants are the mean and
standard deviation, over the 12 layouts of the committed fidelity panel, of each part's mean score.
They were fitted on that panel, so the mix's agreement with the ground truth on those 12 layouts is
in-sample; ``experiments/results/proxy_variants.md`` says which numbers are out of sample.

It costs one ``capacity`` and one ``text`` evaluation per (layout, seed), about 10x ``capacity`` alone.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from search.evaluators import Evaluation, EvaluatorConfig, normalize_result

__all__ = ["MixPart", "MIX_PARTS", "combine", "mix_tasks", "MixEvaluator"]


@dataclasses.dataclass(frozen=True)
class MixPart:
    """One protocol inside the mix and the fixed affine map that standardises its score."""

    protocol: str
    """The registered protocol whose score this part contributes."""
    weight: float
    """Its weight ``w_i`` in the sum."""
    center: float
    """Subtracted from the part's score: the panel's mean of layout means."""
    scale: float
    """Divides the centred score: the panel's SD of layout means, so the parts count in like units."""


MIX_PARTS = (
    MixPart("capacity", 0.5, center=0.215, scale=0.235),
    MixPart("text", 0.5, center=0.608, scale=0.034),
)
"""Equal weights; center/scale = mean and SD over the panel's 12 layout means (capacity: 3 seeds,
text: 2 seeds; ``experiments/results/proxy_capacity.jsonl`` and ``proxy_text.jsonl``)."""


def combine(scores: dict[str, float], parts: tuple[MixPart, ...] = MIX_PARTS) -> float:
    """The mix score of one (layout, seed) from its part scores (protocol name -> score)."""
    missing = [p.protocol for p in parts if p.protocol not in scores]
    if missing:
        raise ValueError(f"mix: missing part score(s) {missing}")
    return float(sum(p.weight * (scores[p.protocol] - p.center) / p.scale for p in parts))


def mix_tasks(parts: dict[str, tuple[float, dict[str, float]]]) -> dict[str, float]:
    """A mix row's ``tasks``: each part's score under its protocol name, then the parts' own task values
    (``parts``: protocol name -> (score, tasks))."""
    tasks = {name: score for name, (score, _) in parts.items()}
    for _, part_tasks in parts.values():
        tasks.update(part_tasks)
    return tasks


class MixEvaluator:
    """Evaluates each part at the same seed and returns their combination as one ``Evaluation``."""

    cpu_bound = True
    """Trains JAX models that leave 2 CPU cores partly idle: ``--workers 0`` runs two on a CPU host."""

    def __init__(self, config: EvaluatorConfig, parts: tuple[MixPart, ...] = MIX_PARTS):
        if config.tasks:
            from composer.errors import UsageError

            raise UsageError("mix: --tasks does not apply (the mix has fixed parts); drop --tasks")
        self.config = config
        self.protocol = config.label
        self.parts = parts
        self._inner = {p.protocol: dataclasses.replace(config, kind="mad", protocol=p.protocol).build()
                       for p in parts}

    def part_labels(self) -> dict[str, str]:
        """Part protocol -> the label its own evaluations are stored under (``capacity``, ``text@steps*0.1``)."""
        return {name: ev.protocol for name, ev in self._inner.items()}

    def from_parts(self, pattern: str, seed: int, parts: dict[str, tuple[float, dict[str, float]]]) -> Evaluation:
        """The mix of already stored part evaluations of ``(pattern, seed)`` (part -> (score, tasks)).

        Every part is a function of (layout, seed, protocol) alone, so this is the number ``__call__``
        would compute, without training anything again (tested against it)."""
        return Evaluation(score=combine({name: score for name, (score, _) in parts.items()}, self.parts),
                          protocol=self.protocol, tasks=mix_tasks(parts), seed=seed, pattern=pattern,
                          details={"parts": [dataclasses.asdict(p) for p in self.parts], "from_stored_parts": True})

    def spec(self, pattern: str) -> Any:
        """The first part's proxy spec (its ``arch_id`` plus the ``mix`` label is the dedup key)."""
        return self._inner[self.parts[0].protocol].spec(pattern)

    def __call__(self, pattern: str, seed: int | None = None) -> Evaluation:
        seed = self.config.seed if seed is None else seed
        results = {name: normalize_result(ev(pattern, seed=seed), ev.protocol) for name, ev in self._inner.items()}
        return self._combined(pattern, seed, results)

    def evaluate_many(self, pattern: str, seeds: list[int | None]) -> list[Evaluation | Exception]:
        """Every part packs the seeds its own way (``evaluate_many``), then each seed's parts combine; a
        seed that failed in any part is that part's error."""
        from search.evaluators.packing import can_pack

        resolved = [self.config.seed if s is None else s for s in seeds]
        per_part = {name: (ev.evaluate_many(pattern, resolved) if can_pack(ev) else
                           [ev(pattern, seed=s) for s in resolved]) for name, ev in self._inner.items()}
        out: list[Evaluation | Exception] = []
        for k, seed in enumerate(resolved):
            failed = [per_part[name][k] for name in per_part if isinstance(per_part[name][k], Exception)]
            if failed:
                out.append(failed[0])
                continue
            results = {name: normalize_result(per_part[name][k], ev.protocol) for name, ev in self._inner.items()}
            out.append(self._combined(pattern, seed, results, pack=len(resolved)))
        return out

    def _combined(self, pattern: str, seed: int, results: dict[str, Evaluation], pack: int = 1) -> Evaluation:
        first = results[self.parts[0].protocol]
        return Evaluation(
            score=combine({name: r.score for name, r in results.items()}, self.parts), protocol=self.protocol,
            tasks=mix_tasks({name: (r.score, r.tasks) for name, r in results.items()}), seed=seed, pattern=pattern,
            arch_id=first.arch_id, steps=_total(results, "steps"), tokens=_total(results, "tokens"),
            wall_s=_total(results, "wall_s"), compile_s=_total(results, "compile_s"), device=first.device,
            details={"parts": [dataclasses.asdict(p) for p in self.parts],
                     "part_results": {name: r.to_dict() for name, r in results.items()},
                     **({"pack": pack} if pack > 1 else {})})


def _total(results: dict[str, Evaluation], field: str) -> Any:
    values = [getattr(r, field) for r in results.values()]
    return None if any(v is None for v in values) else sum(values)
