"""Run a fidelity study: ground-truth training runs and proxy scores, durable and resumable.

Files under ``runs/<name>/``: ``settings.json`` (the shared recipe), ``fidelity.parquet`` (one row per
training run), ``proxy.parquet`` (one row per proxy evaluation), ``train/<layout>-s<seed>-t<tokens>/``
(each run's folder with Orbax checkpoints, so a killed run continues mid-way), and the report
(``fidelity.md``, ``summary.json``, ``fidelity.png``), rewritten after every finished run.

Under the fair recipe (``settings.lrs``, docs/fidelity.md) a ground-truth row is a choice: the layout
trains at every rate of the grid, each run scored on the dev split only (``lr_grid.parquet``, one row per
(layout, seed, budget, rate), each run in ``train/<layout>-s<seed>-t<tokens>-lr<rate>/``), the rate with
the best dev loss is chosen (``composer.lr_grid``), and only then is the chosen run scored on the
validation windows. Every grid run is resumable on its own.

Order of work: the first seed of every layout (its whole grid), then the proxy scores still missing,
then the other seeds (at the first seed's chosen rate), then the long-budget runs; a study stopped
part-way already ranks every layout once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path

from composer.errors import UsageError
from composer.jsontypes import JSONObject
from search.evaluators import DEFAULT_PROTOCOL as DEFAULT_PROXY
from search.fidelity import runs
from search.fidelity.plan import FidelitySettings, Job
from search.fidelity.table import StudyTables
from search.fidelity.truth_rows import ProxyScore, StoredPlan

__all__ = ["StudyRequest", "run_study", "SETTINGS_FILE"]

SETTINGS_FILE = "settings.json"
PLAN_FILE = "plan.json"
"""The last invocation's layouts, winner and proxy protocol (what ``--report-only`` reports on)."""


@dataclasses.dataclass
class StudyRequest:
    """One invocation of ``composer fidelity``."""

    run_dir: Path
    settings: FidelitySettings
    jobs: list[Job]
    layouts: list[str]
    proxy_seeds: tuple[int, ...] = (0, 1, 2)
    proxy_protocol: str | None = None
    """The proxy protocol judged; ``None``: the study's last one (``plan.json``), else the one protocol of
    the given ``proxy_rows``, else ``capacity``."""
    proxy_rows: list[ProxyScore] = dataclasses.field(default_factory=list)
    """Imported proxy rows (from a search run or a file), merged into ``proxy.parquet``."""
    compute_proxy: bool = True
    winner: str | None = None
    """Layout called the search's winner (compared with the Llama layout in the report)."""
    report_only: bool = False
    progress: bool = True
    max_runs: int | None = None
    """Stop after this many new training runs (a study is resumed by running it again)."""
    explicit: set[str] | None = None
    """Settings fields the user gave; the others take the stored study's values (``None``: compare all)."""
    pairs: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    """Layout pairs whose differences the report gives with pooled intervals at every budget."""
    pack: int = 1
    """Rates of a cell's grid trained together in one program (``composer.packed_train``; 1: one at a
    time). Not a setting of the study: members equal their solo runs to float rounding."""


def _settings(run_dir: Path, given: FidelitySettings, explicit: set[str] | None = None) -> FidelitySettings:
    path = run_dir / SETTINGS_FILE
    if path.exists():
        stored = FidelitySettings.from_dict(json.loads(path.read_text()))
        if explicit is not None:  # fields the user left out are the stored study's
            flat = given.to_dict()
            given = FidelitySettings.from_dict({**stored.to_dict(), **{f: flat[f] for f in explicit}})
        diffs = given.differences(stored)
        if diffs:
            raise UsageError(f"study {run_dir.name!r} was run with other settings ({'; '.join(diffs)}); use the "
                             "same settings to extend it, or --name NEW for a new study")
        return stored
    from composer.checkpoint import write_json

    write_json(path, given.to_dict())
    return given


def _stored_plan(req: StudyRequest) -> StoredPlan:
    """The layouts, winner and proxy protocol of the study's last invocation (all empty for a new study)."""
    path = req.run_dir / PLAN_FILE
    return StoredPlan.from_dict(json.loads(path.read_text())) if path.exists() else StoredPlan()


def _remember_plan(req: StudyRequest) -> None:
    from composer.atomic import write_json

    plan = StoredPlan(layouts=tuple(req.layouts), winner=req.winner, proxy_protocol=req.proxy_protocol,
                      pairs=tuple(tuple(p) for p in req.pairs))
    write_json(req.run_dir / PLAN_FILE, plan.to_dict())


def _say(req: StudyRequest, text: str) -> None:
    if req.progress:
        print(f"composer fidelity: {text}", file=sys.stderr, flush=True)


def _eta(done_walls: list[float], remaining: int) -> str:
    if not done_walls or not remaining:
        return "-"
    return str(dt.timedelta(seconds=round(sum(done_walls) / len(done_walls) * remaining)))


def _write_report(req: StudyRequest, tables: StudyTables) -> None:
    from search.fidelity.truth_report import write_report

    write_report(req.run_dir, tables.truth, tables.proxy, settings=req.settings, winner=req.winner,
                 proxy_protocol=req.proxy_protocol, grid_rows=tables.grid, pairs=req.pairs,
                 layouts=list(dict.fromkeys(req.layouts + [j.layout for j in req.jobs])))


def _compute_missing_proxy(req: StudyRequest, tables: StudyTables, cache: dict) -> None:
    from search.fidelity.proxy import compute_rows

    if not req.compute_proxy:
        return
    for layout in req.layouts:
        missing = [s for s in req.proxy_seeds if s not in tables.proxy_seeds_of(layout, req.proxy_protocol)]
        if missing:
            rows = compute_rows(layout, missing, req.proxy_protocol, cache, progress=lambda t: _say(req, t))
            tables.add_proxy(rows)
            _write_report(req, tables)


def _validate_pairs(req: StudyRequest) -> None:
    from composer.spec import parse_pattern

    req.pairs = [("".join(parse_pattern(a)), "".join(parse_pattern(b))) for a, b in req.pairs]


def run_study(req: StudyRequest) -> JSONObject:
    """Run (or resume) the study and write its report; returns the summary."""
    from search.locks import run_lock

    _validate_pairs(req)
    if req.report_only:  # reads the tables and rewrites the report atomically: safe beside a running study
        if not (req.run_dir / SETTINGS_FILE).exists():
            raise UsageError(f"--report-only: no fidelity study at {req.run_dir}")
        req.settings = FidelitySettings.from_dict(json.loads((req.run_dir / SETTINGS_FILE).read_text()))
        stored = _stored_plan(req)
        req.winner = req.winner or stored.winner
        req.layouts = req.layouts or list(stored.layouts)
        req.proxy_protocol = req.proxy_protocol or stored.proxy_protocol or DEFAULT_PROXY
        req.pairs = req.pairs or list(stored.pairs)
        _write_report(req, StudyTables(req.run_dir))
    else:
        req.run_dir.mkdir(parents=True, exist_ok=True)
        with run_lock(req.run_dir, "composer fidelity"):
            req.settings = _settings(req.run_dir, req.settings, req.explicit)
            if req.proxy_protocol is None:
                given = {str(r.protocol) for r in req.proxy_rows}  # scores the user handed in
                req.proxy_protocol = (_stored_plan(req).proxy_protocol
                                      or (given.pop() if len(given) == 1 else DEFAULT_PROXY))
            _remember_plan(req)
            tables = StudyTables(req.run_dir)
            tables.add_proxy(req.proxy_rows)
            _run_jobs(req, tables)
            _write_report(req, tables)
    return json.loads((req.run_dir / "summary.json").read_text())


class _Budget:
    """Counts the training runs started by this invocation against ``--max-runs``; times them for the ETA."""

    def __init__(self, req: StudyRequest, planned: int):
        self.req, self.planned, self.started, self.walls = req, planned, 0, []

    def spent(self) -> bool:
        if self.req.max_runs is not None and self.started >= self.req.max_runs:
            _say(self.req, f"stopping after {self.started} run(s) (--max-runs); run the same command to continue")
            return True
        return False

    def start(self, what: str, runs: int = 1) -> None:
        left = max(self.planned - self.started, 0)
        first = f"[{self.started + 1}/{self.planned}]" if runs == 1 else \
            f"[{self.started + 1}-{self.started + runs}/{self.planned}]"
        _say(self.req, f"{first} training {what} at {self.req.settings.scale}; study ETA {_eta(self.walls, left)}")
        self.started += runs


def _reference(job: Job, req: StudyRequest, first_seed: int, main_tokens: int) -> Job | None:
    """The cell whose grid chooses ``job``'s rate (``None``: ``job`` runs the grid itself)."""
    if req.settings.grid_seeds == "all" or (job.seed == first_seed and job.tokens == main_tokens):
        return None
    return Job(main_tokens, first_seed, job.layout)


def _tuned_cell(job: Job, req: StudyRequest, tables: StudyTables, source, budget: _Budget, ref: Job | None) -> bool:
    """Run what ``job``'s cell still needs (grid runs, then the validation score); False when stopped."""
    from composer import lr_grid
    from composer.lr_grid import lr_tag

    s = req.settings
    if ref is None:
        grid, extend, source_note = s.lrs, s.lr_extend, "grid"
    else:
        ref_dev = tables.dev_losses(ref.key)
        if ref.key not in tables.done() or lr_grid.choose(ref_dev) is None:
            _say(req, f"{job.key}: waits for the grid of {ref.key}")
            return True
        grid, extend, source_note = (lr_grid.choose(ref_dev),), 0, f"chosen on {ref.key}"
    while True:
        dev = tables.dev_losses(job.key)
        todo = lr_grid.next_rates(grid, dev, extend)
        if not todo:
            break
        for group in _packs(job, todo, req):
            if budget.spent():
                return False
            budget.start(f"{job.layout} seed {job.seed} ({job.tokens:,} tokens) at lr "
                         f"{', '.join(f'{x:g}' for x in group)} packed", runs=len(group))
            for row in runs.grid_rows_packed(job, group, req, source):
                budget.walls.append(row.wall_s)
                tables.add_grid(row)
        for lr in (x for x in todo if x not in tables.dev_losses(job.key)):
            if budget.spent():
                return False
            budget.start(f"{job.layout} seed {job.seed} ({job.tokens:,} tokens) at lr {lr:g} [{lr_tag(lr)}]")
            row = runs.grid_row(job, lr, req, source)
            budget.walls.append(row.wall_s)
            tables.add_grid(row)
    rows = [r for r in tables.grid if r.cell == job.key]
    lr = lr_grid.choose(dev)
    if lr is not None and not runs.run_is_here(job, lr, req):
        # A fresh clone restores the tables, not the run folders: the chosen run is trained again to be
        # scored on validation (a run like any other: counted, shown, stoppable).
        if budget.spent():
            return False
        budget.start(f"{job.layout} seed {job.seed} ({job.tokens:,} tokens) at lr {lr:g} again (its run folder "
                     "is not here) to score it on validation")
        again = runs.rerun(job, lr, req, source, dev[lr])
        budget.walls.append(again.wall_s)
        rows.append(again)  # its wall time counts in the cell's row
    tables.add_truth(runs.chosen_row(job, req, source, dev, source_note, rows))
    _write_report(req, tables)
    return True


def _packs(job: Job, todo: tuple[float, ...], req: StudyRequest) -> list[list[float]]:
    """The rates of ``todo`` that train packed (``req.pack``): new run folders, in groups of two or more."""
    from composer.lr_grid import holds_run, packs_of

    if req.pack < 2:
        return []
    fresh = [lr for lr in todo if not holds_run(req.run_dir / "train" / runs.grid_folder(job, lr))]
    return [g for g in packs_of(fresh, req.pack) if len(g) > 1]


def _run_jobs(req: StudyRequest, tables: StudyTables) -> None:
    from composer.data import CorpusSource

    s = req.settings
    source = CorpusSource(s.corpus, dev_fraction=s.dev_fraction)
    first_seed = min((j.seed for j in req.jobs), default=0)
    main_tokens = req.jobs[0].tokens if req.jobs else 0
    todo = [j for j in req.jobs if j.key not in tables.done()]
    prefix = {j for j in req.jobs[:len(req.layouts)] if j.seed == first_seed}
    first = [j for j in todo if j in prefix]
    rest = [j for j in todo if j not in prefix]
    per_cell = lambda j: (len(s.lrs) if _reference(j, req, first_seed, main_tokens) is None else 1) if s.tuned else 1  # noqa: E731
    budget = _Budget(req, sum(per_cell(j) for j in first + rest))
    cache: dict = {}
    for phase in ("first", "proxy", "rest"):
        if phase == "proxy":
            _compute_missing_proxy(req, tables, cache)
            continue
        for job in first if phase == "first" else rest:
            if s.tuned:
                if not _tuned_cell(job, req, tables, source, budget, _reference(job, req, first_seed, main_tokens)):
                    return
                continue
            if budget.spent():
                return
            budget.start(f"{job.layout} seed {job.seed} ({job.tokens:,} tokens)")
            row = runs.fixed_rate_row(job, req, source)
            budget.walls.append(row.wall_s)
            tables.add_truth(row)
            _write_report(req, tables)
