"""``summary.json``: the settings, the winner at proxy and target scale, and the Llama baseline beside it."""

from __future__ import annotations

from typing import Any

from search.budget import UNIT
from search.results.layout_view import per_layout
from search.results.rows import OBJECTIVES, objective_values
from search.settings import SearchSettings

__all__ = ["build_summary", "pareto_front", "target_block", "winner_margin"]

_TARGET_KEYS = ("pattern", "n_layers", "params", "non_embedding_params", "kv_cache_bytes", "flops_per_token",
                "arch_id", "rule", "match", "param_ratio")


def target_block(pattern: str, scale: str, rule: str, match: str = "none") -> dict[str, Any]:
    """Costs of ``pattern`` extrapolated to ``scale`` (the ``target_*`` row columns, without the prefix)."""
    from composer.spec import run_length
    from search.results.rows import target_columns

    cols = target_columns(pattern, scale, rule, match)
    out = {k: cols[f"target_{k}"] for k in _TARGET_KEYS}
    out.update(scale=scale, run_length=run_length(out["pattern"]))
    return out


def llama_block(scale: str) -> dict[str, Any]:
    """``target_block`` of the scale's Llama shape itself (``composer.presets.llama_spec``)."""
    from composer.presets import get_scale, layout

    pattern = layout("llama", 2 * get_scale(scale).llama_blocks)
    out = target_block(pattern, scale, "stretch", "params")  # stretching a Llama shape by 1 is itself
    out.update(rule="the scale's Llama shape")
    return out


def pareto_front(rows: list[dict[str, Any]], objectives: tuple[str, ...]) -> list[dict[str, Any]]:
    """Non-dominated ``ok`` rows under ``objectives`` (each with its direction), by eval order."""
    signs = [1.0 if OBJECTIVES[o][1] == "maximize" else -1.0 for o in objectives]
    pts = [(r, [s * v for s, v in zip(signs, objective_values(r, objectives))]) for r in rows if r["status"] == "ok"]

    def dominated(a: list[float]) -> bool:
        return any(all(x >= y for x, y in zip(b, a)) and any(x > y for x, y in zip(b, a)) for _, b in pts)

    return [{"pattern": r["pattern"], "arch_id": r["arch_id"],
             **{o: v for o, v in zip(objectives, objective_values(r, objectives))}}
            for r, p in pts if not dominated(p)]


def _proxy_block(row: dict[str, Any]) -> dict[str, Any]:
    return {"pattern": row.get("pattern"), "run_length": row.get("run_length"), "arch_id": row.get("arch_id"),
            "score": row.get("score"), "tasks": row.get("tasks"), "status": row.get("status"),
            "eval_index": row.get("eval_index")}


def build_summary(settings: SearchSettings, stages: list[dict[str, Any]], final: dict[str, dict[str, Any]],
                  rows: list[dict[str, Any]], *, wall_s: float) -> dict[str, Any]:
    winner, llama = final["winner"], final["llama"]
    target = target_block(winner["pattern"], settings.scale, settings.rule, settings.match)
    # The comparator at the target scale is the scale's own Llama shape (its depth, not the proxy
    # Llama layout stacked), which matching takes as the size every layout is brought to.
    llama_target = llama_block(settings.scale) if settings.match != "none" else target_block(
        llama["pattern"], settings.scale, settings.rule)
    search_rows = [r for r in rows if r["phase"] == "search"]
    last = [r for r in search_rows if r["stage"] == stages[-1]["index"]]
    summary = {
        "name": settings.run_name,
        "settings": settings.to_dict(),
        "budget": {"requested": settings.budget, "effective": sum(s["budget"] for s in stages),
                   "used": len(search_rows), "unit": UNIT},
        "stages": stages,
        "proxy": _proxy_block(winner),
        "winner_choice": final.get("choice", {"source": "aggregate"}),
        "aggregated": _proxy_block(final.get("aggregated", winner)),
        "target": target,
        "llama": {"proxy": _proxy_block(llama), "target": llama_target},
        "kv_cache_ratio_llama_over_winner": (llama_target["kv_cache_bytes"] / target["kv_cache_bytes"]
                                             if target["kv_cache_bytes"] else None),
        "evaluations": {"search": len(search_rows), "final": len(rows) - len(search_rows),
                        "errors": sum(1 for r in rows if r["status"] != "ok")},
        "wall_s": round(wall_s, 1),
    }
    summary["winner_vs_llama"] = winner_margin(rows, winner["pattern"], llama["pattern"],
                                               seeds=settings.fresh_seeds or None)
    summary["per_layout"] = per_layout(rows)
    if len(settings.objectives) > 1:
        summary["pareto_front"] = pareto_front(last, settings.objectives)
    return summary


def winner_margin(rows: list[dict[str, Any]], winner: str, llama: str,
                  seeds: tuple[int, ...] | None = None) -> dict[str, Any]:
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
    out = {"winner": winner, "llama": llama, "winner_seeds": sorted(a), "llama_seeds": sorted(b),
           "fresh_seeds": seeds is not None, **margin(a, b)}
    out = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}
    if winner == llama:
        out["verdict"] = "the winner is the Llama layout"
    elif out["significant"]:
        better = "better" if out["mean"] > 0 else "worse"
        out["verdict"] = f"{better} than Llama: the 95 % interval excludes zero"
    elif min(len(a), len(b)) < 2:
        out["verdict"] = "no claim: one seed on a side, so the noise of the margin is unknown"
    else:
        out["verdict"] = "no claim: the 95 % interval includes zero"
    return out
