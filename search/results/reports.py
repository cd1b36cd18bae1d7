"""The typed records of a run's report: each stage (``StageReport``, its ``RungReport``s and frozen
``StageWinner``), the final check (``FinalCheck``), the winner's margin over Llama (``WinnerMargin``)
and the whole ``Summary``; ``summary.json`` is ``Summary.to_dict()``."""

from __future__ import annotations

import dataclasses
from typing import Mapping

from composer.jsontypes import JSONObject, JSONValue, Record
from search.results.records import LayoutStats, Row, Target

__all__ = ["StageWinner", "RungReport", "StageReport", "ProxyResult", "WinnerChoice", "FinalCheck",
           "WinnerMargin", "BudgetUse", "Summary"]


@dataclasses.dataclass(frozen=True)
class StageWinner(Record):
    """The aggregated layout of a finished stage (stored in its study, frozen once a later stage builds on it)."""

    pattern: str
    aggregation: JSONObject
    """``search.aggregate.Aggregation.to_dict()``: the method, the cluster members, k."""
    note: str | None
    cluster_min_score: float
    cluster: tuple[str, ...]


    @classmethod
    def from_dict(cls, d: Mapping[str, JSONValue]) -> StageWinner:
        return cls(pattern=d["pattern"], aggregation=dict(d.get("aggregation") or {}), note=d.get("note"),
                   cluster_min_score=d.get("cluster_min_score"), cluster=tuple(d.get("cluster") or ()))


@dataclasses.dataclass(frozen=True)
class RungReport(Record):
    """One rung of successive halving over seeds (``search.halving``)."""

    rung: int
    layouts: int
    seeds_per_layout: int
    evaluations: int


@dataclasses.dataclass(frozen=True)
class StageReport:
    """One stage of the search: its space, sampler, budget and use, and its winner."""

    index: int
    study: str
    space: JSONObject
    space_size: int
    feasible: int | None
    sampler: str
    sampler_impl: str
    budget: int
    """Evaluations the stage may make: its rung 0 and the rungs after it."""
    evaluations: int
    duplicates: int
    infeasible: int
    winner: StageWinner | None
    rungs: tuple[RungReport, ...]
    rung0_budget: int

    def to_dict(self) -> JSONObject:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out.update(winner=self.winner.to_dict() if self.winner else None, rungs=[r.to_dict() for r in self.rungs])
        return out


@dataclasses.dataclass(frozen=True)
class ProxyResult:
    """A layout's evaluation at the proxy, as the summary shows it (all ``None`` but the pattern when
    it has no row)."""

    pattern: str
    run_length: str | None = None
    arch_id: str | None = None
    score: float | None = None
    tasks: Mapping[str, float] | None = None
    status: str | None = None
    eval_index: int | None = None

    @classmethod
    def of(cls, row: Row) -> ProxyResult:
        return cls(pattern=row.pattern, run_length=row.run_length, arch_id=row.arch_id, score=row.score,
                   tasks=dict(row.tasks), status=row.status, eval_index=row.eval_index)

    def to_dict(self) -> JSONObject:
        out = dataclasses.asdict(self)
        out["tasks"] = dict(self.tasks) if self.tasks is not None else None
        return out


@dataclasses.dataclass(frozen=True)
class WinnerChoice:
    """``aggregate``: the stage's aggregated layout won; ``best``: it scored below its own cluster and the
    best candidate was kept (``reason`` says why)."""

    source: str = "aggregate"
    reason: str | None = None

    def to_dict(self) -> JSONObject:
        return {"source": self.source} if self.reason is None else {"source": self.source, "reason": self.reason}


@dataclasses.dataclass(frozen=True)
class FinalCheck:
    """The final phase: the winner and the Llama layout of its depth, evaluated; ``aggregated`` is the
    stage's aggregated layout whether or not it was kept."""

    winner: ProxyResult
    llama: ProxyResult
    aggregated: ProxyResult | None = None
    choice: WinnerChoice = WinnerChoice()


@dataclasses.dataclass(frozen=True)
class WinnerMargin:
    """The winner's proxy score minus the Llama layout's over their seeds (``search.stats.margin``)."""

    winner: str
    llama: str
    winner_seeds: tuple[int, ...]
    llama_seeds: tuple[int, ...]
    fresh_seeds: bool
    difference: Mapping[str, float | int | bool | str | None]
    """The pair's own interval: ``mean``, ``se``, ``lo``, ``hi``, ``n_seeds``, ``level``, ``paired``,
    ``significant`` (non-finite: ``None``)."""
    pooled: Mapping[str, float | int | bool | str | None]
    """The interval from the seed SD pooled over the run's layouts: ``mean``, ``se``, ``lo``, ``hi``,
    ``pooled_sd``, ``df``, ``significant``."""
    claim_on: str
    """``pooled`` or ``pair``: the interval the verdict reads (the one with more degrees of freedom)."""
    verdict: str

    def to_dict(self) -> JSONObject:
        return {"winner": self.winner, "llama": self.llama, "winner_seeds": list(self.winner_seeds),
                "llama_seeds": list(self.llama_seeds), "fresh_seeds": self.fresh_seeds, **self.difference,
                "pooled": dict(self.pooled), "claim_on": self.claim_on, "verdict": self.verdict}


@dataclasses.dataclass(frozen=True)
class BudgetUse(Record):
    requested: int
    effective: int
    used: int
    unit: str


@dataclasses.dataclass(frozen=True)
class LearningCheck:
    """Whether the proxy learned anything: the best layout's mean score against the protocol's chance
    score (a model that guesses uniformly). ``at_chance`` when the best is within ``max(0.01, chance)``
    of it: every score is then noise, and so is the winner."""

    protocol: str
    best_score: float
    chance: float

    @property
    def at_chance(self) -> bool:
        return self.best_score < self.chance + max(0.01, self.chance)

    def warning(self, steps_scale: float | None) -> str | None:
        if not self.at_chance:
            return None
        steps = f" at --steps-scale {steps_scale:g}" if steps_scale not in (None, 1.0) else ""
        return (f"every layout scored at chance level (best {self.best_score:.4f}, chance {self.chance:.4f} for "
                f"{self.protocol}): the proxy learned nothing{steps}, so the ranking is noise; give it more steps "
                "(a larger --steps-scale) or another --protocol")

    def to_dict(self) -> JSONObject:
        return {"protocol": self.protocol, "best_score": self.best_score, "chance": self.chance,
                "at_chance": self.at_chance}


@dataclasses.dataclass(frozen=True)
class Summary:
    """What a search run found: ``summary.json``."""

    name: str
    settings: JSONObject
    budget: BudgetUse
    stages: tuple[StageReport, ...]
    proxy: ProxyResult
    winner_choice: WinnerChoice
    aggregated: ProxyResult
    target: Target
    llama_proxy: ProxyResult
    llama_target: Target
    llama_target_rule: str | None
    """How the comparator at the target scale was built (``the scale's Llama shape`` when matched)."""
    evaluations: Mapping[str, int]
    wall_s: float
    winner_vs_llama: WinnerMargin
    per_layout: tuple[LayoutStats, ...]
    pareto_front: tuple[JSONObject, ...] | None = None
    where: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """``run_dir``, ``leaderboard``, ``storage``, ``sampler_impl``: where the run lives."""
    learning: LearningCheck | None = None
    """The best score against chance (``None``: the protocol states no chance score)."""

    @property
    def kv_cache_ratio_llama_over_winner(self) -> float | None:
        return (self.llama_target.kv_cache_bytes / self.target.kv_cache_bytes
                if self.target.kv_cache_bytes else None)

    def to_dict(self) -> JSONObject:
        llama_target = self.llama_target.block()
        if self.llama_target_rule is not None:
            llama_target["rule"] = self.llama_target_rule
        out: JSONObject = {
            "name": self.name, "settings": self.settings, "budget": self.budget.to_dict(),
            "stages": [s.to_dict() for s in self.stages], "proxy": self.proxy.to_dict(),
            "winner_choice": self.winner_choice.to_dict(), "aggregated": self.aggregated.to_dict(),
            "target": self.target.block(), "llama": {"proxy": self.llama_proxy.to_dict(), "target": llama_target},
            "kv_cache_ratio_llama_over_winner": self.kv_cache_ratio_llama_over_winner,
            "evaluations": dict(self.evaluations), "wall_s": self.wall_s,
            "winner_vs_llama": self.winner_vs_llama.to_dict(), "per_layout": [v.to_dict() for v in self.per_layout],
        }
        if self.pareto_front is not None:
            out["pareto_front"] = list(self.pareto_front)
        out["learning"] = self.learning.to_dict() if self.learning else None
        out.update(self.where)
        return out
