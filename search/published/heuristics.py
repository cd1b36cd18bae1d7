"""Rules of thumb that a proxy must beat to be worth its cost (docs/published.md, "Heuristics").

Each heuristic maps a layout (expanded shorthand string) to a score, higher meaning "predicted
better", and is the one-line summary of a published finding. A proxy that ranks a set no better
than its heuristic has learnt nothing the heuristic did not already say.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["HEURISTICS", "Heuristic", "heuristic_score"]

ATTENTION = frozenset("AW")
"""Attention-like layers (full and sliding-window)."""
RECURRENT = frozenset("SGL")
"""Fixed-state token mixers (Mamba-2, Gated DeltaNet, GLA)."""
CHANNEL = frozenset("M")
"""Layers that mix no tokens."""


def attention_not_first(layout: str) -> float:
    """0, or -1 when the first layer is attention (Bae et al. 2025; Samba Table 5)."""
    return -1.0 if layout[0] in ATTENTION else 0.0


def attention_share_10_25(layout: str) -> float:
    """Minus the distance of the attention share of the token mixers from [10 %, 25 %] (Mamba-2 Table 2:
    about 10 % attention is best; Kimi Linear: 3:1 and 1:1 beat 0:1 and 15:1)."""
    mixers = [c for c in layout if c not in CHANNEL]
    if not mixers:
        return -1.0
    share = sum(c in ATTENTION for c in mixers) / len(mixers)
    return -max(0.10 - share, share - 0.25, 0.0)


def recurrent_and_attention(layout: str) -> float:
    """1 for a hybrid with both a recurrent and an attention-like layer, else 0 (Samba Table 3, Mamba-2
    Table 3, Gated DeltaNet Table 2, Jamba: hybrids beat both pure models)."""
    chars = set(layout)
    return float(bool(chars & RECURRENT) and bool(chars & ATTENTION))


def attention_bottom_heavy(layout: str) -> float:
    """Mean relative depth of the MLPs minus that of the attention layers (Press et al. 2020: attention
    near the input and feed-forward near the output did better); 0 without either."""
    n = len(layout)
    att = [i / max(1, n - 1) for i, c in enumerate(layout) if c in ATTENTION]
    mlp = [i / max(1, n - 1) for i, c in enumerate(layout) if c in CHANNEL]
    if not att or not mlp:
        return 0.0
    return sum(mlp) / len(mlp) - sum(att) / len(att)


Heuristic = Callable[[str], float]
HEURISTICS: dict[str, Heuristic] = {f.__name__: f for f in (attention_not_first, attention_share_10_25,
                                                            recurrent_and_attention, attention_bottom_heavy)}


def heuristic_score(name: str, layout: str) -> float:
    return HEURISTICS[name](layout)
