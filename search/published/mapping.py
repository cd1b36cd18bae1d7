"""Mapping a published layout to a shallower proxy depth, with its parameters matched.

Published layouts are 22-64 layers deep; a proxy evaluation costs about linearly in depth, so a study
over ~100 layouts maps them to ``depth`` layers (docs/published.md, "Mapped depth"). Two rules:

1. **Structure.** A layout is a sequence of blocks: of two layers (a token mixer and its MLP) when it
   is written entirely that way, else of single layers (``block_size``). The most common block is the
   background and every other block type keeps its share and its relative
   place: ``m`` blocks of a type among ``N`` become ``max(1, round(m n / N))`` among ``n``, picked as
   evenly spread quantiles of the originals (first and last included; a single pick is the first
   block if it leads the layout, else the median one), each placed at its relative position. A
   periodic layout repeats its period when ``n`` holds whole periods and follows this rule otherwise.
   A block that was first stays first and only such a block goes first; likewise last. Collisions
   move to the nearest free place. A set whose finding does not survive a shallower copy (random
   orderings) says ``"mapping": "none"`` and is evaluated at its published depth.
2. **Parameters.** The published models are parameter-matched at their widths (Bae et al. give the
   pure Mamba-2 model 13 blocks against the Transformer's 16). The proxy's primitives have other
   ratios (at d = 64 a Mamba-2 layer has 2.1x an attention layer's parameters, a SwiGLU 2.06x), so each
   layout gets the number of blocks whose proxy non-embedding parameters come closest to those of
   the Llama layout ``(AM)x(depth/2)`` at the same widths. Every layout of a set therefore costs about
   the same parameters at the proxy, whatever its depth.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Callable

__all__ = ["block_size", "structural_map", "map_layout", "reference_layout"]


def block_size(layout: str) -> int:
    """2 when the layout is entirely mixer + MLP blocks (``SMAMSM``), else 1 (``SSAS``, ``MMWM``)."""
    if len(layout) % 2 == 0 and set(layout[1::2]) == {"M"} and "M" not in layout[0::2]:
        return 2
    return 1


def _units(layout: str, unit: int) -> list[str]:
    return [layout[i:i + unit] for i in range(0, len(layout), unit)]


def _period(units: list[str]) -> int | None:
    n = len(units)
    for p in range(1, n // 2 + 1):
        if n % p == 0 and units == units[:p] * (n // p):
            return p
    return None


def _slot(p: int, N: int, n: int) -> int:
    if p == 0 or n == 1:
        return 0
    if p == N - 1:
        return n - 1
    slot = math.floor((p + 0.5) * n / N)
    return min(max(slot, 1), n - 2 if n >= 3 else n - 1)


def _free_near(taken: list[bool], slot: int) -> int:
    for d in range(len(taken)):
        for s in (slot + d, slot - d):
            if 0 <= s < len(taken) and not taken[s]:
                return s
    raise ValueError("more blocks to place than places")


def structural_map(layout: str, n: int) -> str:
    """``layout`` as ``n`` blocks by the structure rule (module docstring); raises
    ``ValueError`` when ``n`` blocks cannot hold one of each kind of block the layout has."""
    units = _units(layout, block_size(layout))
    N = len(units)
    if n == N:
        return layout
    period = _period(units)
    if period is not None and n % period == 0:
        return "".join(units[:period]) * (n // period)
    counts = Counter(units)
    background = max(counts, key=lambda u: (counts[u], -units.index(u)))
    target = [background] * n
    taken = [False] * n
    for kind in sorted((u for u in counts if u != background), key=units.index):
        where = [i for i, u in enumerate(units) if u == kind]
        k = min(n, max(1, round(len(where) * n / N)))
        if k == 1:  # a front block stays in front (the one placement every published set condemns)
            picks = [where[0] if where[0] == 0 else where[len(where) // 2]]
        else:
            picks = [where[round(j * (len(where) - 1) / (k - 1))] for j in range(k)]
        for p in picks:
            s = _free_near(taken, _slot(p, N, n))
            taken[s], target[s] = True, kind
    return "".join(target)


def reference_layout(depth: int) -> str:
    """The Llama layout of ``depth`` layers, whose proxy parameters every mapped layout matches."""
    if depth < 2 or depth % 2:
        raise ValueError(f"depth must be an even number >= 2, got {depth}")
    from composer.presets import layout

    return layout("llama", depth)


def map_layout(layout: str, depth: int, params: Callable[[str], int]) -> str:
    """``layout`` mapped to about ``depth`` layers' worth of proxy parameters (module docstring, rule 2).

    ``params(pattern)`` counts a pattern's non-embedding parameters at the proxy's widths. Block counts
    from 1 to ``2 * depth / block_size`` are tried; ties go to the count nearer ``depth`` layers. A layout with
    a period of at most ``depth / 2`` layers (``(AMSM)x7``, ``(SWM)x8``) is kept to whole periods, so an
    alternating 1:1 hybrid stays 1:1 and a repeated group keeps its order, at the price of a looser
    parameter match (+18 % for a 1:1 Mamba-2 hybrid at 12 layers).
    """
    target = params(reference_layout(depth))
    unit = block_size(layout)
    units = _units(layout, unit)
    period = _period(units)
    # a period of at most half the depth stays whole: (AMSM)x7 stays 1:1, (SWM)x8 keeps its layer order
    step = period if period is not None and period * unit <= depth // 2 else 1
    best: tuple[float, int, str] | None = None
    for n in range(step, 2 * max(1, depth // unit) + 1, step):
        try:
            cand = structural_map(layout, n)
        except ValueError:  # too few blocks for every kind of block the layout has
            continue
        key = (abs(params(cand) - target), abs(len(cand) - depth), cand)
        if best is None or key[:2] < best[:2]:
            best = key
    return best[2]
