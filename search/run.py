"""End to end: search the stages, aggregate, check the winner and the Llama baseline, extrapolate.

Writes ``runs/<name>/``: ``study.db`` (the Optuna storage, unless ``--storage``), ``leaderboard.parquet``
(after every evaluation), ``winner_<scale>.json`` and ``summary.json``. Everything is rebuilt from the
storage, so an interrupted run resumes with ``--resume`` and loses nothing (docs/search.md).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import optuna

from composer.errors import UsageError
from search import methods
from search.aggregate import aggregate
from search.backends import make_backend
from search.evaluators import EvaluatorConfig, dedup_key
from search.halving import ETA, plan_rung, rung0_budget
from search.layout_view import FILENAME as LAYOUTS_FILE
from search.layout_view import per_layout, write_layouts
from search.leaderboard import FILENAME, write_leaderboard
from search.loop import Engine, Stage
from search.progress import SearchProgress
from search.rows import RunInfo, directions
from search.searchers import get_searcher
from search.settings import SearchSettings, resolve
from search.study import EvaluatedIndex, Heartbeat, default_url, open_storage, recover, run_lock, study_name
from search.study_attrs import SETTINGS, STAGE_WINNER
from search.summary import build_summary

__all__ = ["run_search", "RunContext"]


@dataclasses.dataclass
class RunContext:
    """What the stages share."""

    settings: SearchSettings
    run_dir: Path
    storage: Any
    engine: Engine
    private_storage: bool


def _check_writable(run_dir: Path) -> None:
    """The run folder must take files before any work starts (its leaderboard, summary, study)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"run folder {run_dir} is not writable ({e.strerror}); choose another --runs-dir or "
                         "fix its permissions") from None


def _open_run(given: dict[str, Any]) -> tuple[SearchSettings, Path, Any, bool]:
    """Create the run, or continue it when the flags agree with its stored settings."""
    prelim = resolve(given, None)
    run_dir = Path(prelim.runs_dir) / prelim.run_name
    url = prelim.storage or default_url(run_dir)
    storage = open_storage(url)
    name = prelim.run_name
    exists = name in optuna.get_all_study_names(storage)
    if not exists and prelim.resume:
        raise UsageError(f"--resume: no run named {name!r} in {url}")
    meta = optuna.create_study(storage=storage, study_name=name, load_if_exists=True)
    stored = meta.user_attrs.get(SETTINGS)
    settings = dataclasses.replace(prelim, name=name)
    if stored:
        if prelim.resume:  # flags left out keep their stored values
            settings = resolve(given, stored)
        diffs = SearchSettings.from_dict(stored).differences(settings)
        if diffs:
            raise UsageError(f"run {name!r} exists with other settings ({'; '.join(diffs)}); pass --resume to "
                             "continue it with its stored settings, or --name NEW for a new run")
        if not settings.quiet:
            print(f"composer search: continuing run {name!r} from {url}", file=sys.stderr)
    meta.set_user_attr(SETTINGS, settings.to_dict())
    return settings, run_dir, storage, prelim.storage is None


def _validate(settings: SearchSettings) -> None:
    from composer.presets import get_scale
    from composer.spec import parse_pattern
    from scaling.extrapolate import RULES

    get_scale(settings.scale)
    parse_pattern("".join(settings.primitives))
    if settings.rule not in RULES:
        raise UsageError(f"--rule: must be one of {', '.join(RULES)}, got {settings.rule!r}")
    get_searcher(settings.sampler)
    from search.evaluators import EVALUATORS

    if settings.evaluator not in EVALUATORS:
        raise UsageError(f"--evaluator: unknown evaluator {settings.evaluator!r}; registered: "
                         f"{', '.join(EVALUATORS)}")
    methods.stage_space(settings, 0, None)  # constraint errors surface here, as usage errors


def _open_study(ctx: RunContext, part: str) -> optuna.Study:
    study = optuna.create_study(storage=ctx.storage, study_name=study_name(ctx.settings.run_name, part),
                                directions=directions(ctx.settings.objectives), load_if_exists=True)
    recover(study, ctx.settings.objectives, all_running_are_stale=ctx.private_storage)
    return study


def _stage(ctx: RunContext, index: int, budget: int, previous: str | None) -> Stage:
    s = ctx.settings
    space = methods.stage_space(s, index, previous)
    n = space.n_feasible
    if s.sampler == "exhaustive" and n is None:
        raise UsageError(f"--sampler exhaustive: the space of {space.size} layouts is too large to enumerate")
    searcher = get_searcher("exhaustive" if n is not None and (n <= budget or s.sampler == "exhaustive")
                            else s.sampler)
    rung0 = rung0_budget(budget, n, s.rung_share)
    return Stage(index, study_name(s.run_name, f"stage{index}"), space, min(budget, rung0), searcher)


def _stage_rows(ctx: RunContext, study: optuna.Study) -> list[dict[str, Any]]:
    """Successful rows of a stage: its search study and its seed rungs."""
    name = study.study_name
    return [r for r in ctx.engine.index.rows()
            if (r["study"] == name or r["study"].startswith(name + "-rung")) and r["status"] == "ok"]


def _run_rungs(ctx: RunContext, stage: Stage, study: optuna.Study, budget: int) -> list[dict[str, Any]]:
    """Successive halving over seeds with what the stage's budget has left (``search.halving``)."""
    s = ctx.settings
    first = [r for r in ctx.engine.index.rows() if r["study"] == study.study_name and r["status"] == "ok"]
    n0 = len({r["pattern"] for r in first})
    report, used, r = [], ctx.engine.used(study), 1
    while True:
        rung = _open_study(ctx, f"stage{stage.index}-rung{r}")
        earlier = [row for row in _stage_rows(ctx, study) if row.get("rung") is None or row["rung"] < r]
        jobs = plan_rung(earlier, r, n0, s.seed, budget - used)
        if not jobs:
            return report
        ctx.engine.evaluate_jobs(rung, [(p, None if seed == s.seed else seed) for p, seed in jobs], stage.index,
                                 phase="search", where={"rung": r})
        made = ctx.engine.used(rung)
        report.append({"rung": r, "layouts": len({p for p, _ in jobs}), "seeds_per_layout": ETA**r,
                       "evaluations": made})
        used += made
        r += 1


def _stage_winner(ctx: RunContext, study: optuna.Study, stage: Stage, last: bool) -> str:
    """The aggregated layout of a finished stage. An earlier stage's winner is frozen in its study (the
    later stages are built on it); the last stage's is recomputed, so a larger budget updates it."""
    if STAGE_WINNER in study.user_attrs and not last:
        return study.user_attrs[STAGE_WINNER]["pattern"]
    view = per_layout(_stage_rows(ctx, study))  # K-means and the vote see each layout's mean over seeds
    if not view:
        raise UsageError(f"stage {stage.index}: no evaluation succeeded, nothing to aggregate (see the leaderboard)")
    agg = aggregate([v["pattern"] for v in view], [v["score_mean"] for v in view], ctx.settings.aggregate,
                    seed=ctx.settings.seed)
    pattern, note = agg.pattern, None
    block = pattern[len(stage.space.prefix):len(pattern) - len(stage.space.suffix)]
    if not stage.space.contains(block):  # a vote can leave the constraints: keep the best feasible instead
        pattern, note = view[0]["pattern"], f"aggregated {agg.pattern} violates the constraints; best kept"
    floor = min(view[i]["score_mean"] for i in agg.members)
    study.set_user_attr(STAGE_WINNER, {"pattern": pattern, "aggregation": agg.to_dict(), "note": note,
                                       "cluster_min_score": floor,
                                       "cluster": [view[i]["pattern"] for i in agg.members]})
    return pattern


def _search_stages(ctx: RunContext, progress: SearchProgress) -> list[dict[str, Any]]:
    s = ctx.settings
    budgets = methods.stage_budgets(s.budget, methods.n_stages(s))
    previous, report = None, []
    for index, budget in enumerate(budgets):
        stage = _stage(ctx, index, budget, previous)
        study = _open_study(ctx, f"stage{index}")
        last = index == len(budgets) - 1
        rungs = []
        if last or STAGE_WINNER not in study.user_attrs:
            progress.stage(f"stage {index + 1}/{len(budgets)}", budget, _stage_used(ctx, study))
            ctx.engine.run_stage(study, stage, s.workers)
            rungs = _run_rungs(ctx, stage, study, budget)
        previous = _stage_winner(ctx, study, stage, last)
        report.append({**_stage_report(ctx, study, stage), "rungs": rungs, "budget": stage.budget + sum(
            r["evaluations"] for r in rungs), "rung0_budget": stage.budget})
    return report


def _stage_used(ctx: RunContext, study: optuna.Study) -> int:
    return sum(1 for r in ctx.engine.index.rows() if r["phase"] == "search"
               and (r["study"] == study.study_name or r["study"].startswith(study.study_name + "-rung")))


def _stage_report(ctx: RunContext, study: optuna.Study, stage: Stage) -> dict[str, Any]:
    from search.study_attrs import DUPLICATE, INFEASIBLE, STATUS

    trials = study.get_trials(deepcopy=False)
    count = lambda status: sum(1 for t in trials if t.user_attrs.get(STATUS) == status)
    return {"index": stage.index, "study": study.study_name, "space": stage.space.to_dict(),
            "space_size": stage.space.size, "feasible": stage.space.n_feasible, "sampler": stage.searcher.name,
            "sampler_impl": stage.searcher.impl, "budget": stage.budget, "evaluations": ctx.engine.used(study),
            "duplicates": count(DUPLICATE), "infeasible": count(INFEASIBLE),
            "winner": study.user_attrs.get(STAGE_WINNER)}


def _final_phase(ctx: RunContext, winner: str, progress: SearchProgress) -> dict[str, dict[str, Any]]:
    """Evaluate the winner and the Llama layout of the same depth unless already evaluated."""
    from composer.presets import layout

    llama = layout("llama", len(winner))
    todo = [k for k in dict.fromkeys(dedup_key(ctx.engine.evaluator, p) for p in (winner, llama))
            if k not in ctx.engine.index]
    if todo:
        progress.stage("final check", len(todo), 0)
    study = _open_study(ctx, "final")
    ctx.engine.evaluate_layouts(study, [winner, llama], stage_index=methods.n_stages(ctx.settings))
    rows = {}
    for role, pattern in (("winner", winner), ("llama", llama)):
        entry = ctx.engine.index.get(dedup_key(ctx.engine.evaluator, pattern))
        rows[role] = entry.row if entry else {"pattern": pattern, "score": None}
    return rows


def _rescore(ctx: RunContext, winner: str, progress: SearchProgress) -> None:
    """The chosen winner and the Llama layout at fresh seeds the search never saw; the margin is
    measured there, free of the winner's curse (docs/search.md)."""
    from composer.presets import layout

    fresh = ctx.settings.fresh_seeds
    if not fresh:
        return
    pair = list(dict.fromkeys([winner, layout("llama", len(winner))]))
    progress.stage("rescoring on fresh seeds", len(pair) * len(fresh), 0)
    ctx.engine.evaluate_layouts(_open_study(ctx, "final"), pair, stage_index=methods.n_stages(ctx.settings),
                                seeds=fresh)


def _choose_winner(ctx: RunContext, stage: dict[str, Any], final: dict[str, dict[str, Any]]) -> None:
    """Keep the aggregated layout unless its own proxy score falls below every member of the top cluster.

    Our guard, not the paper's: a per-position vote over a cluster whose members place the same
    primitives at different positions can return a layout none of them resembles (with flat scores,
    even one without attention). The aggregated layout has just been evaluated, so such a vote is
    caught and the best candidate of the last stage is kept instead; both are in ``summary.json``.
    """
    final["aggregated"] = final["winner"]
    floor, score = stage["winner"]["cluster_min_score"], final["winner"].get("score")
    if score is not None and score >= floor:
        final["choice"] = {"source": "aggregate"}
        return
    study = _open_study(ctx, stage["study"].rsplit("/", 1)[1])
    best = per_layout(_stage_rows(ctx, study))[0]["pattern"]  # the best mean over seeds
    final["winner"] = ctx.engine.index.get(dedup_key(ctx.engine.evaluator, best)).row
    final["choice"] = {"source": "best", "reason": f"the aggregated layout scored {score}, below the lowest "
                                                   f"score {floor} of the top cluster"}


def _install_sigterm() -> None:
    def _raise(signum, frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread (e.g. under a test runner's thread)
        pass


def run_search(given: dict[str, Any]) -> dict[str, Any]:
    """Run (or resume) the search described by the CLI flags ``given``; return the summary."""
    start = time.time()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        prelim = resolve(given, None)
    except ValueError as e:
        raise UsageError(str(e)) from None
    run_dir = Path(prelim.runs_dir) / prelim.run_name
    _check_writable(run_dir)
    with run_lock(run_dir):
        try:
            settings, run_dir, storage, private = _open_run(given)
            _validate(settings)
        except ValueError as e:
            raise UsageError(str(e)) from None
        _install_sigterm()
        return _execute(settings, run_dir, storage, private, start)


def _execute(settings: SearchSettings, run_dir: Path, storage, private: bool, start: float) -> dict[str, Any]:
    # The Llama check adds A and M; building them in up front spares the evaluator a recompile.
    config = EvaluatorConfig(kind=settings.evaluator, protocol=settings.protocol, seed=settings.seed,
                             tasks=settings.tasks, steps_scale=settings.steps_scale,
                             space=tuple(dict.fromkeys(settings.primitives + ("A", "M"))))
    evaluator = config.build()
    names = [n for n in optuna.get_all_study_names(storage) if n.startswith(settings.run_name + "/")]
    index = EvaluatedIndex.load([optuna.load_study(study_name=n, storage=storage) for n in names])
    leaderboard = run_dir / FILENAME
    write_leaderboard(index.rows(), leaderboard)
    backend = make_backend(settings.backend, config, settings.workers, evaluator)
    with SearchProgress(settings.budget, quiet=settings.quiet) as progress, Heartbeat(storage) as heartbeat, \
            warnings.catch_warnings():
        # We run our own ask/tell loop and heartbeat thread (search.study.Heartbeat), not Study.optimize.
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        def on_record(row: dict[str, Any]) -> None:
            write_leaderboard(index.rows(), leaderboard)
            write_layouts(index.rows(), run_dir / LAYOUTS_FILE)
            progress.advance(row)

        engine = Engine(run=settings.run_name, evaluator=evaluator, backend=backend, index=index,
                        objectives=settings.objectives, seed=settings.seed, scale=settings.scale,
                        rule=settings.rule, sampler_name=settings.sampler, info=RunInfo.collect(),
                        on_record=on_record, heartbeat=heartbeat)
        ctx = RunContext(settings, run_dir, storage, engine, private)
        try:
            stages = _search_stages(ctx, progress)
            final = _final_phase(ctx, stages[-1]["winner"]["pattern"], progress)
            _choose_winner(ctx, stages[-1], final)
            _rescore(ctx, final["winner"]["pattern"], progress)
        finally:
            backend.close()
    summary = build_summary(settings, stages, final, index.rows(), wall_s=time.time() - start)
    summary.update(run_dir=str(run_dir), leaderboard=str(leaderboard), storage=settings.storage or "(run folder)",
                   sampler_impl=get_searcher(settings.sampler).impl)
    _write_outputs(run_dir, settings, summary)
    return summary


def _write_outputs(run_dir: Path, settings: SearchSettings, summary: dict[str, Any]) -> None:
    from scaling.extrapolate import extrapolate

    spec = extrapolate(summary["proxy"]["pattern"], settings.scale, settings.rule).spec
    _atomic_write(run_dir / f"winner_{settings.scale}.json", spec.to_json() + "\n")
    _atomic_write(run_dir / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")


def _atomic_write(path: Path, text: str) -> None:
    from composer.atomic import write_text

    write_text(path, text)
