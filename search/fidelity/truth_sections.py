"""The typed sections of a fidelity report: what ``truth_report.build_summary`` computes, what
``truth_markdown`` and ``figure`` render, and what ``summary.json`` serialises (``to_dict``).

``to_dict`` writes each section's keys in the order ``summary.json`` has always had them (a reader
diffing two reports sees only changed numbers); seed keys become strings, as JSON writes them anyway.
The intervals inside (``bootstrap_rank_ci``, ``search.stats.paired_difference`` and
``pooled_difference``) stay the plain ``dict[str, float]`` those shared functions return.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from composer.jsontypes import JSONObject, Record

if TYPE_CHECKING:
    from search.fidelity.plan import FidelitySettings

__all__ = ["LayoutSummary", "CorrelationBlock", "TruthNoise", "BudgetAgreement", "WinnerVsLlama", "PairBlock",
           "Failure", "RunCounts", "GridRuns", "FidelitySummary"]


@dataclasses.dataclass(frozen=True)
class LayoutSummary:
    """One layout: its proxy and main-budget ground truth over seeds, its recipe and its size."""

    n_attention: int
    """Attention layers in the proxy layout."""
    proxy_mean: float
    """The proxy's score (higher is better), mean over ``proxy_seeds``."""
    proxy_se: float
    proxy_seeds: tuple[int, ...]
    val_loss_mean: float
    """Nats per byte on the fixed validation windows, mean over ``truth_seeds``."""
    val_loss_se: float
    """Standard error over the ground-truth seeds (``window_se``: the validation text's own noise)."""
    val_bpb_mean: float
    truth_seeds: tuple[int, ...]
    window_se: float
    target_pattern: str | None
    non_embedding_params: int | None
    lr: dict[int, float]
    """Seed -> the peak rate its main-budget run trained at (NaN where the row did not record it)."""
    lr_at_edge: bool
    dev_losses: dict[int, dict[str, float | None]]
    """Seed -> ``{rate: dev loss or None}`` of the grids this layout ran itself."""
    param_ratio: float
    flops_ratio: float
    val_loss_pooled_ci: tuple[float, float] = (math.nan, math.nan)
    """95 % Student-t interval of ``val_loss_mean`` on the seed SD pooled over every layout at the main
    budget (``sd / sqrt(seeds)``, df of the pool): defined for a layout run on one seed too."""

    def to_dict(self) -> JSONObject:
        return {"n_attention": self.n_attention, "proxy_mean": self.proxy_mean, "proxy_se": self.proxy_se,
                "proxy_seeds": list(self.proxy_seeds), "val_loss_mean": self.val_loss_mean,
                "val_loss_se": self.val_loss_se, "val_bpb_mean": self.val_bpb_mean,
                "truth_seeds": list(self.truth_seeds), "window_se": self.window_se,
                "target_pattern": self.target_pattern, "non_embedding_params": self.non_embedding_params,
                "lr": {str(k): v for k, v in self.lr.items()}, "lr_at_edge": self.lr_at_edge,
                "dev_losses": {str(k): dict(v) for k, v in self.dev_losses.items()},
                "param_ratio": self.param_ratio, "flops_ratio": self.flops_ratio,
                "val_loss_pooled_ci": list(self.val_loss_pooled_ci)}


@dataclasses.dataclass(frozen=True)
class CorrelationBlock(Record):
    """Rank agreement of proxy and ground truth over ``layouts`` (``bootstrap_rank_ci`` results)."""

    layouts: tuple[str, ...]
    spearman: dict[str, float]
    kendall: dict[str, float]


@dataclasses.dataclass(frozen=True)
class TruthNoise(Record):
    """The ground truth's own noise: Kendall between the orders of each pair of seeds, and the seed SD."""

    kendall_pairs: dict[str, float]
    """``"<seed a>-<seed b>"`` -> Kendall tau over the layouts both seeds ran."""
    seed_sd_median: float


@dataclasses.dataclass(frozen=True)
class BudgetAgreement:
    """The layout order at the main budget against that at one longer budget, on the seeds run at both."""

    tokens: int
    main_tokens: int
    layouts: tuple[str, ...]
    kendall: float
    seeds: dict[str, tuple[int, ...]]
    main_loss: dict[str, float]
    long_loss: dict[str, float]
    main_order: tuple[str, ...]
    long_order: tuple[str, ...]

    def to_dict(self) -> JSONObject:
        return {"tokens": self.tokens, "main_tokens": self.main_tokens, "layouts": list(self.layouts),
                "kendall": self.kendall, "seeds": {x: list(s) for x, s in self.seeds.items()},
                "main_loss": dict(self.main_loss), "long_loss": dict(self.long_loss),
                "main_order": list(self.main_order), "long_order": list(self.long_order)}


@dataclasses.dataclass(frozen=True)
class WinnerVsLlama:
    """The search's winner against the Llama layout of its depth; a difference is ``None`` when a side
    lacks the numbers (and is then left out of ``summary.json``)."""

    winner: str
    llama: str
    note: str | None = None
    val_loss_difference: dict[str, float] | None = None
    val_loss_difference_pooled: dict[str, float] | None = None
    proxy_difference: dict[str, float] | None = None

    def to_dict(self) -> JSONObject:
        out: JSONObject = {"winner": self.winner, "llama": self.llama}
        for name in ("note", "val_loss_difference", "val_loss_difference_pooled", "proxy_difference"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


@dataclasses.dataclass(frozen=True)
class PairBlock:
    """The loss of ``a`` minus that of ``b`` at one budget: paired by seed, and with the pooled seed SD
    (``pooled["sd_tokens"]``: the budget that SD was pooled at, a shorter one where this budget has no
    layout on two seeds; ``None``: no budget had one)."""

    a: str
    b: str
    tokens: int
    paired: dict[str, float]
    pooled: dict[str, float]

    def to_dict(self) -> JSONObject:
        return {"a": self.a, "b": self.b, "tokens": self.tokens, "paired": dict(self.paired),
                "pooled": dict(self.pooled)}


@dataclasses.dataclass(frozen=True)
class Failure(Record):
    """A ground-truth run that did not finish ``ok``."""

    key: str
    status: str | None
    error: str | None


@dataclasses.dataclass(frozen=True)
class RunCounts(Record):
    ok: int
    failed: int
    failures: tuple[Failure, ...]


@dataclasses.dataclass(frozen=True)
class GridRuns(Record):
    """The learning-rate runs of the study (``lr_grid.parquet``), counted."""

    ok: int
    """Runs that finished with a finite dev loss."""
    diverged: int
    """Runs whose loss left the finite numbers (their rate is never chosen)."""
    train_hours: float
    """Their training wall time, summed."""


@dataclasses.dataclass(frozen=True)
class FidelitySummary:
    """Every number of the report (NaN where a quantity is undefined; ``summary.json`` writes ``null``)."""

    settings: FidelitySettings | None
    main_tokens: int | None
    """The budget most runs share (``None``: no finished run yet)."""
    other_tokens: tuple[int, ...]
    runs: RunCounts
    proxy_protocols: tuple[str, ...]
    layouts: dict[str, LayoutSummary]
    correlation: dict[str, CorrelationBlock]
    """``all`` and ``ge<MIN_ATTENTION>A`` (the decision region)."""
    per_task: dict[str, dict[str, dict[str, float]]]
    """The same two groups -> proxy task -> its ``bootstrap_rank_ci`` against the ground truth."""
    truth_noise: TruthNoise
    budget_agreement: tuple[BudgetAgreement, ...]
    winner_vs_llama: WinnerVsLlama | None
    pairs: tuple[PairBlock, ...]
    grid_runs: GridRuns | None = None
    """Set by ``write_report`` for a study with a learning-rate grid (absent from the JSON otherwise)."""

    def to_dict(self) -> JSONObject:
        out: JSONObject = {
            "settings": self.settings.to_dict() if self.settings else None, "main_tokens": self.main_tokens,
            "other_tokens": list(self.other_tokens), "runs": self.runs.to_dict(),
            "proxy_protocols": list(self.proxy_protocols),
            "layouts": {x: v.to_dict() for x, v in self.layouts.items()},
            "correlation": {k: c.to_dict() for k, c in self.correlation.items()},
            "per_task": {k: {t: dict(ci) for t, ci in v.items()} for k, v in self.per_task.items()},
            "truth_noise": self.truth_noise.to_dict(),
            "budget_agreement": [b.to_dict() for b in self.budget_agreement],
            "winner_vs_llama": self.winner_vs_llama.to_dict() if self.winner_vs_llama else None,
            "pairs": [p.to_dict() for p in self.pairs],
        }
        if self.grid_runs is not None:
            out["grid_runs"] = self.grid_runs.to_dict()
        return out
