"""Resolved settings of a search run: a frozen dataclass, saved in the study and in ``summary.json``.

Flags left out take the stored value when a run is resumed, else the default below. Only the fields in
``MUTABLE_ON_RESUME`` may change on ``--resume``; the rest define the experiment.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

from search.evaluators import DEFAULT_PROTOCOL
from search.space import Constraints

if TYPE_CHECKING:
    from composer.jsontypes import JSONObject

__all__ = ["SearchSettings", "METHODS", "MUTABLE_ON_RESUME", "parse_count", "resolve", "stored_differences"]

METHODS = ("oneshot", "end", "middle")
FRESH_SEED_OFFSET = 10_000
"""Fresh seeds start here above the run's seed, far from any seed a search evaluates at."""
MUTABLE_ON_RESUME = ("budget", "workers", "backend", "storage", "runs_dir", "resume", "quiet", "final_seeds",
                     "ray_address", "cpus_per_worker", "gpus_per_worker", "max_retries", "pack")


def stored_differences(stored: dict[str, Any], given: dict[str, Any], fields) -> list[str]:
    """``"field: stored X, given Y"`` for each of ``fields`` on which a stored experiment and the flags given
    disagree: the one check every resumable command (``search``, ``fidelity``) makes before continuing."""
    return [f"{k}: stored {stored.get(k)!r}, given {given.get(k)!r}" for k in fields if stored.get(k) != given.get(k)]


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """Everything that fixes a search run (CLI flags of ``composer search``)."""

    budget: int = 200
    """Evaluations of distinct layouts (``search.budget``); capped at the size of the space."""
    scale: str = "350M"
    """Target scale of the winner (and of the cost objectives and caps)."""
    depth: int = 6
    """Layers searched per stage (``oneshot``: the proxy depth)."""
    total_depth: int | None = None
    """Final proxy depth of incremental methods (default ``2 * depth``)."""
    method: str = "oneshot"
    """``oneshot``, ``end`` (end-layer incremental) or ``middle`` (middle-layer incremental)."""
    sampler: str = "gp"
    """``gp``, ``tpe``, ``random``, ``nsga2`` or ``exhaustive`` (used anyway when the space fits the budget)."""
    aggregate: str = "N0"
    """Aggregator: ``N0``, ``N1``, ``Nall`` or ``best``."""
    rule: str = "auto"
    """Extrapolation rule: ``stack``, ``stretch`` or ``auto``."""
    match: str = "params"
    """Size matching after the rule (``scaling.matching``): ``params`` (every layout at the target scale
    within 2 % of the Llama shape's non-embedding parameters), ``flops`` or ``none`` (the rule alone)."""
    objectives: tuple[str, ...] = ("score",)
    """Objectives; ``score`` first, then costs at the target scale (``kv_cache``, ``flops``, ``params``)."""
    primitives: tuple[str, ...] = ("A", "M")
    """Shorthands to search over."""
    protocol: str = DEFAULT_PROTOCOL
    """Proxy protocol, any registered one (``composer protocols`` lists them; docs/search.md)."""
    seed: int = 0
    """Seed of the samplers, the aggregator and the evaluator."""
    name: str | None = None
    """Run name (folder ``runs/<name>``); default from method, depth, scale and seed."""
    storage: str | None = None
    """SQLAlchemy URL of the Optuna storage (default: SQLite in the run folder)."""
    workers: int = 0
    """Evaluations in flight at once, each in its own local process (more than 1) or in the driver (1).
    0 (the default) chooses by device (``search.worker_choice.resolve_workers``): 2 on a CPU host with 2
    cores or more when the evaluator trains (``mad``, ``text``, ``mix``), else 1."""
    pack: int = 0
    """Seeds of one layout trained together in one compiled program (a seed rung's, the fresh seeds'); 1
    turns packing off. 0 (the default) chooses by device (``search.packing_default.auto_pack``): on a CPU
    4 when the search has rungs of 4 or more seeds of a layout, else 1. On 2 CPU cores packs of 4
    capacity seeds ran 1.7-1.9x the evaluations per hour, packs of 2 0.7-0.9x
    (experiments/bench/packing.py), and ``make search`` took 47.8 min packed by 4 against 63.9 min
    (experiments/bench/search_packing.py)."""
    backend: str = "local"
    """``local`` (processes) or ``ray``."""
    ray_address: str | None = None
    """Ray cluster to join (``ray://`` or ``host:port``); default ``RAY_ADDRESS``, else a local cluster."""
    cpus_per_worker: float = 1.0
    """CPUs Ray reserves for each evaluation worker."""
    gpus_per_worker: float = 0.0
    """GPUs Ray reserves for each evaluation worker (fractions share one device)."""
    max_retries: int = 2
    """Attempts after the first for an evaluation whose worker died or ran out of memory."""
    evaluator: str = "mad"
    """``mad`` or ``fake`` (tests)."""
    constraints: Constraints = Constraints()
    tasks: tuple[str, ...] | None = None
    """Subset of MAD tasks (default all)."""
    steps_scale: float | None = None
    """Multiply the protocol's training steps (a cheaper, lower-fidelity proxy)."""
    rung_share: float = 0.25
    """Share of the budget kept for seed rungs (successive halving) when the space is larger than the
    budget; when the space fits, everything left after one seed per layout goes to the rungs."""
    final_seeds: int = 3
    """Fresh seeds (never used by the search) at which the winner and the Llama layout are rescored;
    the winner's margin is measured on them alone, against the winner's curse (0: no rescoring)."""
    runs_dir: str = "runs"
    """Parent folder of run folders."""
    resume: bool = False
    """Continue the stored run of this name (flags left out keep their stored values)."""
    quiet: bool = False
    """No progress bar."""

    def __post_init__(self):
        from search.results.rows import OBJECTIVES

        if self.budget < 1:
            raise ValueError(f"--budget: must be >= 1, got {self.budget}")
        if self.depth < 1:
            raise ValueError(f"--depth: must be >= 1, got {self.depth}")
        if self.method not in METHODS:
            raise ValueError(f"--method: must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.total_depth is not None and self.total_depth < self.depth:
            raise ValueError(f"--total-depth: must be >= --depth {self.depth}, got {self.total_depth}")
        if not self.objectives or self.objectives[0] != "score" or len(set(self.objectives)) != len(self.objectives):
            raise ValueError(f"--objectives: must start with score and not repeat, got {','.join(self.objectives)}")
        bad = [o for o in self.objectives if o not in OBJECTIVES]
        if bad:
            raise ValueError(f"--objectives: unknown {bad}; valid: {', '.join(OBJECTIVES)}")
        if self.steps_scale is not None and self.steps_scale <= 0:
            raise ValueError(f"--steps-scale: must be > 0, got {self.steps_scale}")
        if not 0 <= self.rung_share < 1:
            raise ValueError(f"--rung-share: must be in [0, 1), got {self.rung_share}")
        from scaling.matching import MATCHES

        if self.match not in MATCHES:
            raise ValueError(f"--match: must be one of {', '.join(MATCHES)}, got {self.match!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < FRESH_SEED_OFFSET:
            raise ValueError(f"--seed: must be an integer in [0, {FRESH_SEED_OFFSET}) (fresh seeds start above it), "
                             f"got {self.seed!r}")
        if self.final_seeds < 0:
            raise ValueError(f"--final-seeds: must be >= 0, got {self.final_seeds}")
        if not isinstance(self.workers, int) or isinstance(self.workers, bool) or self.workers < 0:
            raise ValueError(f"--workers: must be an integer >= 0 (0: chosen by device), got {self.workers!r}")
        if not isinstance(self.pack, int) or isinstance(self.pack, bool) or self.pack < 0:
            raise ValueError(f"--pack: must be an integer >= 0 (0: chosen by device, 1: no packing), "
                             f"got {self.pack!r}")
        if self.pack > 1 and self.backend == "ray":
            raise ValueError("--pack: packed evaluation runs on the local backend; with --backend ray give --pack 1")
        if self.cpus_per_worker <= 0 or self.gpus_per_worker < 0:
            raise ValueError("--cpus-per-worker must be > 0 and --gpus-per-worker >= 0, got "
                             f"{self.cpus_per_worker} and {self.gpus_per_worker}")
        if self.max_retries < 0:
            raise ValueError(f"--max-retries: must be >= 0, got {self.max_retries}")
        if self.name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise ValueError(f"--name: use letters, digits, '.', '_' and '-', got {self.name!r}")

    @property
    def fresh_seeds(self) -> tuple[int, ...]:
        """The ``final_seeds`` seeds of the winner's rescoring: disjoint from every seed the search uses."""
        return tuple(self.seed + FRESH_SEED_OFFSET + i for i in range(self.final_seeds))

    @property
    def run_name(self) -> str:
        return self.name or f"{self.method}-{self.depth}L-{self.scale}-seed{self.seed}"

    @property
    def final_depth(self) -> int:
        if self.method == "oneshot":
            return self.depth
        return self.total_depth or 2 * self.depth

    def to_dict(self) -> JSONObject:
        d = dataclasses.asdict(self)
        d["constraints"] = self.constraints.to_dict()
        d["objectives"], d["primitives"] = list(self.objectives), list(self.primitives)
        d["tasks"] = list(self.tasks) if self.tasks else None
        return d

    @classmethod
    def from_dict(cls, d: JSONObject) -> "SearchSettings":
        d = dict(d)
        d["constraints"] = Constraints.from_dict(d.get("constraints") or {})
        for key in ("objectives", "primitives"):
            d[key] = tuple(d[key])
        d["tasks"] = tuple(d["tasks"]) if d.get("tasks") else None
        d.setdefault("match", "none")  # runs stored before matching existed used the rule alone
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def differences(self, other: "SearchSettings") -> list[str]:
        """Fields outside ``MUTABLE_ON_RESUME`` on which the two settings disagree."""
        a, b = self.to_dict(), other.to_dict()
        return stored_differences(a, b, [k for k in a if k not in MUTABLE_ON_RESUME])


_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}


def parse_count(text: str, flag: str) -> int:
    """``400M``, ``1.2B``, ``64K``, ``5e8`` or ``123456`` -> an integer."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([KMBGT]?)i?B?\s*", str(text), flags=re.IGNORECASE)
    if not m:
        raise ValueError(f"{flag}: expected a count like 400M or 1.2B, got {text!r}")
    return int(float(m.group(1)) * _SUFFIX[m.group(2).upper()])


def resolve(given: dict[str, Any], stored: dict[str, Any] | None) -> SearchSettings:
    """Settings from the flags ``given`` (``None`` = not given) over ``stored`` or the defaults."""
    base = SearchSettings.from_dict(stored).to_dict() if stored else SearchSettings().to_dict()
    base.update({k: v for k, v in given.items() if v is not None})
    return SearchSettings.from_dict(base)
