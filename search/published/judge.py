"""Score proxies against published results: ``composer fidelity --published``.

Every layout of each chosen set is scored by each protocol (through the evaluator registry, the
same path as ``composer search``) at ``seeds`` seeds, at the set's published depth or mapped to
``depth`` layers with matched parameters (``search.published.mapping``). One row per (layout, seed,
protocol) in ``published.parquet`` (a ``JudgeRow``, ``search.published.judge_records``), rewritten
atomically after every evaluation; a killed study resumes by running the same command, and no stored
evaluation is ever repeated (a layout shared by two sets, or by two depths, is evaluated once). The
report (``search.published.judge_report``) is rewritten after every evaluation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from pathlib import Path

from composer.errors import UsageError
from composer.jsontypes import JSONObject
from search.published.judge_records import Judgement, JudgeRow
from search.published.sets import PublishedSet

__all__ = ["JudgeRequest", "Judgement", "run_judge", "ROWS_FILE", "COLUMNS", "PLAN_FILE"]

ROWS_FILE = "published.parquet"
PLAN_FILE = "plan.json"
COLUMNS = tuple(f.name for f in dataclasses.fields(JudgeRow))
"""``status`` is ``ok`` or ``error`` (the evaluator raised, e.g. a NaN loss: kept with its message, left
out of the statistics, and not retried on resume; delete the row to retry it). ``source`` is
``evaluated``, or ``parts`` for a combined protocol (``mix``) computed from its parts' stored rows."""


@dataclasses.dataclass
class JudgeRequest:
    run_dir: Path
    sets: list[PublishedSet]
    protocols: list[str]
    seeds: tuple[int, ...] = (0, 1)
    depth: int | None = None
    steps_scale: float | None = None
    progress: bool = True
    report_only: bool = False
    max_evals: int | None = None
    """Stop after this many new evaluations (resume later with the same command)."""
    workers: int = 1
    """Local worker processes, each with its own evaluator (``search.backends``); rows are written by
    this process as each batch of ``workers`` evaluations comes back."""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _config(protocol: str, steps_scale: float | None):
    from search.protocols import evaluator_config

    return evaluator_config(protocol, steps_scale=steps_scale)


def _build(protocol: str, steps_scale: float | None):
    try:
        return _config(protocol, steps_scale).build()
    except UsageError:
        raise
    except ValueError as e:
        raise UsageError(f"--protocol {protocol}: {e}") from None


def _params_fn(evaluator):
    from scaling.counting import non_embedding_params

    cache: dict[str, int] = {}

    def params(pattern: str) -> int:
        if pattern not in cache:
            cache[pattern] = non_embedding_params(evaluator.spec(pattern))
        return cache[pattern]

    return params


def plan_layouts(s: PublishedSet, depth: int | None, evaluator, params) -> tuple[str, ...]:
    """The layout the proxy evaluates for each published layout of ``s`` (published or mapped), each
    checked to build under the protocol before anything is evaluated."""
    from search.published.mapping import map_layout

    out = []
    for row in s.layouts:
        try:
            layout = row.layout if depth is None or s.mapping == "none" else map_layout(row.layout, depth, params)
            params(layout)
        except Exception as e:  # noqa: BLE001 - whatever the protocol's builder raises
            raise UsageError(f"--published {s.name}: protocol {evaluator.protocol} cannot build layout "
                             f"{row.label!r} ({row.layout}): {e}; choose a protocol that supports its "
                             "primitives or leave the set out") from None
        out.append(layout)
    return tuple(out)


class _Rows:
    """``published.parquet`` held in memory and rewritten atomically on every new row."""

    def __init__(self, run_dir: Path):
        from search.fidelity.table import read_table

        self.path = run_dir / ROWS_FILE
        self.rows = [JudgeRow.from_dict(r) for r in read_table(self.path, COLUMNS).to_dict("records")]
        self.keys = {(r.layout, r.seed, r.protocol): r for r in self.rows}

    def get(self, layout: str, seed: int, protocol: str) -> JudgeRow | None:
        return self.keys.get((layout, seed, protocol))

    def add(self, row: JudgeRow) -> None:
        from search.fidelity.table import write_table

        self.rows.append(row)
        self.keys[(row.layout, row.seed, row.protocol)] = row
        write_table([r.to_dict() for r in self.rows], self.path, COLUMNS)


def _stored_plan(run_dir: Path) -> list[Judgement]:
    path = run_dir / PLAN_FILE
    if not path.exists():
        return []
    try:
        raw = json.loads(path.read_text())
        return [Judgement.from_dict(j) for j in raw["judgements"]]
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{path} is damaged; delete it (the rows in {ROWS_FILE} are kept) and run the "
                         "command again") from None


def _remember(run_dir: Path, new: list[Judgement]) -> list[Judgement]:
    from composer.atomic import write_json

    keep = {(j.set, j.protocol, j.depth): j for j in _stored_plan(run_dir)}
    for j in new:
        keep[(j.set, j.protocol, j.depth)] = j
    plan = list(keep.values())
    write_json(run_dir / PLAN_FILE, {"judgements": [j.to_dict() for j in plan]})
    return plan


def _row(outcome, protocol: str, seed: int, params) -> JudgeRow:
    row = JudgeRow(layout=outcome.pattern, seed=seed, protocol=protocol, params=params(outcome.pattern),
                   wall_s=outcome.finished_at - outcome.started_at, finished_at=_now())
    r = outcome.result
    if r is None:
        return dataclasses.replace(row, status="error", error=outcome.error)
    return dataclasses.replace(row, score=r.score, tasks_json=json.dumps(r.tasks), compile_s=r.compile_s,
                               device=r.device, source="evaluated")


def _from_parts(ev, layout: str, seed: int, rows: "_Rows", params) -> JudgeRow | None:
    """The row of a combined protocol (``mix``) built from its parts' stored rows, if all are there."""
    labels = getattr(ev, "part_labels", None)
    if labels is None:
        return None
    found = {}
    for name, label in labels().items():
        row = rows.get(layout, seed, label)
        if row is None or row.status != "ok":
            return None
        found[name] = row
    # an empty stored cell is None in a JudgeRow where it was NaN in the frame: float() keeps it NaN
    r = ev.from_parts(layout, seed, {n: (_nan(x.score), json.loads(x.tasks_json or "{}"))
                                     for n, x in found.items()})
    return JudgeRow(layout=layout, seed=seed, protocol=ev.protocol, score=r.score, params=params(layout),
                    tasks_json=json.dumps(r.tasks), wall_s=sum(_nan(x.wall_s) for x in found.values()),
                    source="parts", finished_at=_now())


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


def _jobs(judgements: list[Judgement], rows: _Rows) -> list[tuple[str, int, str]]:
    """Missing (layout, seed, protocol), first seed of everything first, so a study stopped part-way
    already ranks every set once."""
    todo: dict[tuple[str, int, str], None] = {}
    for rank in range(max((len(j.seeds) for j in judgements), default=0)):
        for j in judgements:
            if rank < len(j.seeds):
                for layout in j.layouts:
                    key = (layout, j.seeds[rank], j.protocol)
                    if key not in rows.keys:
                        todo[key] = None
    return list(todo)


def run_judge(req: JudgeRequest) -> JSONObject:
    """Evaluate what is missing, write the report; returns the summary."""
    from search.locks import run_lock
    from search.published.judge_report import write_report

    if req.report_only:
        if not (req.run_dir / ROWS_FILE).exists():
            raise UsageError(f"--report-only: no published study at {req.run_dir} (no {ROWS_FILE})")
        return write_report(req.run_dir, _Rows(req.run_dir).rows, _stored_plan(req.run_dir))
    req.run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(req.run_dir, "composer fidelity --published"):
        rows = _Rows(req.run_dir)
        evaluators, judgements = {}, []
        for protocol in req.protocols:  # build and check everything before the first evaluation
            ev = _build(protocol, req.steps_scale)
            params = _params_fn(ev)
            evaluators[ev.protocol] = (ev, params, protocol)
            for s in req.sets:
                layouts = plan_layouts(s, req.depth, ev, params)
                judgements.append(Judgement(s.name, ev.protocol, req.depth, req.seeds, layouts))
        plan = _remember(req.run_dir, judgements)
        todo = _jobs(judgements, rows)
        _run(req, todo, evaluators, rows, plan)
        return write_report(req.run_dir, rows.rows, plan)


def _run(req: JudgeRequest, todo, evaluators, rows: _Rows, plan: list[Judgement]) -> None:
    from search.backends import make_backend, run_with_retries
    from search.progress import SearchProgress
    from search.published.judge_report import write_report

    if req.max_evals is not None:
        todo = todo[:req.max_evals]
    with SearchProgress(len(todo), quiet=not req.progress, label="published judge") as bar:
        for protocol, (ev, params, name) in evaluators.items():
            jobs = []
            for layout, seed, p in todo:
                if p != protocol:
                    continue
                row = _from_parts(ev, layout, seed, rows, params)
                if row is None:
                    jobs.append((layout, seed))
                else:
                    rows.add(row)
                    bar.advance(row)
            if not jobs:
                continue
            backend = make_backend("local", _config(name, req.steps_scale), req.workers, ev)
            try:
                for i in range(0, len(jobs), max(1, req.workers)):
                    batch = jobs[i:i + max(1, req.workers)]
                    for (_, seed), outcome in zip(batch, run_with_retries(backend, batch, retries=1)):
                        row = _row(outcome, protocol, seed, params)
                        rows.add(row)
                        bar.advance(row)
                    write_report(req.run_dir, rows.rows, plan, figures=False)
            finally:
                backend.close()
