"""The figures of a run, each a function ``Run -> matplotlib Figure`` (used by the notebook and the
HTML report alike). Every figure is titled and labelled so that it reads without surrounding prose.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pandas as pd

from search.analysis.tables import Run

__all__ = ["FIGURES", "score_by_layout", "task_heatmap", "best_so_far", "position_frequency",
           "attention_share", "pareto", "fidelity_scatter", "top_cluster", "baselines"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _top(run: Run, k: int = 20) -> pd.DataFrame:
    return run.layouts.head(k)


def score_by_layout(run: Run, k: int = 20):
    """Best ``k`` layouts by mean score, with standard-error bars and seed counts."""
    plt = _plt()
    top = _top(run, k).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(top) + 1.5))
    se = top["score_se"].fillna(0.0)
    names = baselines(run)
    colours = ["tab:orange" if p in names else "tab:blue" for p in top["pattern"]]
    labels = [f"{p} ({names[p]})" if p in names else p for p in top["pattern"]]
    ax.barh(labels, top["score_mean"], xerr=se, color=colours, alpha=0.8, capsize=2)
    for y, (m, e, n) in enumerate(zip(top["score_mean"], se, top["n_seeds"])):
        ax.text(m + e, y, f"  n={n}", va="center", fontsize=7)  # past the error bar, not on it
    lo, hi = float((top["score_mean"] - se).min()), float((top["score_mean"] + se).max())
    pad = max(0.1 * (hi - lo), 1e-4)  # scaled to the data: small scores stay visible
    ax.set_xlim(lo - pad, hi + 3 * pad)  # room on the right for the seed counts
    ax.set_xlabel("proxy score, mean over seeds (bars: standard error)")
    ax.set_title(f"{run.name}: best {len(top)} layouts by mean score"
                 + (" (orange: named baselines)" if set(names) & set(top["pattern"]) else ""))
    fig.tight_layout()
    return fig


def task_heatmap(run: Run, k: int = 20):
    """Per-task mean score of the best ``k`` layouts."""
    plt = _plt()
    tasks = [c for c in run.leaderboard.columns if c.startswith("task_")]
    top = list(_top(run, k)["pattern"])
    table = run.ok[run.ok["pattern"].isin(top)].groupby("pattern")[tasks].mean().reindex(top)
    values = table.to_numpy(dtype=float)
    # One colour scale per task (column): a task whose scores span 0.01 is as readable as one spanning 1.
    lo, hi = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
    shade = (values - lo) / np.where(hi > lo, hi - lo, 1.0)
    fig, ax = plt.subplots(figsize=(max(1.4 * len(tasks) + 3, 6.0), 0.3 * len(top) + 2.2))
    im = ax.imshow(shade, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=7,
                    color="white" if shade[i, j] < 0.6 else "black")
    ax.set_xticks(range(len(tasks)), [f"{t.removeprefix('task_').replace('_', ' ')}\n[{a:.3f}, {b:.3f}]"
                                      for t, a, b in zip(tasks, lo, hi)],
                  rotation=30 if len(tasks) > 3 else 0, ha="right" if len(tasks) > 3 else "center", fontsize=8)
    ax.set_yticks(range(len(top)), top, fontsize=8)
    fig.colorbar(im, ax=ax, label="within each task: lowest (0) to highest (1) shown")
    ax.set_title(f"{run.name}: per-task scores of the best {len(top)} layouts\n(mean over seeds; "
                 "tick labels: each task's range)", fontsize=10)
    fig.tight_layout()
    return fig


def best_so_far(run: Run):
    """Every search evaluation in order, and the best score seen so far."""
    plt = _plt()
    rows = run.ok[run.ok["phase"] == "search"].sort_values("eval_index")
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.scatter(rows["eval_index"], rows["score"], s=10, alpha=0.5, label="one evaluation")
    ax.plot(rows["eval_index"], rows["score"].cummax(), color="tab:red", label="best so far")
    if "rung" in rows and rows["rung"].notna().any():
        first = rows[rows["rung"].notna()]["eval_index"].min()
        ax.axvline(first, color="gray", ls="--", lw=1, label="seed rungs begin")
    ax.set_xlabel("evaluation (layout, seed) in order")
    ax.set_ylabel("proxy score")
    ax.set_title(f"{run.name}: best score against evaluations")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def top_cluster(run: Run) -> list[str]:
    """Layouts of the top K-means cluster the vote saw (the best 8 by mean for older runs)."""
    stages = run.summary.get("stages") or []
    winner = (stages[-1].get("winner") or {}) if stages else {}
    return list(winner.get("cluster") or run.layouts.head(8)["pattern"])


def position_frequency(run: Run):
    """Share of each primitive at each position among the top cluster (what the N_c vote saw)."""
    plt = _plt()
    members = top_cluster(run)
    depth = max(len(p) for p in members)
    prims = sorted({c for p in members for c in p})
    freq = np.array([[sum(p[i] == c for p in members if i < len(p)) / len(members) for i in range(depth)]
                     for c in prims])
    fig, ax = plt.subplots(figsize=(0.6 * depth + 3, 0.5 * len(prims) + 1.8))
    im = ax.imshow(freq, cmap="magma", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(depth), [str(i) for i in range(depth)])
    ax.set_yticks(range(len(prims)), prims)
    for (i, j), v in np.ndenumerate(freq):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="white" if v < 0.6 else "black", fontsize=8)
    fig.colorbar(im, ax=ax, label="share of the top cluster")
    ax.set_xlabel("layer position")
    ax.set_title(f"{run.name}: primitive per position in the top cluster ({len(members)} layouts)")
    fig.tight_layout()
    return fig


def attention_share(run: Run):
    """Mean score against the share of attention layers."""
    plt = _plt()
    v = run.layouts
    share = v["pattern"].str.count("A") / v["pattern"].str.len()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.errorbar(share, v["score_mean"], yerr=v["score_se"].fillna(0.0), fmt="o", alpha=0.5, ms=4,
                label="a layout (bars: SE)")
    _label_points(ax, v, share, v["score_mean"], baselines(run))
    ax.set_xlabel("share of attention layers")
    ax.set_ylabel("proxy score (mean over seeds)")
    ax.set_title(f"{run.name}: score against attention share")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def _label_points(ax, v: pd.DataFrame, x, y, names: dict[str, str], best: int = 3,
                  key_at: str | None = "right") -> None:
    """Name the best ``best`` layouts by pattern (arrows, labels spread out), and mark the named
    baselines with numbered stars keyed in a box right of the axes, where it can hide no point
    (``key_at=None``: no key, for a panel whose neighbour keys the same stars)."""
    x, y = pd.Series(np.asarray(x, float), index=v.index), pd.Series(np.asarray(y, float), index=v.index)
    for k, i in enumerate(v.index[:best]):
        ax.annotate(f"#{k + 1} {v.at[i, 'pattern']}", (x[i], y[i]), textcoords="offset points",
                    xytext=(45, -18 - 13 * k), fontsize=7, arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.4"})
    key = []
    for k, (pattern, name) in enumerate(names.items(), 1):
        rows = v.index[v["pattern"] == pattern]
        if len(rows):
            i = rows[0]
            ax.scatter([x[i]], [y[i]], marker="*", s=160, color="tab:orange", zorder=3,
                       label="named baseline" if not key else None)
            ax.annotate(str(k), (x[i], y[i]), textcoords="offset points", xytext=(-3 + 7 * (k - 1), 7), fontsize=7,
                        color="tab:orange", fontweight="bold")
            key.append(f"{k} {name} {pattern}: {y[i]:.3f}")
    if key and key_at == "right":
        ax.text(1.02, 0.0, "\n".join(key), transform=ax.transAxes, ha="left", va="bottom", fontsize=7,
                family="monospace", bbox={"boxstyle": "round", "fc": "white", "ec": "0.7"}, gid="baseline-key")


def baselines(run: Run) -> dict[str, str]:
    """Named layouts at the run's depth that the run scored (Llama always when present)."""
    from composer.presets import LAYOUTS, layout

    depth = int(run.layouts["pattern"].str.len().max())
    seen = set(run.layouts["pattern"])
    out = {}
    for name in ("llama", "sandwich", "striped_1_2", "striped_1_4", "composite_6"):
        if name in LAYOUTS and layout(name, depth) in seen:
            out.setdefault(layout(name, depth), name)
    return out


def _front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices on the front of (lower x, higher y), in x order."""
    order = np.lexsort((-y, x))
    best, keep = -math.inf, []
    for i in order:
        if y[i] > best:
            keep.append(i)
            best = y[i]
    return np.array(keep, int)


def pareto(run: Run):
    """Score against KV cache and FLOPs per token at the target scale, Pareto front and baselines."""
    plt = _plt()
    v = run.layouts.dropna(subset=["target_kv_cache_bytes", "target_flops_per_token"])
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    names = baselines(run)
    for ax, col, label in ((axes[0], "target_kv_cache_bytes", "KV cache per sequence at target (MiB)"),
                           (axes[1], "target_flops_per_token", "FLOPs per token at target (GFLOP)")):
        scale = 2**20 if "kv" in col else 1e9
        x, y = v[col].to_numpy(float) / scale, v["score_mean"].to_numpy(float)
        ax.scatter(x, y, s=12, alpha=0.5, label="layouts")
        f = _front(x, y)
        ax.plot(x[f], y[f], color="tab:red", marker="o", ms=4, label="Pareto front")
        _label_points(ax, v, x, y, names, key_at="right" if ax is axes[1] else None)
        ax.set_xlabel(label)
        ax.set_ylabel("proxy score (mean over seeds)")
    # one legend below both panels, clear of every point (the baselines' stars included)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.subplots_adjust(bottom=0.2)
    fig.suptitle(f"{run.name}: score against cost at {run.summary.get('target', {}).get('scale', 'the target')} "
                 "(stars: named baselines)")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def fidelity_scatter(run: Run):
    """Proxy mean score against real-text validation loss, when the run folder holds a fidelity table."""
    if run.fidelity is None or not len(run.fidelity):
        return None
    plt = _plt()
    truth = run.fidelity[run.fidelity["status"] == "ok"].groupby("layout")["val_loss"].agg(["mean", "sem"])
    proxy = run.layouts.set_index("pattern")
    both = truth.join(proxy[["score_mean", "score_se"]], how="inner")
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.errorbar(both["score_mean"], both["mean"], xerr=both["score_se"].fillna(0), yerr=both["sem"].fillna(0),
                fmt="o", capsize=3)
    for name, r in both.iterrows():
        ax.annotate(name, (r["score_mean"], r["mean"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("proxy score (mean over seeds)")
    ax.set_ylabel("validation loss on real text (nats/byte)")
    ax.set_title(f"{run.name}: proxy against ground truth")
    fig.tight_layout()
    return fig


FIGURES: dict[str, Callable] = {
    "score_by_layout": score_by_layout, "task_heatmap": task_heatmap, "best_so_far": best_so_far,
    "position_frequency": position_frequency, "attention_share": attention_share, "pareto": pareto,
    "fidelity": fidelity_scatter,
}
"""Figure name -> function; the report draws them in this order."""

