"""The fidelity report as text: ``fidelity.md`` from the summary, and strict JSON for ``summary.json``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from search.fidelity.figure import MIN_ATTENTION
from search.fidelity.figure import fmt_ci as _ci
from search.fidelity.figure import fmt_value as _f

if TYPE_CHECKING:
    from search.fidelity.truth_sections import FidelitySummary

__all__ = ["render_markdown", "clean_json"]


def _borrowed(pooled: dict, tokens: int) -> str:
    """Where a pair's pooled SD comes from when its own budget has no layout on two seeds."""
    at = pooled.get("sd_tokens", tokens)  # a summary from before the field: its own budget
    if at == tokens:
        return ""
    return "; no seed pairs at any budget up to here" if at is None else f"; SD pooled at {at:,} tokens"


def render_markdown(summary: FidelitySummary) -> str:
    s = summary
    main = s.main_tokens
    lines = ["# Fidelity: proxy ranking vs real-text ground truth", ""]
    # the recipe as stored: a summary judged without a study's settings prints None for each field
    st = s.settings.to_dict() if s.settings else {}
    if st.get("lrs"):
        lr_text = (f"peak lr chosen per layout from {', '.join(f'{x:g}' for x in st['lrs'])} (plus "
                   f"{st.get('lr_extend', 0)} past an edge) on a dev split ({st.get('dev_fraction', 0):.0%} of every "
                   f"training book, {st.get('dev_windows')} windows), grid on "
                   f"{'every seed' if st.get('grid_seeds') == 'all' else 'the first seed, the others at its rate'}")
    else:
        lr_text = f"lr {st.get('lr')} for every layout"
    lines += [f"Ground truth: {st.get('scale')} scale ({st.get('rule')} rule, size matched: "
              f"{st.get('match', 'none')}), {_f(main, '{:,}')} tokens per run, corpus {st.get('corpus')}, batch "
              f"{st.get('batch_size')} x {st.get('seq_len')}, {lr_text}, validation on fixed windows of the "
              f"held-out books. Proxy: {', '.join(s.proxy_protocols) or 'none'}. "
              f"Runs ok: {s.runs.ok}, failed: {s.runs.failed}.", ""]
    lines += ["| layout | #A | target pattern | non-emb params (/ Llama) | lr (seeds) | proxy score (± SE, seeds) | "
              "val loss nats/byte (± SE, seeds) | pooled 95 % CI | bpb | window SE | rank proxy | rank truth |",
              "|---" * 12 + "|"]
    lay = s.layouts
    both = [x for x in lay if lay[x].proxy_seeds and lay[x].truth_seeds]
    rp = {x: i + 1 for i, x in enumerate(sorted(both, key=lambda x: -lay[x].proxy_mean))}
    rt = {x: i + 1 for i, x in enumerate(sorted(both, key=lambda x: lay[x].val_loss_mean))}
    order = sorted(lay, key=lambda x: (lay[x].val_loss_mean if math.isfinite(lay[x].val_loss_mean) else 9e9))
    for x in order:
        v = lay[x]
        rates = ", ".join(f"{v.lr[k]:g}" for k in sorted(v.lr) if math.isfinite(v.lr[k])) or "-"
        edge = " (edge)" if v.lr_at_edge else ""
        lines.append(f"| {x} | {v.n_attention} | {v.target_pattern or '-'} | "
                     f"{_f(v.non_embedding_params, '{:,}')} ({_f(v.param_ratio, '{:.3f}')}) | "
                     f"{rates}{edge} | {_f(v.proxy_mean)} ± "
                     f"{_f(v.proxy_se)} ({len(v.proxy_seeds)}) | {_f(v.val_loss_mean)} ± "
                     f"{_f(v.val_loss_se)} ({len(v.truth_seeds)}) | [{_f(v.val_loss_pooled_ci[0])}, "
                     f"{_f(v.val_loss_pooled_ci[1])}] | {_f(v.val_bpb_mean)} | "
                     f"{_f(v.window_se)} | {rp.get(x, '-')} | {rt.get(x, '-')} |")
    lines += ["", "## Rank agreement (proxy score vs negated validation loss; bootstrap 95 % CI over layouts "
              "and seeds)", "", "| layouts | n | Spearman | Kendall |", "|---|---|---|---|"]
    for name, c in s.correlation.items():
        label = "all" if name == "all" else f">= {MIN_ATTENTION} attention layers"
        lines.append(f"| {label} | {c.spearman['n_layouts']} | {_ci(c.spearman)} | {_ci(c.kendall)} |")
    tn = s.truth_noise
    pairs = ", ".join(f"{k}: {v:+.2f}" for k, v in tn.kendall_pairs.items()) or "n/a (one seed)"
    tasks = sorted(set().union(*(set(v) for v in s.per_task.values())) if s.per_task else ())
    if tasks:
        lines += ["", "## Which proxy tasks agree with the ground truth (Spearman of the task's score vs negated "
                  "loss, 95 % CI)", "", f"| task | all layouts | >= {MIN_ATTENTION} attention layers |",
                  "|---|---|---|"]
        for t in tasks:
            cells = [_ci(s.per_task[k][t], "{:+.2f}") if t in s.per_task[k] else "n/a"
                     for k in ("all", f"ge{MIN_ATTENTION}A")]
            lines.append(f"| {t} | {cells[0]} | {cells[1]} |")
    lines += ["", "## The ground truth's own noise", "",
              f"- Kendall tau between the layout orders of two ground-truth seeds: {pairs}.",
              f"- Median seed-to-seed SD of a layout's validation loss: {_f(tn.seed_sd_median)} nats/byte; the "
              "window SE column is the sampling noise of the validation text itself."]
    for b in s.budget_agreement:
        losses = ", ".join(f"{x} {b.main_loss[x]:.3f} -> {b.long_loss[x]:.3f}" for x in b.main_order)
        lines += [f"- Budget {b.main_tokens:,} vs {b.tokens:,} tokens ({len(b.layouts)} layouts, on the "
                  f"seeds run at both): Kendall {_f(b.kendall, '{:+.2f}')}; order (best first) "
                  f"{' > '.join(b.main_order)} vs {' > '.join(b.long_order)} ({losses})."]
    grids = {x: v.dev_losses for x, v in lay.items() if v.dev_losses}
    if grids:
        rates = sorted({float(r) for g in grids.values() for d in g.values() for r in d})
        lines += ["", "## Learning-rate grid (dev loss nats/byte of the grid seed; the chosen rate in bold; "
                  "never the validation windows)", "", "| layout | " + " | ".join(f"{r:g}" for r in rates) + " |",
                  "|---" * (len(rates) + 1) + "|"]
        for x in order:
            for seed, d in sorted(grids.get(x, {}).items()):
                vals = {float(k): v for k, v in d.items()}
                ok_vals = {k: v for k, v in vals.items() if v is not None}
                best = min(ok_vals, key=ok_vals.get) if ok_vals else None
                cells = []
                for r in rates:
                    if r not in vals:
                        cells.append("")
                    elif vals[r] is None:
                        cells.append("diverged")
                    else:
                        cells.append(f"**{vals[r]:.4f}**" if r == best else f"{vals[r]:.4f}")
                lines.append(f"| {x} (seed {seed}) | " + " | ".join(cells) + " |")
    if s.pairs:
        lines += ["", "## Contender pairs (loss of the first minus the second; negative: the first is better)", "",
                  "| pair | tokens | seeds | difference | paired 95 % CI (df) | pooled 95 % CI (pooled SD, df) |",
                  "|---|---|---|---|---|---|"]
        for p in s.pairs:
            d, q = p.paired, p.pooled
            lines.append(f"| {p.a} - {p.b} | {p.tokens:,} | {d['n_seeds']} | {_f(d['mean'], '{:+.4f}')} | "
                         f"[{_f(d['lo'], '{:+.4f}')}, {_f(d['hi'], '{:+.4f}')}] ({max(d['n_seeds'] - 1, 0)}) | "
                         f"[{_f(q['lo'], '{:+.4f}')}, {_f(q['hi'], '{:+.4f}')}] ({_f(q['pooled_sd'])}, {q['df']}"
                         f"{_borrowed(q, p.tokens)}) |")
    w = s.winner_vs_llama
    if w:
        lines += ["", f"## Winner `{w.winner}` vs Llama layout `{w.llama}` (paired by seed; t interval)", ""]
        if w.note is not None:
            lines.append(f"- {w.note}.")
        for d, label in ((w.val_loss_difference, "validation loss, winner - Llama (negative: winner better)"),
                         (w.proxy_difference, "proxy score, winner - Llama (positive: proxy prefers winner)")):
            if d is not None:
                lines.append(f"- {label}: {_f(d['mean'], '{:+.4f}')} (SE {_f(d['se'])}, 95 % CI "
                             f"[{_f(d['lo'], '{:+.4f}')}, {_f(d['hi'], '{:+.4f}')}], {d['n_seeds']} paired seeds)")
        if w.val_loss_difference_pooled is not None:
            d = w.val_loss_difference_pooled
            lines.append(f"- the same difference with the pooled seed SD of all layouts ({_f(d['pooled_sd'])} "
                         f"nats/byte, df {d['df']}): 95 % CI [{_f(d['lo'], '{:+.4f}')}, {_f(d['hi'], '{:+.4f}')}] "
                         "(the interval the report relies on; the paired one has df = seeds - 1)")
    if s.runs.failures:
        lines += ["", "## Failed runs", ""]
        lines += [f"- {f.key}: {f.status}: {f.error}" for f in s.runs.failures]
    return "\n".join(lines) + "\n"


def clean_json(obj):
    """NaN -> None so that summary.json is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return clean_json(float(obj))
    return obj
