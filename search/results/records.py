"""The typed records of a search's results: ``Target`` costs, the leaderboard ``Row`` of one evaluation
and the per-layout ``LayoutStats`` over its seeds (docs/leaderboard.md).

Each is built once (a ``Row`` in ``search.results.rows.build_row``, ``LayoutStats`` in
``search.results.layout_view``) and frozen; the Optuna attribute, the parquet files and
``summary.json`` are only their serialisations (``to_dict`` / ``from_dict``), and reading those files
still needs only pandas and pyarrow.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Iterable, Mapping

if TYPE_CHECKING:  # annotations only: importing ``composer`` loads JAX, and the leaderboard reader must not
    from composer.jsontypes import JSONObject, JSONValue

__all__ = ["Target", "Row", "LayoutStats", "TARGET_FIELDS", "missing"]


def missing(v: object) -> bool:
    """A value read back from a frame is missing: pandas gives an empty cell as ``None`` or NaN."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def _clean(v):
    """A value read back from a frame, as JSON would hold it: missing as ``None``, numpy scalars as Python."""
    if missing(v):
        return None
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):  # numpy scalar -> Python
        return v.item()
    return v


@dataclasses.dataclass(frozen=True)
class Target:
    """Costs of a proxy layout extrapolated to the target scale and size-matched (KV bytes: one
    ``max_seq_len`` sequence, bf16); the ``target_*`` columns of a row."""

    scale: str | None = None
    rule: str | None = None
    match: str | None = None
    param_ratio: float | None = None
    pattern: str | None = None
    arch_id: str | None = None
    n_layers: int | None = None
    params: int | None = None
    non_embedding_params: int | None = None
    flops_per_token: int | None = None
    kv_cache_bytes: int | None = None
    seq_len: int | None = None
    spec_json: str | None = None

    def columns(self) -> JSONObject:
        """The row's ``target_<field>`` columns."""
        return {f"target_{f.name}": getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_columns(cls, d: Mapping[str, JSONValue]) -> Target:
        """From a stored row; rows older than a column (``target_match``) read it as ``None``."""
        return cls(**{f.name: _clean(d.get(f"target_{f.name}")) for f in dataclasses.fields(cls)})

    def block(self) -> JSONObject:
        """The ``summary.json`` view: the costs without the prefix, with the run length of the layout."""
        from composer.spec import run_length

        return {"pattern": self.pattern, "n_layers": self.n_layers, "params": self.params,
                "non_embedding_params": self.non_embedding_params, "kv_cache_bytes": self.kv_cache_bytes,
                "flops_per_token": self.flops_per_token, "arch_id": self.arch_id, "rule": self.rule,
                "match": self.match, "param_ratio": self.param_ratio, "scale": self.scale,
                "run_length": run_length(self.pattern) if self.pattern else None}


TARGET_FIELDS = tuple(f"target_{f.name}" for f in dataclasses.fields(Target))


@dataclasses.dataclass(frozen=True)
class Row:
    """One evaluation: where it ran in the search, what was trained, its scores, its costs at the target
    scale and the software it ran on; alone it reproduces the run (docs/conventions.md §8)."""

    # where in the search
    run: str | None
    study: str | None
    phase: str
    """``search`` (a stage and its seed rungs) or ``final`` (the winner check and the fresh seeds)."""
    stage: int
    trial_number: int | None
    eval_index: int
    search_seed: int | None
    sampler: str | None
    rung: int | None
    """Seed rung of successive halving (``None``: the stage's own search, or the final phase)."""
    # what was trained
    arch_id: str
    pattern: str
    run_length: str | None
    n_layers: int
    protocol: str
    seed: int | None
    status: str
    error: str | None
    score: float | None
    tasks: Mapping[str, float]
    tasks_json: str
    steps: int | None
    tokens: int | None
    wall_s: float | None
    compile_s: float | None
    device: str | None
    pack: int | None
    """Members of the packed program it trained in (1: alone; ``None``: rows older than packing)."""
    proxy_params: int | None
    spec_json: str | None
    target: Target
    # the software and the clock
    git_sha: str | None
    git_dirty: bool | None
    versions_json: str | None
    platform: str | None
    started_at: str | None
    finished_at: str | None
    eval_wall_s: float | None
    extra: Mapping[str, JSONValue] = dataclasses.field(default_factory=dict)
    """Columns of rows written by other versions that this one does not know (kept, never dropped)."""

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.score is not None

    def to_dict(self) -> JSONObject:
        """The stored form (the Optuna attribute ``row``): flat, ``target_*`` columns, ``tasks`` a dict."""
        out: JSONObject = {}
        for f in dataclasses.fields(self):
            if f.name == "target":
                out.update(self.target.columns())
            elif f.name == "tasks":
                out["tasks"] = dict(self.tasks)
            elif f.name != "extra":
                out[f.name] = getattr(self, f.name)
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, JSONValue]) -> Row:
        """From a stored row or a leaderboard record (``task_<name>`` columns instead of ``tasks``)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"target", "extra", "tasks"}
        tasks = d.get("tasks")
        if not isinstance(tasks, Mapping):
            tasks = {k[5:]: _clean(v) for k, v in d.items() if k.startswith("task_") and _clean(v) is not None}
        known = names | set(TARGET_FIELDS) | {"tasks"}
        return cls(**{n: _clean(d.get(n)) for n in names}, tasks=dict(tasks), target=Target.from_columns(d),
                   extra={k: v for k, v in d.items() if k not in known and not k.startswith("task_")})

    @classmethod
    def many(cls, records: Iterable[Mapping[str, JSONValue]]) -> list[Row]:
        return [cls.from_dict(r) for r in records]


@dataclasses.dataclass(frozen=True)
class LayoutStats:
    """One (layout, protocol) over its seeds: judged by the mean score with its standard error and seed
    count beside it, never by its best seed; one row of ``layouts.parquet``."""

    pattern: str
    protocol: str
    n_seeds: int
    seeds: tuple[int, ...]
    score_mean: float
    score_se: float
    score_min: float
    score_max: float
    n_attention: int
    target_pattern: str | None
    target_params: int | None
    target_kv_cache_bytes: int | None
    target_flops_per_token: int | None
    rank: int

    def to_dict(self) -> JSONObject:
        out = dataclasses.asdict(self)
        out["seeds"] = list(self.seeds)
        return out

