"""What the committed real-text study says of a search's winner against the Llama layout of its depth.

The fair real-text study (docs/fidelity.md, "The fair recipe"; ``make fidelity``) trains layouts at
the ``small`` scale on real books, each at its own learning rate chosen on a dev split, matched in
size to the scale's Llama shape, on two seeds. When the winner of a search is one of its layouts,
``composer search`` states the winner's validation loss minus Llama's at every token budget where
both were trained, with a 95 % interval from the seed variance pooled over every layout of that
budget (``search.stats.pooled_sd``: df = sum of (seeds - 1)). A winner the study never trained gets
no line; the study is the repository's committed table, so an installed copy without it gets none.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from composer.jsontypes import Record

__all__ = ["RealTextVerdict", "STUDY", "real_text_evidence", "real_text_lines"]

STUDY = Path(__file__).resolve().parents[2] / "experiments" / "results" / "fidelity_fair.parquet"
"""The committed fair study's table of runs (one row per layout, seed and token budget)."""


@dataclasses.dataclass(frozen=True)
class RealTextVerdict(Record):
    """The winner against the Llama layout at one token budget of the real-text study."""

    winner: str
    llama: str
    scale: str
    tokens: int
    winner_loss: float
    llama_loss: float
    difference: float
    """``winner_loss - llama_loss`` in nats per byte: below zero, the winner models real text better."""
    lo: float | None
    hi: float | None
    """The pooled 95 % interval (``None`` where no layout has two seeds at this budget)."""
    winner_seeds: tuple[int, ...]
    llama_seeds: tuple[int, ...]
    pooled_sd: float | None
    df: int
    """Degrees of freedom of the pooled seed SD: sum of (seeds - 1) over every layout at this budget."""
    n_layouts: int
    verdict: str
    """``winner better``, ``llama better`` or ``no difference`` (the interval holds zero)."""
    source: str


def real_text_evidence(pattern: str, study: Path | str | None = None) -> list[RealTextVerdict]:
    """Per token budget where ``pattern`` and the Llama layout of its depth both have finished runs."""
    from composer.presets import layout
    from search.fidelity.truth_report import losses_at, ok_rows
    from search.fidelity.truth_rows import TruthRow
    from search.results.parquet import read_parquet
    from search.stats import pooled_difference, pooled_sd

    path = Path(study) if study is not None else STUDY
    if not pattern or not path.exists():
        return []
    rows = ok_rows(TruthRow.from_dict(r) for r in read_parquet(path).to_dict("records"))
    llama = layout("llama", len(pattern))
    out = []
    for tokens in sorted({int(r.tokens) for r in rows}):
        loss = losses_at(rows, tokens)
        if pattern == llama or pattern not in loss or llama not in loss:
            continue
        sd, df = pooled_sd(v.values() for v in loss.values())
        d = pooled_difference(loss[pattern], loss[llama], sd, df)
        ci = math.isfinite(d["lo"]) and math.isfinite(d["hi"])
        if not ci:
            verdict = "one seed each, no interval yet"
        elif d["lo"] > 0:
            verdict = "llama better"
        elif d["hi"] < 0:
            verdict = "winner better"
        else:
            verdict = "no difference"
        scale = next((r.scale for r in rows if int(r.tokens) == tokens and r.scale), "small")
        out.append(RealTextVerdict(
            winner=pattern, llama=llama, scale=scale, tokens=int(tokens),
            winner_loss=round(sum(loss[pattern].values()) / len(loss[pattern]), 4),
            llama_loss=round(sum(loss[llama].values()) / len(loss[llama]), 4),
            difference=round(d["mean"], 4), lo=round(d["lo"], 4) if ci else None,
            hi=round(d["hi"], 4) if ci else None,
            winner_seeds=tuple(sorted(loss[pattern])), llama_seeds=tuple(sorted(loss[llama])),
            pooled_sd=round(sd, 4) if math.isfinite(sd) else None, df=int(df), n_layouts=len(loss),
            verdict=verdict, source=path.name))
    return out


def real_text_lines(verdicts: list[RealTextVerdict]) -> list[str]:
    """One line per token budget, as ``composer search`` prints them."""
    return [f"{v.winner} - {v.llama} at {v.scale}, {v.tokens / 1e6:.0f}M tokens: {v.difference:+.3f} "
            f"{'' if v.lo is None else f'[{v.lo:+.3f}, {v.hi:+.3f}] '}nats/byte, {v.verdict} "
            f"(seeds {list(v.winner_seeds)} vs {list(v.llama_seeds)}, seed SD pooled over {v.n_layouts} layouts, "
            f"df {v.df}; fair recipe, {v.source})"
            for v in verdicts]
