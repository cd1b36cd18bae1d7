"""The proxy side of a fidelity study: per-(layout, seed) proxy scores, imported or computed.

Sources, in the order a study looks for a layout's scores:
1. rows already in ``proxy.parquet`` (a resumed study never recomputes them);
2. ``--from-run RUN``: the search run's own leaderboard rows for that layout;
3. ``--proxy-from FILE``: a JSONL of evaluation results (``composer evaluate --json`` output, one per
   line, as ``experiments/results/mad_discrimination.jsonl``), a leaderboard parquet or a run folder;
4. computed here with the MAD evaluator, ``--proxy-seeds`` seeds, for the layouts still missing.
The proxy score of a layout is the mean over its seeds; its standard error comes with it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

import pandas as pd

from composer.errors import UsageError
from search.fidelity.truth_rows import ProxyScore

__all__ = ["leaderboard_scores", "rows_from_file", "rows_from_run", "compute_rows", "ProxyMean"]


@dataclasses.dataclass(frozen=True)
class ProxyMean:
    """A layout's mean proxy score over the seeds a search run scored it on (``--from-run --top``)."""

    mean: float
    seeds: tuple[int, ...]


def _leaderboard(run_dir: Path) -> pd.DataFrame:
    from search.results.leaderboard import FILENAME, read_leaderboard

    path = run_dir / FILENAME if run_dir.is_dir() else run_dir
    if not path.exists():
        raise UsageError(f"--from-run: no search run at {run_dir} (no {FILENAME}); give a folder under runs/ "
                         "written by `composer search`")
    df = read_leaderboard(path)
    return df[df["status"] == "ok"] if "status" in df else df


def rows_from_leaderboard(df: pd.DataFrame, source: str) -> list[ProxyScore]:
    rows = []
    for r in df.to_dict("records"):
        if r.get("score") is None or pd.isna(r.get("score")):
            continue
        rows.append(ProxyScore(layout=r["pattern"], seed=int(r["seed"]), protocol=r.get("protocol"),
                               score=float(r["score"]), tasks_json=r.get("tasks_json"), source=source,
                               wall_s=r.get("wall_s")))
    return rows


def rows_from_run(run_dir: Path) -> list[ProxyScore]:
    """Every scored (layout, seed) of a search run's leaderboard (repeats of one key averaged)."""
    rows = rows_from_leaderboard(_leaderboard(run_dir), f"run:{run_dir.name}")
    return _dedup(rows)


def leaderboard_scores(run_dir: Path) -> dict[str, ProxyMean]:
    """``{pattern: ProxyMean}`` over the run's scored rows."""
    by: dict[str, list[ProxyScore]] = {}
    for r in rows_from_run(run_dir):
        by.setdefault(r.layout, []).append(r)
    if not by:
        raise UsageError(f"--from-run: run {run_dir.name!r} has no scored layout yet (empty leaderboard)")
    return {p: ProxyMean(mean=sum(r.score for r in rs) / len(rs), seeds=tuple(r.seed for r in rs))
            for p, rs in by.items()}


def _dedup(rows: list[ProxyScore]) -> list[ProxyScore]:
    seen: dict[tuple[str, int], ProxyScore] = {}
    for r in rows:
        seen.setdefault((r.layout, r.seed), r)
    return list(seen.values())


def rows_from_file(path: Path) -> list[ProxyScore]:
    """Proxy rows from a JSONL of evaluation results, a leaderboard parquet or a search run folder."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"--proxy-from: {path} does not exist")
    if path.is_dir() or path.suffix == ".parquet":
        return rows_from_run(path) if path.is_dir() else _dedup(rows_from_leaderboard(_leaderboard(path), path.name))
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            rows.append(ProxyScore(layout=rec["pattern"], seed=int(rec["seed"]), protocol=rec.get("protocol"),
                                   score=float(rec["score"]), tasks_json=json.dumps(rec.get("tasks") or {}),
                                   source=f"file:{path.name}", wall_s=rec.get("wall_s")))
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"--proxy-from: {path} line {n} is not an evaluation result (needs pattern, seed, "
                             "score; the output of `composer evaluate --json`, one per line)") from None
    return _dedup(rows)


def _evaluate(layout: str, seed: int, protocol: str, cache: dict) -> tuple[float, dict, str]:
    """``(score, tasks, protocol label)`` of one proxy evaluation, through the protocol registry (the
    evaluator the search uses): one evaluator per protocol, called per seed, keeps its compiled runs."""
    from search.evaluators import normalize_result
    from search.protocols import evaluator_config

    if protocol not in cache:
        cache[protocol] = evaluator_config(protocol).build()
    evaluator = cache[protocol]
    evaluation = normalize_result(evaluator(layout, seed=seed), evaluator.protocol)
    return evaluation.score, dict(evaluation.tasks), evaluation.protocol


def compute_rows(layout: str, seeds: list[int], protocol: str, evaluator_cache: dict,
                 progress: Callable[[str], None] | None = None) -> list[ProxyScore]:
    """Score ``layout`` on the proxy ``protocol`` for each seed (evaluators reused across layouts)."""
    rows = []
    for seed in seeds:
        if progress:
            progress(f"proxy {layout} seed {seed} ({protocol})")
        t0 = time.perf_counter()
        score, tasks, label = _evaluate(layout, seed, protocol, evaluator_cache)
        rows.append(ProxyScore(layout=layout, seed=seed, protocol=label, score=score, tasks_json=json.dumps(tasks),
                               source="computed", wall_s=time.perf_counter() - t0))
    return rows
