"""``summary.json``: the settings, the winner at proxy and target scale, and the Llama baseline beside it
(built once as a ``search.results.reports.Summary``)."""

from __future__ import annotations

from composer.jsontypes import JSONObject
from search.budget import UNIT
from search.results.layout_view import per_layout
from search.results.records import Row, Target
from search.results.reports import BudgetUse, FinalCheck, LearningCheck, StageReport, Summary, WinnerMargin
from search.results.rows import OBJECTIVES, objective_values, target_costs
from search.settings import SearchSettings

__all__ = ["build_summary", "pareto_front", "llama_target", "winner_margin"]


def llama_target(scale: str) -> Target:
    """Target costs of the scale's Llama shape itself (``composer.presets.llama_spec``)."""
    from composer.presets import get_scale, layout

    pattern = layout("llama", 2 * get_scale(scale).llama_blocks)
    return target_costs(pattern, scale, "stretch", "params")  # stretching a Llama shape by 1 is itself


def pareto_front(rows: list[Row], objectives: tuple[str, ...]) -> list[JSONObject]:
    """Non-dominated ``ok`` rows under ``objectives`` (each with its direction), by eval order."""
    signs = [1.0 if OBJECTIVES[o][1] == "maximize" else -1.0 for o in objectives]
    pts = [(r, [s * v for s, v in zip(signs, objective_values(r, objectives))]) for r in rows if r.status == "ok"]

    def dominated(a: list[float]) -> bool:
        return any(all(x >= y for x, y in zip(b, a)) and any(x > y for x, y in zip(b, a)) for _, b in pts)

    return [{"pattern": r.pattern, "arch_id": r.arch_id,
             **{o: v for o, v in zip(objectives, objective_values(r, objectives))}}
            for r, p in pts if not dominated(p)]


def build_summary(settings: SearchSettings, stages: list[StageReport], final: FinalCheck,
                  rows: list[Row], *, wall_s: float) -> Summary:
    winner, llama = final.winner, final.llama
    target = target_costs(winner.pattern, settings.scale, settings.rule, settings.match)
    # The comparator at the target scale is the scale's own Llama shape (its depth, not the proxy
    # Llama layout stacked), which matching takes as the size every layout is brought to.
    matched = settings.match != "none"
    llama_costs = llama_target(settings.scale) if matched else target_costs(llama.pattern, settings.scale,
                                                                             settings.rule)
    search_rows = [r for r in rows if r.phase == "search"]
    last = [r for r in search_rows if r.stage == stages[-1].index]
    return Summary(
        name=settings.run_name, settings=settings.to_dict(),
        budget=BudgetUse(requested=settings.budget, effective=sum(s.budget for s in stages),
                         used=len(search_rows), unit=UNIT),
        stages=tuple(stages), proxy=winner, winner_choice=final.choice, aggregated=final.aggregated or winner,
        target=target, llama_proxy=llama, llama_target=llama_costs,
        llama_target_rule="the scale's Llama shape" if matched else None,
        evaluations={"search": len(search_rows), "final": len(rows) - len(search_rows),
                     "errors": sum(1 for r in rows if r.status != "ok")},
        wall_s=round(wall_s, 1),
        winner_vs_llama=winner_margin(rows, winner.pattern, llama.pattern, seeds=settings.fresh_seeds or None),
        per_layout=tuple(per_layout(rows)),
        pareto_front=tuple(pareto_front(last, settings.objectives)) if len(settings.objectives) > 1 else None,
        learning=_learning(settings, rows))


def _learning(settings: SearchSettings, rows: list[Row]) -> LearningCheck | None:
    """The best layout's mean score against the protocol's chance score, when the protocol states one."""
    from search.protocols import PROTOCOLS

    spec = PROTOCOLS.get(settings.protocol) if settings.evaluator == "mad" else None
    view = per_layout([r for r in rows if r.phase == "search"])
    if spec is None or spec.chance is None or not view:
        return None
    return LearningCheck(settings.protocol, float(max(v.score_mean for v in view)), float(spec.chance))


def winner_margin(rows: list[Row], winner: str, llama: str,
                  seeds: tuple[int, ...] | None = None) -> WinnerMargin:
    """The winner's proxy score minus the Llama layout's, over their seeds, with the verdict.

    ``seeds`` restricts both to the fresh seeds of the final rescoring: the winner was chosen for a
    high score at the search's seed, so that score is biased upwards (the winner's curse); fresh seeds
    are not. A win is claimed only when the 95 % interval excludes zero (``search.stats.margin``); with
    one seed per layout the noise is unknown and no win is claimed, whatever the point difference.
    """
    import math

    from search.results.layout_view import seed_scores
    from search.stats import margin

    a, b = seed_scores(rows, winner), seed_scores(rows, llama)
    if seeds is not None:
        a, b = ({s: v for s, v in x.items() if s in seeds} for x in (a, b))
    diff = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in margin(a, b).items()}
    if winner == llama:
        verdict = "the winner is the Llama layout"
    elif diff["significant"]:
        verdict = f"{'better' if diff['mean'] > 0 else 'worse'} than Llama: the 95 % interval excludes zero"
    elif min(len(a), len(b)) < 2:
        verdict = "no claim: one seed on a side, so the noise of the margin is unknown"
    else:
        verdict = "no claim: the 95 % interval includes zero"
    return WinnerMargin(winner=winner, llama=llama, winner_seeds=tuple(sorted(a)), llama_seeds=tuple(sorted(b)),
                        fresh_seeds=seeds is not None, difference=diff, verdict=verdict)
