"""The fidelity figure: proxy score against the real-text ground truth (``fidelity.png``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from search.fidelity.truth_sections import FidelitySummary, LayoutSummary

__all__ = ["MIN_ATTENTION", "plot", "fmt_value", "fmt_ci"]

MIN_ATTENTION = 2
"""The decision region: layouts with at least this many attention layers (where the contenders are)."""


def fmt_value(x, fmt="{:.4f}") -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else fmt.format(x)


def fmt_ci(d: Mapping[str, float], fmt="{:+.3f}") -> str:
    return f"{fmt_value(d['value'], fmt)} [{fmt_value(d['lo'], fmt)}, {fmt_value(d['hi'], fmt)}]"


def _scatter(ax, lay: dict[str, LayoutSummary], pts: list[str]) -> None:
    for x in pts:
        v = lay[x]
        color = "tab:blue" if v.n_attention >= MIN_ATTENTION else "tab:gray"
        err = [0 if not math.isfinite(e) else e for e in (v.proxy_se, v.val_loss_se)]
        ax.errorbar(v.proxy_mean, v.val_loss_mean, xerr=err[0], yerr=err[1], fmt="o", color=color, capsize=3)
        ax.annotate(x, (v.proxy_mean, v.val_loss_mean), textcoords="offset points", xytext=(5, 4), fontsize=7)
    ax.set_xlabel("proxy score (mean over seeds; higher is better)")
    ax.grid(alpha=0.3)


def plot(summary: FidelitySummary, path: Path) -> Path | None:
    """Scatter of proxy score vs validation loss with seed standard errors as bars: all layouts (left)
    and the decision region of layouts with >= 2 attention layers (right), with their Spearman CIs."""
    try:
        import matplotlib
    except ImportError:  # plotting is optional on a bare accelerator image; the numbers are all in the JSON
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lay = summary.layouts
    pts = [x for x in lay if lay[x].proxy_seeds and lay[x].truth_seeds]
    region = [x for x in pts if lay[x].n_attention >= MIN_ATTENTION]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), dpi=110)
    for ax, subset, key, title in ((axes[0], pts, "all", "all layouts"),
                                   (axes[1], region, f"ge{MIN_ATTENTION}A", f">= {MIN_ATTENTION} attention layers")):
        _scatter(ax, lay, subset)
        c = summary.correlation[key].spearman
        ax.set_title(f"{title}: Spearman {fmt_ci(c, '{:+.2f}')}", fontsize=9)
    tokens = fmt_value(summary.main_tokens, "{:,}")
    axes[0].set_ylabel(f"validation loss, nats/byte ({tokens} tokens; lower is better)")
    fig.suptitle("Proxy score vs real-text ground truth (bars: standard error over seeds)", fontsize=10)
    fig.tight_layout()
    from composer.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
