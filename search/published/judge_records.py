"""The typed records of the published judge: a stored row, a plan entry and the blocks of its report.

``JudgeRow`` is one row of ``published.parquet`` and ``Judgement`` one entry of ``plan.json``; both are
read back (``from_dict``), so a file written before a column existed still loads. The report's records
(``JudgementResult`` and the blocks it holds) are built once from the rows by
``search.published.judge_report`` and only serialised (``to_dict``) into ``summary.json``; each
``to_dict`` writes the keys, in the order, that the report has always written, so a regenerated
``summary.json`` is the committed one.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

from composer.jsontypes import JSONObject, JSONValue, Record
from search.results.records import missing

__all__ = ["JudgeRow", "JudgementKey", "Judgement", "RankInterval", "Agreement", "CrossScale", "Ceiling",
           "HeuristicResult", "Cost", "ProtocolCost", "LayoutResult", "JudgementResult"]


def _float(v: object) -> float | None:
    return None if missing(v) else float(v)


def _int(v: object) -> int | None:
    return None if missing(v) else int(v)


def _str(v: object) -> str | None:
    return None if missing(v) else str(v)


@dataclasses.dataclass(frozen=True)
class JudgeRow:
    """One proxy evaluation of a (layout, seed, protocol); the fields are the parquet's columns, in order.

    An ``error`` row has no score, tasks, compile time or device; a ``parts`` row (a combined protocol
    computed from its parts' stored rows) has no compile time or device."""

    layout: str
    seed: int
    protocol: str
    status: str | None = "ok"
    """``ok`` or ``error``; ``None`` only where a stored row's cell is empty (read as not ok)."""
    score: float | None = None
    params: int | None = None
    tasks_json: str | None = None
    error: str | None = None
    wall_s: float | None = None
    compile_s: float | None = None
    device: str | None = None
    source: str | None = None
    """``evaluated`` or ``parts``; ``None`` in rows written before the column existed."""
    finished_at: str | None = None

    @property
    def ok(self) -> bool:
        """Scored (``search.progress.SearchProgress.advance`` reads ``ok`` and ``score``)."""
        return self.status == "ok" and self.score is not None

    def to_dict(self) -> JSONObject:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, JSONValue]) -> JudgeRow:
        """From a stored row: a column the file lacks (``source`` before mixes were built from their parts)
        and an empty cell (NaN) both read as ``None``; a column the table does not define is dropped."""
        return cls(layout=str(d["layout"]), seed=int(d["seed"]), protocol=str(d["protocol"]),
                   status=_str(d.get("status", "ok")), score=_float(d.get("score")), params=_int(d.get("params")),
                   tasks_json=_str(d.get("tasks_json")), error=_str(d.get("error")),
                   wall_s=_float(d.get("wall_s")), compile_s=_float(d.get("compile_s")),
                   device=_str(d.get("device")), source=_str(d.get("source")),
                   finished_at=_str(d.get("finished_at")))


@dataclasses.dataclass(frozen=True)
class JudgementKey:
    """What names a judgement: a published set, a protocol, a depth and the proxy's seeds."""

    set: str
    protocol: str
    """The protocol label (``capacity``, ``cpu@steps*0.1``, ...), as stored in the rows."""
    depth: int | None
    """Mapped depth, or ``None`` for the published depth (always for a set with ``"mapping": "none"``)."""
    seeds: tuple[int, ...]

    def key_dict(self) -> JSONObject:
        return {"set": self.set, "protocol": self.protocol, "depth": self.depth, "seeds": list(self.seeds)}


@dataclasses.dataclass(frozen=True)
class Judgement(JudgementKey):
    """One (set, protocol, depth) the study reports on; the report lists every one ever asked for."""

    layouts: tuple[str, ...]
    """The evaluated (mapped) layout of each published layout, in the set's order."""

    def to_dict(self) -> JSONObject:
        return {**self.key_dict(), "layouts": list(self.layouts)}

    @classmethod
    def from_dict(cls, d: Mapping[str, JSONValue]) -> Judgement:
        """Every key has been in ``plan.json`` since its first version: a missing one is a damaged file
        (``KeyError``), not an older one."""
        return cls(d["set"], d["protocol"], d["depth"], tuple(d["seeds"]), tuple(d["layouts"]))


@dataclasses.dataclass(frozen=True)
class RankInterval:
    """A rank statistic with its bootstrap interval (``lo``/``hi`` NaN when none could be drawn)."""

    value: float
    lo: float
    hi: float
    n_boot: int
    level: float
    n_layouts: int | None = None
    """``None`` for a paired difference (``paired_difference_ci``), which has never reported it."""

    def to_dict(self) -> JSONObject:
        out: JSONObject = {"value": self.value, "lo": self.lo, "hi": self.hi}
        if self.n_layouts is not None:
            out["n_layouts"] = self.n_layouts
        return {**out, "n_boot": self.n_boot, "level": self.level}

    @classmethod
    def from_dict(cls, d: Mapping[str, JSONValue]) -> RankInterval:
        """From ``search.fidelity.rank_agreement.bootstrap_rank_ci``'s result (or ``to_dict``'s)."""
        return cls(value=d["value"], lo=d["lo"], hi=d["hi"], n_boot=d["n_boot"], level=d["level"],
                   n_layouts=d.get("n_layouts"))


@dataclasses.dataclass(frozen=True)
class Agreement(Record):
    """Spearman and Kendall of per-layout scores against the published values."""

    spearman: RankInterval
    kendall: RankInterval


@dataclasses.dataclass(frozen=True)
class CrossScale(Record):
    """Spearman between two sets' published values over the designs they share."""

    value: float
    n_designs: int


@dataclasses.dataclass(frozen=True)
class Ceiling:
    """What agreement with the published order a perfect proxy could expect, and how it was found."""

    kind: str
    """The set's noise kind (``seed_sd``, ``relative_sd``, ``cross_scale``, ``none``)."""
    value: float | None
    note: str = ""
    n_designs: int | None = None
    """With ``other_set``: only for a ``cross_scale`` ceiling that was found."""
    other_set: str | None = None

    def to_dict(self) -> JSONObject:
        out: JSONObject = {"kind": self.kind, "value": self.value, "note": self.note}
        if self.n_designs is not None:
            out.update(n_designs=self.n_designs, other_set=self.other_set)
        return out


@dataclasses.dataclass(frozen=True)
class HeuristicResult:
    """The set's rule of thumb and, once four layouts are scored, its agreement with the published order."""

    name: str
    agreement: Agreement | None = None

    @property
    def spearman(self) -> RankInterval | None:
        return None if self.agreement is None else self.agreement.spearman

    def to_dict(self) -> JSONObject:
        return {"name": self.name, **({} if self.agreement is None else self.agreement.to_dict())}


@dataclasses.dataclass(frozen=True)
class Cost(Record):
    """The wall time of one judgement's evaluations (those of its layouts, protocol and seeds)."""

    evaluations: int
    wall_s: float
    median_wall_s: float | None


@dataclasses.dataclass(frozen=True)
class ProtocolCost(Record):
    """One protocol label's evaluations run by the study (not those built from stored parts)."""

    evaluations: int
    """Evaluations this study ran under the label."""
    wall_h: float
    """Their wall time, summed, in hours."""
    median_wall_s: float
    """The median evaluation's wall time."""


@dataclasses.dataclass(frozen=True)
class LayoutResult:
    """One published layout of a judgement: its value, what was evaluated, and the proxy's scores."""

    label: str
    published: float
    layout: str
    evaluated: str
    heuristic: float
    scores: Mapping[int, float]
    """Proxy score by seed (the seeds scored so far)."""

    def to_dict(self) -> JSONObject:
        # JSON keys are strings: json.dumps has always written the seeds as "0", "1"
        return {"label": self.label, "published": self.published, "layout": self.layout,
                "evaluated": self.evaluated, "heuristic": self.heuristic,
                "scores": {str(seed): v for seed, v in self.scores.items()}}


@dataclasses.dataclass(frozen=True)
class JudgementResult(JudgementKey):
    """The statistics of one judgement (set x protocol x depth): one entry of ``summary.json``."""

    n_layouts: int
    n_scored: int
    n_evaluated_layouts: int
    complete: bool
    heuristic: HeuristicResult
    ceiling: Ceiling
    cost: Cost
    layouts: tuple[LayoutResult, ...]
    agreement: Agreement | None = None
    """With the three fields below: only once four layouts are scored (a rank correlation needs them)."""
    vs_heuristic: RankInterval | None = None
    beats_heuristic: bool | None = None
    seed_agreement: float | None = None
    """Spearman between the proxy's first two seeds; ``None`` without two seeds on three layouts."""
    mapping_ceiling: float | None = None
    """The most Spearman any proxy can reach at this depth, where published layouts share an evaluated
    one (``set_agreement.mapping_ceiling``); 1 when none do."""

    @property
    def spearman(self) -> RankInterval | None:
        return None if self.agreement is None else self.agreement.spearman

    @property
    def kendall(self) -> RankInterval | None:
        return None if self.agreement is None else self.agreement.kendall

    def to_dict(self) -> JSONObject:
        out: JSONObject = {
            **self.key_dict(), "n_layouts": self.n_layouts, "n_scored": self.n_scored,
            "n_evaluated_layouts": self.n_evaluated_layouts, "complete": self.complete,
            "heuristic": self.heuristic.to_dict(), "ceiling": self.ceiling.to_dict(),
            "cost": self.cost.to_dict(), "mapping_ceiling": self.mapping_ceiling}
        if self.agreement is not None:
            out.update(self.agreement.to_dict())
            out.update(vs_heuristic=None if self.vs_heuristic is None else self.vs_heuristic.to_dict(),
                       beats_heuristic=self.beats_heuristic, seed_agreement=self.seed_agreement)
        out["layouts"] = [lay.to_dict() for lay in self.layouts]
        return out
