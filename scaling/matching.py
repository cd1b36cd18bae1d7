"""Size matching: bring an extrapolated layout to the size of the scale's Llama shape (docs/extrapolate.md).

Stacking and stretching round whole layers, so layouts of different primitives land at different
sizes: at the ``small`` scale a stacked ``SMSMAM`` has about 21 % more non-embedding parameters than
the Llama shape, ``AMMAMM`` about 9 % fewer. A comparison of layouts is only fair at equal size
(Kaplan et al. 2020: loss falls with parameters at a fixed token budget), so matching corrects it in
two steps, both cheap arithmetic over ``scaling.counting``:

1. **Depth.** Among the depths the rule itself can produce (stacking: ``q - 1 .. q + 1`` whole copies
   and every remainder copy the half-up rounding gives; stretching: factors within +-30 % of ``M / m``),
   take the one whose size is closest to the reference (ties: the rule's own depth).
2. **Width.** The residual goes to the widths of the layers that have a width option: the SwiGLU
   layers' ``d_ffn`` (one width for all of them, rounded to ``granularity``, then the last one takes
   what is left), or, in a layout without an MLP layer, the attention layers' query heads
   (``n_heads``, in steps of ``n_kv_heads``). Layouts with neither are matched by depth alone.

``by="params"`` matches non-embedding parameters; ``by="flops"`` matches the layers' forward FLOPs per
token at ``seq_len`` (the LM head, equal for every layout, is left out). ``TOLERANCE`` is the promise
the tests hold every preset layout to at every named scale.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Callable

from composer.spec import ArchSpec, LayerSpec, SpecError
from scaling.counting import flops_per_token, non_embedding_params
from scaling.rules import round_half_up, scale_runs, stack, stretch

__all__ = ["MATCHES", "TOLERANCE", "Size", "size_of", "match_spec"]

MATCHES = ("params", "flops", "none")
TOLERANCE = 0.02
"""Matched sizes lie within +-2 % of the reference (every preset layout, every named scale)."""


@dataclasses.dataclass(frozen=True)
class Size:
    """A spec's two sizes: non-embedding parameters and layer FLOPs per token at ``seq_len``."""

    params: int
    flops: int
    seq_len: int


def size_of(spec: ArchSpec, seq_len: int | None = None) -> Size:
    t = spec.max_seq_len if seq_len is None else seq_len
    return Size(non_embedding_params(spec), flops_per_token(spec, t) - 2 * spec.d_model * spec.vocab_size, t)


def _measure(by: str, seq_len: int | None) -> Callable[[ArchSpec], int]:
    if by == "params":
        return non_embedding_params
    if by == "flops":
        return lambda s: size_of(s, seq_len).flops
    raise SpecError(f"match: unknown match {by!r}; valid: {', '.join(MATCHES)}")


def _depth_candidates(small: tuple[LayerSpec, ...], rule: str, M: int, m: int) -> list[tuple[LayerSpec, ...]]:
    own = stack(small, M, m) if rule == "stack" else stretch(small, Fraction(M, m))
    out = [own]
    if rule == "stack":
        q = math.floor(Fraction(M, m))
        n = len(small)
        for copies in range(max(0, q - 1), q + 2):
            for j in range(0, 4 * n + 1):
                layers = tuple(small) * copies + tuple(scale_runs(small, Fraction(j, 4 * n), round_half_up))
                if layers:
                    out.append(layers)
    else:
        base = Fraction(M, m)
        for k in range(-60, 61):
            f = base * (1 + Fraction(k, 200))
            if f > 0:
                out.append(stretch(small, f))
    return list(dict.fromkeys(out))


def _with_width(layers: tuple[LayerSpec, ...], index: list[int], option: str, uniform: int,
                last: int | None = None, default: int | None = None) -> tuple[LayerSpec, ...]:
    """``layers`` with ``option`` set on the layers at ``index`` (the last one to ``last`` if given); a
    value equal to the spec's own width ``default`` is left unset, so an unchanged layer keeps its id."""
    out = list(layers)
    for n, i in enumerate(index):
        value = last if (last is not None and n == len(index) - 1) else uniform
        opts = {k: v for k, v in layers[i].option_dict.items() if k != option}
        if value != default:
            opts[option] = value
        out[i] = LayerSpec(layers[i].primitive, tuple(sorted(opts.items())))
    return tuple(out)


def _fit_width(spec: ArchSpec, target: int, measure, granularity: int) -> ArchSpec:
    """``spec`` with its MLP widths (else attention heads) set so ``measure`` comes closest to ``target``."""
    layers = spec.layers
    mlp = [i for i, l in enumerate(layers) if l.shorthand == "M"]
    attn = [i for i, l in enumerate(layers) if l.shorthand in ("A", "W")]
    if mlp:
        index, option, step, default = mlp, "d_ffn", granularity, spec.d_ffn
    elif attn:
        index, option, step, default = attn, "n_heads", spec.n_kv_heads, spec.n_heads
    else:
        return spec
    if measure(spec) == target:
        return spec

    def value(uniform: int, last: int | None = None) -> int:
        return measure(spec.replace(layers=_with_width(layers, index, option, uniform, last, default)))

    v1, v2 = value(step), value(2 * step)
    slope = (v2 - v1) / step  # linear in the width: every resized layer's cost is
    if slope <= 0:
        return spec
    uniform = max(step, step * round((step + (target - v1) / slope) / step))
    per_layer = slope / len(index)
    last = max(step, uniform + step * round((target - value(uniform)) / per_layer / step))
    best = min(((uniform, None), (uniform, last)), key=lambda c: abs(value(*c) - target))
    return spec.replace(layers=_with_width(layers, index, option, *best, default))


def match_spec(spec: ArchSpec, small: tuple[LayerSpec, ...], rule: str, M: int, m: int, reference: ArchSpec,
               by: str, *, seq_len: int | None = None, granularity: int = 16) -> ArchSpec:
    """``spec`` (``small`` extrapolated by ``rule``) resized to ``reference``'s size by ``by`` (module docstring)."""
    if by == "none":
        return spec
    measure = _measure(by, seq_len)
    target = measure(reference)
    candidates = _depth_candidates(small, rule, M, m)
    own = candidates[0]
    depth = min(candidates, key=lambda ls: (abs(measure(spec.replace(layers=ls)) - target), ls != own))
    return _fit_width(spec.replace(layers=depth), target, measure, granularity)
