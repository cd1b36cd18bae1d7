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
    are not. Two intervals are computed: the pair's own (``search.stats.margin``: paired t on the shared
    seeds, df = seeds - 1) and one from the seed SD pooled over every layout the run scored on two or
    more seeds (``search.stats.pooled_difference``, df = sum of (seeds - 1)). The verdict reads the one
    with more degrees of freedom (``claim_on``; the pooled one whenever both sides have two seeds): with
    2-3 fresh seeds the pair's own t has df 1-2 and an interval too wide to mean anything. A win is
    claimed only when that 95 % interval excludes zero; with one seed of the winner or of Llama no win
    is claimed, whatever the point difference.
    """
    import math

    from search.results.layout_view import seed_scores
    from search.stats import margin, pooled_difference, pooled_sd

    def finite(d):
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}

    a, b = seed_scores(rows, winner), seed_scores(rows, llama)
    if seeds is not None:
        a, b = ({s: v for s, v in x.items() if s in seeds} for x in (a, b))
    pair = margin(a, b)
    sd, df = pooled_sd(seed_scores(rows, p).values() for p in sorted({r.pattern for r in rows if r.ok}))
    pooled = pooled_difference(a, b, sd, df)
    claim_on = "pooled" if df > pair["df"] else "pair"
    use = pooled if claim_on == "pooled" else pair
    where = "the pooled 95 % interval" if claim_on == "pooled" else "the 95 % interval"
    if winner == llama:
        verdict = "the winner is the Llama layout"
    elif min(len(a), len(b)) < 2:
        verdict = "no claim: one seed on a side, so the noise of the margin is unknown"
    elif use["significant"]:
        verdict = f"{'better' if use['mean'] > 0 else 'worse'} than Llama: {where} excludes zero"
    else:
        verdict = f"no claim: {where} includes zero"
    return WinnerMargin(winner=winner, llama=llama, winner_seeds=tuple(sorted(a)), llama_seeds=tuple(sorted(b)),
                        fresh_seeds=seeds is not None, difference=finite(pair), pooled=finite(pooled),
                        claim_on=claim_on, verdict=verdict)


def margin_text(m: JSONObject) -> str:
    """One line for a ``WinnerMargin.to_dict()``: the difference, the interval its verdict reads and the
    other one beside it (a ``summary.json`` written before the pooled interval shows the pair's only)."""

    def ci(d) -> str:
        return "n/a" if d.get("lo") is None else f"[{d['lo']:+.4f}, {d['hi']:+.4f}]"

    mean = "n/a" if m.get("mean") is None else f"{m['mean']:+.4f}"
    pair = f"95 % CI {ci(m)} (the pair's own, df {m.get('df', 'n/a')}) on seeds {list(m.get('winner_seeds', []))}"
    p = m.get("pooled")
    if not p:
        return f"{mean}, {pair}"
    sd = "n/a" if p.get("pooled_sd") is None else f"{p['pooled_sd']:.4f}"
    pooled = f"pooled 95 % CI {ci(p)} (seed SD {sd} pooled over the run's layouts, df {p.get('df')})"
    first, second = (pooled, pair) if m.get("claim_on") == "pooled" else (pair, pooled)
    return f"{mean}, {first}; {second}"
