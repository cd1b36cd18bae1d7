"""Leaderboard rows: one self-sufficient record per evaluation (docs/leaderboard.md).

A row (``search.results.records.Row``) carries the proxy spec that was trained, its costs at the target
scale (the extrapolated spec), every metric, the seed and protocol, and where it ran (git sha, package
versions, device), so the row alone reproduces the run (docs/conventions.md §8). Rows are stored in the
Optuna study (trial user attribute ``row``) and the parquet file is rebuilt from there.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from search.results.records import Row, Target

__all__ = ["OBJECTIVES", "RunInfo", "Where", "target_costs", "build_row", "objective_values", "directions"]

OBJECTIVES: dict[str, tuple[str, str]] = {
    "score": ("score", "maximize"),
    "kv_cache": ("target_kv_cache_bytes", "minimize"),
    "flops": ("target_flops_per_token", "minimize"),
    "params": ("target_params", "minimize"),
}
"""``--objectives`` name -> (row column, direction). Costs are measured at the target scale."""

_PACKAGES = ("composer-hybrid", "jax", "jaxlib", "flax", "optax", "numpy", "optuna", "pandas", "pyarrow",
             "scikit-learn", "torch", "ray")


def directions(objectives: tuple[str, ...]) -> list[str]:
    return [OBJECTIVES[o][1] for o in objectives]


def objective_values(row: Row, objectives: tuple[str, ...]) -> list[float]:
    """The values Optuna is told, read from the row (``target_*`` objectives from its target costs)."""
    flat = {"score": row.score, **row.target.columns()}
    return [float(flat[OBJECTIVES[o][0]]) for o in objectives]


def _utc(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat(timespec="milliseconds")


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """What is the same for every row a process writes."""

    git_sha: str | None
    git_dirty: bool | None
    versions: dict[str, str]
    platform: str

    @classmethod
    def collect(cls) -> "RunInfo":
        status = _git("status", "--porcelain", "--untracked-files=no")
        return cls(git_sha=_git("rev-parse", "HEAD"), git_dirty=None if status is None else bool(status),
                   versions=_versions(), platform=platform.platform(terse=True))


@functools.lru_cache(maxsize=4096)
def target_costs(pattern: str, scale: str, rule: str, match: str = "none") -> Target:
    """Costs of ``pattern`` extrapolated to ``scale`` and size-matched by ``match`` (KV bytes: one
    ``max_seq_len`` sequence, bf16)."""
    from composer.spec import arch_id
    from scaling.counting import cost_report
    from scaling.extrapolate import extrapolate

    ext = extrapolate(pattern, scale, rule, match=match)
    cost = cost_report(ext.spec)
    return Target(scale=scale, rule=ext.rule, match=match, param_ratio=ext.param_ratio, pattern=ext.spec.pattern,
                  arch_id=arch_id(ext.spec), n_layers=ext.spec.n_layers, params=cost.params,
                  non_embedding_params=cost.non_embedding_params, flops_per_token=cost.flops_per_token,
                  kv_cache_bytes=cost.kv_cache_bytes_per_sequence, seq_len=cost.seq_len,
                  spec_json=ext.spec.to_json(indent=None))


@dataclasses.dataclass(frozen=True)
class Where:
    """Where in the search an evaluation ran (the first columns of its row)."""

    run: str | None
    study: str
    phase: str
    stage: int
    trial_number: int
    eval_index: int
    search_seed: int
    sampler: str
    rung: int | None = None


def build_row(*, outcome, evaluator, pattern: str, where: Where, info: RunInfo,
              scale: str, rule: str, match: str = "none") -> Row:
    """The row of one finished evaluation (``outcome``: a ``search.evaluators.EvalOutcome``)."""
    from composer.presets import spec_from_pattern  # noqa: F401  (registers primitives before arch_id)
    from composer.spec import arch_id, run_length
    from scaling.counting import total_params

    spec = evaluator.spec(pattern)
    res = outcome.result
    seed = res.seed if res is not None and res.seed is not None else getattr(getattr(evaluator, "config", None),
                                                                             "seed", None)
    return Row(**dataclasses.asdict(where),
               arch_id=arch_id(spec), pattern=pattern, run_length=run_length(pattern), n_layers=len(pattern),
               protocol=evaluator.protocol, seed=seed,
               status="ok" if outcome.error is None else "error", error=outcome.error,
               score=res.score if res else None, tasks=dict(res.tasks) if res else {},
               tasks_json=json.dumps(res.details if res else {}, sort_keys=True, default=str),
               steps=res.steps if res else None, tokens=res.tokens if res else None,
               wall_s=res.wall_s if res else None, compile_s=res.compile_s if res else None,
               device=res.device if res else None, pack=getattr(outcome, "pack", 1), proxy_params=total_params(spec),
               spec_json=spec.to_json(indent=None), target=target_costs(pattern, scale, rule, match),
               git_sha=info.git_sha, git_dirty=info.git_dirty,
               versions_json=json.dumps(info.versions, sort_keys=True), platform=info.platform,
               started_at=_utc(outcome.started_at), finished_at=_utc(outcome.finished_at),
               eval_wall_s=round(outcome.finished_at - outcome.started_at, 3))
