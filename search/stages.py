"""The phases of a search run: the stages with their seed rungs, the final check and the winner.

Each phase reads and writes only the run's storage (through the engine), so every phase is resumable:
a stage's study holds its proposals, a rung's study its (layout, seed) jobs, the ``final`` study the
checks of the winner and the Llama layout and their fresh-seed rescoring (docs/search.md).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import optuna

from composer.errors import UsageError
from search import methods
from search.aggregate import aggregate
from search.evaluators import dedup_key
from search.halving import ETA, plan_rung, rung0_budget
from search.loop import Engine, Stage
from search.progress import SearchProgress
from search.recovery import recover
from search.results.layout_view import per_layout
from search.results.records import Row
from search.results.reports import FinalCheck, ProxyResult, RungReport, StageReport, StageWinner, WinnerChoice
from search.results.rows import directions
from search.searchers import get_searcher
from search.settings import SearchSettings
from search.storage import study_name
from search.study_attrs import STAGE_WINNER

__all__ = ["RunContext", "open_study", "search_stages", "final_phase", "rescore", "choose_winner"]


@dataclasses.dataclass
class RunContext:
    """What the stages share."""

    settings: SearchSettings
    run_dir: Path
    storage: Any
    engine: Engine
    private_storage: bool


def open_study(ctx: RunContext, part: str) -> optuna.Study:
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


def _stage_rows(ctx: RunContext, index: int) -> list[Row]:
    """Successful rows of stage ``index``: its search and its seed rungs (by the rows' own fields)."""
    return [r for r in ctx.engine.index.rows() if r.phase == "search" and r.stage == index and r.status == "ok"]


def _run_rungs(ctx: RunContext, stage: Stage, study: optuna.Study, budget: int) -> list[RungReport]:
    """Successive halving over seeds with what the stage's budget has left (``search.halving``)."""
    s = ctx.settings
    first = [r for r in _stage_rows(ctx, stage.index) if r.rung is None]
    n0 = len({r.pattern for r in first})
    report, used, r = [], ctx.engine.used(study), 1
    while True:
        rung = open_study(ctx, f"stage{stage.index}-rung{r}")
        earlier = [row for row in _stage_rows(ctx, stage.index) if row.rung is None or row.rung < r]
        jobs = plan_rung(earlier, r, n0, s.seed, budget - used)
        if not jobs:
            return report
        ctx.engine.evaluate_jobs(rung, [(p, None if seed == s.seed else seed) for p, seed in jobs], stage.index,
                                 phase="search", rung=r)
        made = ctx.engine.used(rung)
        report.append(RungReport(rung=r, layouts=len({p for p, _ in jobs}), seeds_per_layout=ETA**r,
                                 evaluations=made))
        used += made
        r += 1


def _stage_winner(ctx: RunContext, study: optuna.Study, stage: Stage, last: bool) -> str:
    """The aggregated layout of a finished stage. An earlier stage's winner is frozen in its study (the
    later stages are built on it); the last stage's is recomputed, so a larger budget updates it."""
    if STAGE_WINNER in study.user_attrs and not last:
        return StageWinner.from_dict(study.user_attrs[STAGE_WINNER]).pattern
    view = per_layout(_stage_rows(ctx, stage.index))  # K-means and the vote see each layout's mean over seeds
    if not view:
        raise UsageError(f"stage {stage.index}: no evaluation succeeded, nothing to aggregate (see the leaderboard)")
    agg = aggregate([v.pattern for v in view], [v.score_mean for v in view], ctx.settings.aggregate,
                    seed=ctx.settings.seed)
    pattern, note = agg.pattern, None
    block = pattern[len(stage.space.prefix):len(pattern) - len(stage.space.suffix)]
    if not stage.space.contains(block):  # a vote can leave the constraints: keep the best feasible instead
        pattern, note = view[0].pattern, f"aggregated {agg.pattern} violates the constraints; best kept"
    won = StageWinner(pattern=pattern, aggregation=agg.to_dict(), note=note,
                      cluster_min_score=min(view[i].score_mean for i in agg.members),
                      cluster=tuple(view[i].pattern for i in agg.members))
    study.set_user_attr(STAGE_WINNER, won.to_dict())
    return pattern


def search_stages(ctx: RunContext, progress: SearchProgress) -> list[StageReport]:
    s = ctx.settings
    budgets = methods.stage_budgets(s.budget, methods.n_stages(s))
    previous, report = None, []
    for index, budget in enumerate(budgets):
        stage = _stage(ctx, index, budget, previous)
        study = open_study(ctx, f"stage{index}")
        last = index == len(budgets) - 1
        rungs = []
        if last or STAGE_WINNER not in study.user_attrs:
            progress.stage(f"stage {index + 1}/{len(budgets)}", budget, _stage_used(ctx, index))
            ctx.engine.run_stage(study, stage, s.workers)
            rungs = _run_rungs(ctx, stage, study, budget)
        previous = _stage_winner(ctx, study, stage, last)
        report.append(_stage_report(ctx, study, stage, tuple(rungs)))
    return report


def _stage_used(ctx: RunContext, index: int) -> int:
    return sum(1 for r in ctx.engine.index.rows() if r.phase == "search" and r.stage == index)


def _stage_report(ctx: RunContext, study: optuna.Study, stage: Stage, rungs: tuple[RungReport, ...]) -> StageReport:
    from search.study_attrs import DUPLICATE, INFEASIBLE, STATUS

    trials = study.get_trials(deepcopy=False)
    count = lambda status: sum(1 for t in trials if t.user_attrs.get(STATUS) == status)
    won = study.user_attrs.get(STAGE_WINNER)
    return StageReport(index=stage.index, study=study.study_name, space=stage.space.to_dict(),
                       space_size=stage.space.size, feasible=stage.space.n_feasible, sampler=stage.searcher.name,
                       sampler_impl=stage.searcher.impl, budget=stage.budget + sum(r.evaluations for r in rungs),
                       evaluations=ctx.engine.used(study), duplicates=count(DUPLICATE), infeasible=count(INFEASIBLE),
                       winner=StageWinner.from_dict(won) if won else None, rungs=rungs, rung0_budget=stage.budget)


def final_phase(ctx: RunContext, winner: str, progress: SearchProgress) -> FinalCheck:
    """Evaluate the winner and the Llama layout of the same depth unless already evaluated."""
    from composer.presets import layout

    llama = layout("llama", len(winner))
    todo = [k for k in dict.fromkeys(dedup_key(ctx.engine.evaluator, p) for p in (winner, llama))
            if k not in ctx.engine.index]
    if todo:
        progress.stage("final check", len(todo), 0)
    study = open_study(ctx, "final")
    ctx.engine.evaluate_layouts(study, [winner, llama], stage_index=methods.n_stages(ctx.settings))
    return FinalCheck(winner=_result(ctx, winner), llama=_result(ctx, llama))


def _result(ctx: RunContext, pattern: str) -> ProxyResult:
    entry = ctx.engine.index.get(dedup_key(ctx.engine.evaluator, pattern))
    return ProxyResult.of(entry.row) if entry else ProxyResult(pattern)


def rescore(ctx: RunContext, winner: str, progress: SearchProgress) -> None:
    """The chosen winner and the Llama layout at fresh seeds the search never saw; the margin is
    measured there, free of the winner's curse (docs/search.md)."""
    from composer.presets import layout

    fresh = ctx.settings.fresh_seeds
    if not fresh:
        return
    pair = list(dict.fromkeys([winner, layout("llama", len(winner))]))
    progress.stage("rescoring on fresh seeds", len(pair) * len(fresh), 0)
    ctx.engine.evaluate_layouts(open_study(ctx, "final"), pair, stage_index=methods.n_stages(ctx.settings),
                                seeds=fresh)


def choose_winner(ctx: RunContext, stage: StageReport, final: FinalCheck) -> FinalCheck:
    """Keep the aggregated layout unless its own proxy score falls below every member of the top cluster.

    Our guard, not the paper's: a per-position vote over a cluster whose members place the same
    primitives at different positions can return a layout none of them resembles (with flat scores,
    even one without attention). The aggregated layout has just been evaluated, so such a vote is
    caught and the best candidate of the last stage is kept instead; both are in ``summary.json``.
    """
    floor, score = stage.winner.cluster_min_score, final.winner.score
    if score is not None and score >= floor:
        return dataclasses.replace(final, aggregated=final.winner, choice=WinnerChoice("aggregate"))
    best = per_layout(_stage_rows(ctx, stage.index))[0].pattern  # the best mean over seeds
    return dataclasses.replace(final, winner=_result(ctx, best), aggregated=final.winner, choice=WinnerChoice(
        "best", f"the aggregated layout scored {score}, below the lowest score {floor} of the top cluster"))
