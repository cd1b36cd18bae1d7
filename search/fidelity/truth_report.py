"""The fidelity report: ``summary.json`` (numbers), ``fidelity.md`` (tables) and ``fidelity.png`` (scatter).

Main budget: the token budget most runs share; other budgets (the long runs) are compared with it by
the Kendall tau of their layout order. Correlations use the layouts that have both a proxy score and a
main-budget ground truth. See docs/fidelity.md for how to read each number.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np

from search.fidelity.figure import MIN_ATTENTION, plot
from search.fidelity.rank_agreement import bootstrap_rank_ci, kendall, paired_difference
from search.fidelity.truth_markdown import clean_json, render_markdown
from search.fidelity.truth_rows import GridRow, ProxyScore, TruthRow
from search.fidelity.truth_sections import (
    BudgetAgreement,
    CorrelationBlock,
    Failure,
    FidelitySummary,
    GridRuns,
    LayoutSummary,
    PairBlock,
    RunCounts,
    TruthNoise,
    WinnerVsLlama,
)
from search.stats import mean_se, pooled_difference, pooled_mean_interval, pooled_sd

if TYPE_CHECKING:
    from search.fidelity.plan import FidelitySettings

__all__ = ["build_summary", "write_report", "render_markdown", "plot", "clean_json", "ok_rows", "losses_at"]

SeedValues = dict[str, dict[int, float]]
"""Layout -> seed -> a score or a loss."""


def ok_rows(rows: Iterable[TruthRow]) -> list[TruthRow]:
    """The finished runs: status ``ok`` with a finite validation loss."""
    return [r for r in rows if r.status == "ok" and r.val_loss is not None and math.isfinite(float(r.val_loss))]


def _by_layout(rows: Iterable[TruthRow | ProxyScore], value: Callable) -> SeedValues:
    out: SeedValues = {}
    for r in rows:
        out.setdefault(r.layout, {})[int(r.seed)] = float(value(r))
    return out


def losses_at(rows: Sequence[TruthRow], tokens: int | None) -> SeedValues:
    """Validation loss of each layout and seed at the budget ``tokens`` (every budget when ``None``)."""
    return _by_layout([r for r in rows if tokens is None or int(r.tokens) == tokens], lambda r: r.val_loss)


def _correlations(layouts: list[str], proxy: SeedValues, truth: SeedValues, n_boot: int) -> CorrelationBlock:
    p = [list(proxy[x].values()) for x in layouts]
    t = [list(truth[x].values()) for x in layouts]
    return CorrelationBlock(layouts=tuple(layouts),
                            spearman=bootstrap_rank_ci(p, t, kind="spearman", n_boot=n_boot),
                            kendall=bootstrap_rank_ci(p, t, kind="kendall", n_boot=n_boot))


def _task_values(proxy_rows: Sequence[ProxyScore], keep: set[str]) -> dict[str, SeedValues]:
    """``task -> layout -> seed -> value`` from the proxy rows' ``tasks_json``."""
    out: dict[str, SeedValues] = {}
    for r in proxy_rows:
        if r.layout not in keep or not r.tasks_json:
            continue
        for task, v in json.loads(r.tasks_json).items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                out.setdefault(task, {}).setdefault(r.layout, {})[int(r.seed)] = float(v)
    return out


def _per_task(proxy_rows: Sequence[ProxyScore], truth: SeedValues, layouts: list[str],
              n_boot: int) -> dict[str, dict[str, float]]:
    """Spearman of each proxy task (higher is better) against the ground truth: which tasks carry the signal."""
    out = {}
    for task, by in sorted(_task_values(proxy_rows, set(layouts)).items()):
        common = [x for x in layouts if x in by]
        if len(common) >= 3:
            out[task] = bootstrap_rank_ci([list(by[x].values()) for x in common],
                                          [list(truth[x].values()) for x in common], n_boot=n_boot)
    return out


def _seed_agreement(truth: SeedValues) -> TruthNoise:
    """Kendall tau between the layout orders of each pair of ground-truth seeds (the truth's own noise)."""
    seeds = sorted({s for v in truth.values() for s in v})
    pairs = {}
    for i, a in enumerate(seeds):
        for b in seeds[i + 1:]:
            common = [x for x in truth if a in truth[x] and b in truth[x]]
            if len(common) >= 3:
                pairs[f"{a}-{b}"] = float(kendall([truth[x][a] for x in common], [truth[x][b] for x in common]))
    sds = [float(np.std(list(v.values()), ddof=1)) for v in truth.values() if len(v) > 1]
    return TruthNoise(kendall_pairs=pairs, seed_sd_median=float(np.median(sds)) if sds else math.nan)


def _budgets(truth_rows: Sequence[TruthRow]) -> tuple[int | None, list[int]]:
    counts = Counter(int(r.tokens) for r in truth_rows)
    if not counts:
        return None, []
    main = max(counts, key=lambda t: (counts[t], -t))
    return main, sorted(t for t in counts if t != main)


def _paired_means(a: dict[int, float], b: dict[int, float]) -> tuple[float, float, list[int]]:
    """Means of ``a`` and ``b`` (seed -> loss) over the seeds both have; over each one's own seeds if none."""
    seeds = sorted(set(a) & set(b))
    if seeds:
        return float(np.mean([a[s] for s in seeds])), float(np.mean([b[s] for s in seeds])), seeds
    return float(np.mean(list(a.values()))), float(np.mean(list(b.values()))), []


def _budget_agreement(truth_rows: Sequence[TruthRow], main: int, others: list[int]) -> list[BudgetAgreement]:
    """Kendall between the layout orders at the main and at each longer budget, each layout compared on
    the seeds it has at both budgets (so a second main-budget seed does not move one side only)."""
    base = losses_at(truth_rows, main)
    out = []
    for tokens in others:
        longer = losses_at(truth_rows, tokens)
        common = [x for x in longer if x in base]
        paired = {x: _paired_means(base[x], longer[x]) for x in common}
        short = {x: paired[x][0] for x in common}
        long_ = {x: paired[x][1] for x in common}
        tau = float(kendall([short[x] for x in common], [long_[x] for x in common])) if len(common) >= 2 else math.nan
        out.append(BudgetAgreement(tokens=tokens, main_tokens=main, layouts=tuple(common), kendall=tau,
                                   seeds={x: tuple(paired[x][2]) for x in common}, main_loss=short, long_loss=long_,
                                   main_order=tuple(sorted(common, key=short.get)),
                                   long_order=tuple(sorted(common, key=long_.get))))
    return out


def _winner_vs_llama(winner: str | None, proxy: SeedValues, truth: SeedValues) -> WinnerVsLlama | None:
    if not winner:
        return None
    from composer.presets import layout

    llama = layout("llama", len(winner))
    if winner == llama:
        return WinnerVsLlama(winner=winner, llama=llama, note="the winner is the Llama layout")
    loss = pooled = proxy_diff = None
    if winner in truth and llama in truth:
        loss = paired_difference(truth[winner], truth[llama])
        sd, df = pooled_sd(list(v.values()) for v in truth.values())
        pooled = pooled_difference(truth[winner], truth[llama], sd, df)
    if winner in proxy and llama in proxy:
        proxy_diff = paired_difference(proxy[winner], proxy[llama])
    return WinnerVsLlama(winner=winner, llama=llama, val_loss_difference=loss, val_loss_difference_pooled=pooled,
                         proxy_difference=proxy_diff)


def _noise(ok: Sequence[TruthRow], budgets: list[int]) -> dict[int, tuple[float, int, int | None]]:
    """Budget -> (pooled seed SD, df, the budget it was pooled at). A budget with no layout on two seeds
    takes the noise of the longest shorter budget that has one: seed noise has fallen with tokens here
    (0.023 nats/byte at 1M, 0.009 at 4M), so a shorter budget's SD errs on the wide side."""
    out, last = {}, None
    for tokens in sorted(budgets):
        sd, df = pooled_sd(list(v.values()) for v in losses_at(ok, tokens).values())
        last = (sd, df, tokens) if df else last
        out[tokens] = last or (sd, df, None)
    return out


def _pairs(ok: Sequence[TruthRow], pairs: list[tuple[str, str]], budgets: list[int]) -> list[PairBlock]:
    """Each pair's loss difference (first - second) at every budget both ran: paired by seed, and on the
    pooled seed SD of ``_noise`` (the interval the report relies on; ``sd_tokens``: pooled at)."""
    out, noise = [], _noise(ok, budgets)
    for tokens in budgets:
        truth = losses_at(ok, tokens)
        sd, df, at = noise[tokens]
        for a, b in pairs:
            if a in truth and b in truth:
                pooled = pooled_difference(truth[a], truth[b], sd, df)
                out.append(PairBlock(a=a, b=b, tokens=tokens, paired=paired_difference(truth[a], truth[b]),
                                     pooled={**pooled, "sd_tokens": at}))
    return out


def _num(v) -> float:
    """A stored number, NaN where the row has none (``None`` or NaN)."""
    return float(v) if v is not None and not (isinstance(v, float) and math.isnan(v)) else math.nan


def _layout_summary(x: str, proxy: SeedValues, truth: SeedValues, rows_x: list[TruthRow],
                    noise: tuple[float, int]) -> LayoutSummary:
    """Layout ``x``: its proxy and truth over seeds (and the truth's interval on the study's pooled seed
    SD ``noise``), and from its main-budget rows ``rows_x`` the chosen rates (seed -> rate), whether any
    sits on a grid edge, its grids and its size ratios."""
    pm, ps = mean_se(list(proxy.get(x, {}).values()))
    tm, ts = mean_se(list(truth.get(x, {}).values()))
    grid = {int(r.seed): json.loads(r.lr_grid_json) for r in rows_x if r.lr_source == "grid" and r.lr_grid_json}
    return LayoutSummary(
        n_attention=x.count("A"), proxy_mean=pm, proxy_se=ps, proxy_seeds=tuple(sorted(proxy.get(x, {}))),
        val_loss_mean=tm, val_loss_se=ts, val_bpb_mean=tm / math.log(2) if math.isfinite(tm) else math.nan,
        truth_seeds=tuple(sorted(truth.get(x, {}))),
        window_se=float(np.mean([r.val_loss_se for r in rows_x])) if rows_x else math.nan,
        target_pattern=rows_x[0].target_pattern if rows_x else None,
        non_embedding_params=int(rows_x[0].non_embedding_params) if rows_x else None,
        lr={int(r.seed): _num(r.lr) for r in rows_x},
        lr_at_edge=any(bool(r.lr_at_edge) for r in rows_x if r.lr_at_edge is not None),
        dev_losses=grid,
        param_ratio=_num(rows_x[0].param_ratio) if rows_x else math.nan,
        flops_ratio=_num(rows_x[0].flops_ratio) if rows_x else math.nan,
        val_loss_pooled_ci=pooled_mean_interval(truth.get(x, {}).values(), *noise))


def _fill_legacy(layouts: dict[str, LayoutSummary], settings: FidelitySettings | None) -> dict[str, LayoutSummary]:
    """Rows stored before rates and size ratios were recorded: the study's one rate, and the ratio
    computed from the stored parameter count and the scale's Llama shape."""
    if settings is None:
        return layouts
    from composer.presets import llama_spec
    from scaling.counting import non_embedding_params

    ref = non_embedding_params(llama_spec(settings.scale)) if settings.scale else None
    out = {}
    for x, v in layouts.items():
        if ref and v.non_embedding_params and not math.isfinite(v.param_ratio):
            v = dataclasses.replace(v, param_ratio=v.non_embedding_params / ref)
        if settings.train.lr and not settings.lrs:
            v = dataclasses.replace(v, lr={k: (r if math.isfinite(r) else float(settings.train.lr))
                                           for k, r in v.lr.items()})
        out[x] = v
    return out


def build_summary(truth_rows: Sequence[TruthRow], proxy_rows: Sequence[ProxyScore], *,
                  settings: FidelitySettings | None = None, winner: str | None = None,
                  layouts: list[str] | None = None, proxy_protocol: str | None = None,
                  n_boot: int = 2000, pairs: list[tuple[str, str]] | None = None) -> FidelitySummary:
    """Every number of the report (NaN where a quantity is undefined).

    The study's layouts are those with a ground-truth run plus ``layouts``; proxy rows of other
    layouts (an imported panel may hold more) are left out, and so are rows of another protocol
    than ``proxy_protocol`` (all protocols when ``None``).
    """
    if proxy_protocol is not None:
        proxy_rows = [r for r in proxy_rows if r.protocol == proxy_protocol]
    ok = ok_rows(truth_rows)
    main, others = _budgets(ok)
    truth = losses_at(ok, main)
    keep = {r.layout for r in truth_rows} | set(layouts or ())
    proxy = _by_layout([r for r in proxy_rows if r.score is not None and r.layout in keep], lambda r: r.score)
    both = [x for x in truth if x in proxy]
    if winner is None and both:
        winner = max(both, key=lambda x: np.mean(list(proxy[x].values())))
    noise = pooled_sd(list(v.values()) for v in truth.values())
    per_layout = {x: _layout_summary(x, proxy, truth, [r for r in ok if r.layout == x and int(r.tokens) == main],
                                     noise) for x in dict.fromkeys(list(truth) + list(proxy))}
    decision = [x for x in both if x.count("A") >= MIN_ATTENTION]
    failed = [r for r in truth_rows if r.status not in ("ok", None)]
    region = f"ge{MIN_ATTENTION}A"
    return FidelitySummary(
        settings=settings, main_tokens=main, other_tokens=tuple(others),
        runs=RunCounts(ok=len(ok), failed=len(failed),
                       failures=tuple(Failure(key=r.key, status=r.status, error=r.error) for r in failed)),
        proxy_protocols=tuple(sorted({str(r.protocol) for r in proxy_rows})),
        layouts=_fill_legacy(per_layout, settings),
        correlation={"all": _correlations(both, proxy, truth, n_boot),
                     region: _correlations(decision, proxy, truth, n_boot)},
        per_task={"all": _per_task(proxy_rows, truth, both, n_boot // 4),
                  region: _per_task(proxy_rows, truth, decision, n_boot // 4)},
        truth_noise=_seed_agreement(truth),
        budget_agreement=tuple(_budget_agreement(ok, main, others)) if main else (),
        winner_vs_llama=_winner_vs_llama(winner, proxy, truth),
        pairs=tuple(_pairs(ok, list(pairs or []), ([main] if main else []) + others)),
    )


def write_report(run_dir: Path, truth_rows: Sequence[TruthRow], proxy_rows: Sequence[ProxyScore], *,
                 settings: FidelitySettings | None = None, winner: str | None = None,
                 layouts: list[str] | None = None, proxy_protocol: str | None = None,
                 grid_rows: Sequence[GridRow] | None = None,
                 pairs: list[tuple[str, str]] | None = None) -> FidelitySummary:
    """Write ``summary.json``, ``fidelity.md`` and ``fidelity.png`` atomically into ``run_dir``
    (``grid_rows``: the learning-rate runs, counted in the summary)."""
    from composer.checkpoint import write_json

    summary = build_summary(truth_rows, proxy_rows, settings=settings, winner=winner, layouts=layouts,
                            proxy_protocol=proxy_protocol, pairs=pairs)
    if grid_rows:
        summary = dataclasses.replace(summary, grid_runs=GridRuns(
            ok=sum(r.status == "ok" for r in grid_rows), diverged=sum(r.status == "diverged" for r in grid_rows),
            train_hours=sum(float(r.wall_s or 0) for r in grid_rows) / 3600))
    write_json(run_dir / "summary.json", clean_json(summary.to_dict()))
    from composer.atomic import write_text

    write_text(run_dir / "fidelity.md", render_markdown(summary))
    plot(summary, run_dir / "fidelity.png")
    return summary
