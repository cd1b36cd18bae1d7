"""The published judge's report: ``published.md``, ``summary.json`` and one figure per protocol.

For every judgement (set x protocol x depth) in the study's plan: Spearman and Kendall of the proxy
against the published order with bootstrap intervals, the set's heuristic beside it (and the paired
difference), the proxy's own seed agreement, the set's ceiling, the cost, and how many published
layouts the mapping made identical. pandas-free and JAX-free: rows are ``JudgeRow`` records, and each
judgement's statistics one ``JudgementResult`` (``search.published.judge_records``), whose ``to_dict`` is its
entry in ``summary.json``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from composer.jsontypes import JSONObject
from search.fidelity.truth_markdown import clean_json
from search.published.heuristics import heuristic_score
from search.published.judge_records import (
    Ceiling,
    Cost,
    HeuristicResult,
    Judgement,
    JudgementResult,
    JudgeRow,
    LayoutResult,
    ProtocolCost,
    RankInterval,
)
from search.published.set_agreement import (
    agreement,
    cross_scale,
    mapping_ceiling,
    paired_difference_ci,
    replicate_ceiling,
    seed_agreement,
)
from search.published.sets import SETS_DIR, PublishedSet, load_set
from search.stats import mean_se

__all__ = ["judge", "write_report", "ceiling"]


def _set(name: str, cache: dict[str, PublishedSet | None]) -> PublishedSet | None:
    if name not in cache:
        path = SETS_DIR / f"{name}.json"
        cache[name] = load_set(path) if path.exists() else None
    return cache[name]


def ceiling(s: PublishedSet, cache: dict[str, PublishedSet | None] | None = None) -> Ceiling:
    """What agreement with the published order a perfect proxy could expect, and how it was found."""
    cache = {} if cache is None else cache
    noise = s.noise
    values = [row.value for row in s.layouts]
    if noise.kind == "seed_sd":
        return Ceiling(noise.kind, replicate_ceiling(values, float(noise.value)), noise.note)
    if noise.kind == "relative_sd":
        return Ceiling(noise.kind, replicate_ceiling(values, [float(noise.value) * v for v in values]), noise.note)
    if noise.kind == "cross_scale":
        other = _set(noise.other_set, cache)
        cs = cross_scale({r.design: r.value for r in s.layouts}, {r.design: r.value for r in other.layouts}) \
            if other else None
        if cs:
            return Ceiling(noise.kind, cs.value, noise.note, n_designs=cs.n_designs, other_set=other.name)
    return Ceiling(noise.kind, None, noise.note)


def _scores(rows: Sequence[JudgeRow], protocol: str, seeds: tuple[int, ...]) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for r in rows:  # JudgeRow.from_dict reads an empty stored score as None, never NaN
        if r.protocol == protocol and r.status == "ok" and r.seed in seeds and r.score is not None:
            out.setdefault(r.layout, {})[r.seed] = r.score
    return out


def _isnan(x: object) -> bool:
    return isinstance(x, float) and math.isnan(x)


def judge(s: PublishedSet, j: Judgement, rows: Sequence[JudgeRow],
          cache: dict[str, PublishedSet | None] | None = None) -> JudgementResult:
    """The statistics of one judgement from the stored rows."""
    scores = _scores(rows, j.protocol, j.seeds)
    have = [i for i, lay in enumerate(j.layouts) if lay in scores]
    values = [s.layouts[i].value for i in have]
    per_layout = [list(scores[j.layouts[i]].values()) for i in have]
    heur = [heuristic_score(s.heuristic, s.layouts[i].layout) for i in have]
    mine = set(j.layouts)
    walls = [r.wall_s for r in rows if r.protocol == j.protocol and r.layout in mine and r.seed in j.seeds
             and r.wall_s is not None]
    result = JudgementResult(
        set=s.name, protocol=j.protocol, depth=j.depth if s.mapping != "none" else None, seeds=j.seeds,
        n_layouts=len(s.layouts), n_scored=len(have), n_evaluated_layouts=len(set(j.layouts)),
        complete=all(len(scores.get(lay, {})) == len(j.seeds) for lay in j.layouts),
        heuristic=HeuristicResult(s.heuristic), ceiling=ceiling(s, cache),
        mapping_ceiling=mapping_ceiling([row.value for row in s.layouts], j.layouts),
        cost=Cost(evaluations=len(walls), wall_s=float(sum(walls)),
                  median_wall_s=float(np.median(walls)) if walls else None),
        layouts=tuple(LayoutResult(label=row.label, published=row.value, layout=row.layout, evaluated=lay,
                                   heuristic=heuristic_score(s.heuristic, row.layout), scores=scores.get(lay, {}))
                      for row, lay in zip(s.layouts, j.layouts)))
    if len(have) < 4:
        return result
    proxy = agreement(per_layout, values, s.direction)
    heuristic = HeuristicResult(s.heuristic, agreement([[h] for h in heur], values, s.direction))
    by_seed: dict[int, dict[str, float]] = {}
    for i in have:
        for seed, v in scores[j.layouts[i]].items():
            by_seed.setdefault(seed, {})[str(i)] = v
    return dataclasses.replace(
        result, heuristic=heuristic, agreement=proxy,
        vs_heuristic=paired_difference_ci(per_layout, heur, values, s.direction),
        beats_heuristic=bool(proxy.spearman.value > heuristic.spearman.value), seed_agreement=seed_agreement(by_seed))


def _ci(d: RankInterval | None) -> str:
    if d is None or d.value is None or _isnan(d.value):
        return "n/a"
    if _isnan(d.lo):
        return f"{d.value:+.2f}"
    return f"{d.value:+.2f} [{d.lo:+.2f}, {d.hi:+.2f}]"


def _summary_table(results: list[JudgementResult]) -> list[str]:
    """Sets as rows; each protocol's Spearman, then the set's heuristic and ceiling, as columns."""
    sets = list(dict.fromkeys(r.set for r in results))
    protocols = list(dict.fromkeys(r.protocol for r in results))
    by = {(r.set, r.protocol): r for r in results}
    lines = ["| set (layouts) | " + " | ".join(f"`{p}`" for p in protocols)
             + " | heuristic | ceiling | most a proxy can reach at its depth |",
             "|" + "---|" * (len(protocols) + 4)]
    for name in sets:
        first = next(r for r in results if r.set == name)
        cells = []
        for p in protocols:
            r = by.get((name, p))
            cells.append("-" if r is None else _ci(r.spearman) + ("" if r.complete else " (partial)"))
        h, c = first.heuristic, first.ceiling
        ceil = "n/a" if c.value is None else f"{c.value:+.2f} ({c.kind.replace('_', ' ')})"
        # each protocol maps the set at its own matched parameters, so the bound can differ between them
        bounds = [r.mapping_ceiling for r in results if r.set == name and r.mapping_ceiling is not None]
        lo, hi = (f"{min(bounds):+.2f}", f"{max(bounds):+.2f}") if bounds else ("n/a", "n/a")
        reach = lo if lo == hi else f"{lo} to {hi}"
        lines.append(f"| `{name}` ({first.n_layouts}) | " + " | ".join(cells)
                     + f" | `{h.name}` {_ci(h.spearman)} | {ceil} | {reach} |")
    wins, walls = [], []
    for p in protocols:
        mine = [r for r in results if r.protocol == p and r.beats_heuristic is not None]
        wins.append(f"{sum(r.beats_heuristic for r in mine)} of {len(mine)}")
        w = [r.cost.median_wall_s for r in results if r.protocol == p and r.cost.median_wall_s]
        walls.append(f"{np.median(w):.1f}" if w else "-")
    lines.append("| beats the heuristic | " + " | ".join(wins) + " | | | |")
    lines.append("| s per evaluation (median) | " + " | ".join(walls) + " | | | |")
    return lines


def _set_section(s: PublishedSet, results: list[JudgementResult]) -> list[str]:
    lines = [f"### `{s.name}`: {s.title}", "",
             f"{s.cite()}. {s.scale}, {s.tokens} tokens of {s.dataset}; {s.metric} ({s.direction} is better); "
             f"reliability: {s.reliability}.", ""]
    for r in results:
        depth = "published depth" if r.depth is None else f"mapped to {r.depth} layers"
        sa = r.seed_agreement  # seeds printed as a list, "[0, 1]", as the report always has
        lines.append(f"- `{r.protocol}` ({depth}, seeds {list(r.seeds)}, {r.n_scored}/{r.n_layouts} "
                     f"layouts scored, {r.n_evaluated_layouts} distinct evaluated): Spearman "
                     f"{_ci(r.spearman)}, Kendall {_ci(r.kendall)}; minus heuristic "
                     f"{_ci(r.vs_heuristic)}; proxy seed agreement "
                     f"{'n/a' if sa is None else f'{sa:+.2f}'}.")
    lines += ["", "| published layout | value | evaluated as | heuristic | " +
              " | ".join(f"`{r.protocol}` mean ± SE (n)" for r in results) + " |",
              "|" + "---|" * (4 + len(results))]
    for i, row in enumerate(s.layouts):
        cells = []
        for r in results:
            sc = list(r.layouts[i].scores.values())
            mean, se = mean_se(sc)
            cells.append("-" if not sc else f"{mean:.3f} ± {se:.3f} ({len(sc)})" if len(sc) > 1
                         else f"{mean:.3f} (1)")
        lay = results[0].layouts[i]
        lines.append(f"| {row.label} | {row.value:g} | `{lay.evaluated}` | {lay.heuristic:+.2f} | "
                     + " | ".join(cells) + " |")
    return lines + [""]


def _figure(path: Path, sets: dict[str, PublishedSet], results: list[JudgementResult], protocol: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from composer.atomic import atomic_path

    mine = [r for r in results if r.protocol == protocol]
    cols = min(3, len(mine))
    rows_n = math.ceil(len(mine) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(5.2 * cols, 4.2 * rows_n), squeeze=False)
    for ax, r in zip(axes.flat, mine):
        s = sets[r.set]
        for lay in r.layouts:
            sc = list(lay.scores.values())
            if not sc:
                continue
            mean, se = mean_se(sc)
            ax.errorbar(lay.published, mean, yerr=0.0 if math.isnan(se) else se, fmt="o", ms=4, color="C0",
                        capsize=2)
            ax.annotate(_short(lay.label), (lay.published, mean), fontsize=6, xytext=(3, 2),
                        textcoords="offset points")
        ax.set_title(f"{s.name}\nSpearman {_ci(r.spearman)}", fontsize=8)
        ax.set_xlabel(f"published {s.metric} ({s.direction} is better)", fontsize=7)
        ax.set_ylabel(f"proxy score ({protocol})", fontsize=7)
        ax.tick_params(labelsize=6)
        if s.direction == "lower":
            ax.invert_xaxis()  # better to the right on both axes
    for ax in list(axes.flat)[len(mine):]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _short(label: str) -> str:
    return label if len(label) <= 18 else label[:16] + ".."


def _slug(protocol: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", protocol)


def _cost(rows: Sequence[JudgeRow]) -> dict[str, ProtocolCost]:
    """Per protocol label: evaluations run here (not those built from stored parts), their wall time."""
    out: dict[str, list[float]] = {}
    for r in rows:
        if r.source == "parts" or r.wall_s is None:
            continue
        out.setdefault(r.protocol, []).append(r.wall_s)
    return {p: ProtocolCost(evaluations=len(w), wall_h=sum(w) / 3600, median_wall_s=float(np.median(w)))
            for p, w in out.items()}


def write_report(run_dir: Path, rows: Sequence[JudgeRow], plan: Sequence[Judgement], *,
                 figures: bool = True) -> JSONObject:
    """Write ``published.md``, ``summary.json`` (and the figures); returns the summary (NaN kept)."""
    from composer.atomic import write_json, write_text

    cache: dict[str, PublishedSet | None] = {}
    sets: dict[str, PublishedSet] = {}
    results: list[JudgementResult] = []
    for j in plan:
        s = _set(j.set, cache)
        if s is None or len(s.layouts) != len(j.layouts):
            continue  # a set file that is no longer shipped (or changed): its rows stay, unreported
        sets[s.name] = s
        results.append(judge(s, j, rows, cache))
    cost = _cost(rows)
    summary: JSONObject = {"generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                           "rows": len(rows), "cost": {p: c.to_dict() for p, c in cost.items()},
                           "judgements": [r.to_dict() for r in results]}
    lines = ["# Proxies judged by published results at scale", "",
             "Spearman's rho between each proxy's seed-mean score and the negated published value (+1: the "
             "proxy orders the set as the paper's models trained at scale did), 95 % bootstrap interval over "
             "layouts and proxy seeds. Beside it: the set's heuristic (a rule of thumb from the published "
             "findings), its ceiling (what a replicate of the published study would reach) and the most any "
             "proxy can reach at the evaluated depth, where published layouts map to one evaluated layout and "
             "so share its score (the rule of thumb is not bound by it). Method: docs/published.md.", ""]
    if results:
        lines += _summary_table(results) + [""]
        lines += [f"Cost of `{p}`: {c.evaluations} evaluations, {c.wall_h:.2f} h of wall time, median "
                  f"{c.median_wall_s:.1f} s each." for p, c in cost.items()]
        lines += ["", "## Sets", ""]
        for name, s in sets.items():
            lines += _set_section(s, [r for r in results if r.set == name])
    write_text(run_dir / "published.md", "\n".join(lines) + "\n")
    write_json(run_dir / "summary.json", clean_json(summary))  # NaN -> null: strict JSON
    if figures:
        for protocol in dict.fromkeys(r.protocol for r in results):
            _figure(run_dir / f"published-{_slug(protocol)}.png", sets, results, protocol)
    return summary
