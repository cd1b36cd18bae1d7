"""What the published judges say of a search's winner: the rule of thumb of every published set that
speaks about its kind of layout, for the winner and for the Llama layout of the same depth.

A proxy's favourite is only a claim; the published sets (docs/published.md) summarise what models
trained at scale showed, each in one heuristic (``search.published.heuristics``). For every set that
compares layouts built of exactly the winner's primitives, this states whether that heuristic prefers the winner
or the Llama layout, with the set's best published layout and its attention/MLP-only reference beside,
so a reader sees at once whether the winner goes with or against the evidence at scale. It is a
reading of published findings, not a measurement of the winner: the winner itself was never trained
at scale.
"""

from __future__ import annotations

import dataclasses

from composer.jsontypes import Record
from search.published.heuristics import heuristic_score
from search.published.sets import PublishedSet, resolve_sets

__all__ = ["SetVerdict", "published_evidence", "evidence_lines"]

_TIE = 1e-9


@dataclasses.dataclass(frozen=True)
class SetVerdict(Record):
    """One published set's heuristic applied to the winner and to the Llama layout of its depth."""

    set: str
    cite: str
    heuristic: str
    winner: float
    llama: float
    prefers: str
    """``winner``, ``llama`` or ``neither`` (equal heuristic scores)."""
    best_label: str
    best_value: float
    reference_label: str | None
    """The set's layout of only attention and MLP layers, alternating or closest to it (``None``: none)."""
    reference_value: float | None
    metric: str
    direction: str


def _speaks_about(s: PublishedSet, pattern: str) -> bool:
    """At least two of the set's layouts are built of exactly the winner's primitives: the set compares
    layouts of its kind (a set of Mamba-2 hybrids with one Transformer says nothing of A/M orderings)."""
    kind = set(pattern)
    return sum(set(lay.layout) == kind for lay in s.layouts) >= 2


def _reference(s: PublishedSet):
    """The set's attention/MLP-only layout nearest to strict alternation (the Transformer baseline)."""
    am = [lay for lay in s.layouts if set(lay.layout) <= {"A", "M"}]
    if not am:
        return None
    return min(am, key=lambda lay: sum(a == b for a, b in zip(lay.layout, lay.layout[1:])))


def published_evidence(pattern: str, sets: str = "all") -> list[SetVerdict]:
    """Every shipped published set that speaks about ``pattern``'s primitives, its heuristic's verdict."""
    from composer.presets import layout

    llama = layout("llama", len(pattern))
    out = []
    for s in resolve_sets(sets):
        if not _speaks_about(s, pattern):
            continue
        w, l = heuristic_score(s.heuristic, pattern), heuristic_score(s.heuristic, llama)
        prefers = "neither" if abs(w - l) <= _TIE else ("winner" if w > l else "llama")
        lower = s.direction == "lower"
        best = min(s.layouts, key=lambda lay: lay.value if lower else -lay.value)
        ref = _reference(s)
        out.append(SetVerdict(set=s.name, cite=s.cite(), heuristic=s.heuristic, winner=round(w, 4),
                              llama=round(l, 4), prefers=prefers, best_label=best.label, best_value=best.value,
                              reference_label=ref.label if ref else None,
                              reference_value=ref.value if ref else None, metric=s.metric, direction=s.direction))
    return out


def evidence_lines(pattern: str, verdicts: list[SetVerdict]) -> list[str]:
    """One line per set, as ``composer search`` prints them."""
    lines = []
    for v in verdicts:
        side = {"winner": f"prefers {pattern}", "llama": "prefers the Llama layout",
                "neither": "has no preference"}[v.prefers]
        ref = ("" if v.reference_label is None else
               f"; its attention/MLP reference {v.reference_label} {v.reference_value:g}")
        lines.append(f"{v.set}: {v.heuristic} {side} ({v.winner:+.2f} vs {v.llama:+.2f}); best published "
                     f"{v.best_label} {v.best_value:g} {v.metric} ({v.direction} is better){ref}")
    return lines
