"""Depth extrapolation of a small layout to a target scale: stacking and stretching (docs/method.md §2.4).

Widths first: every layer takes the target scale's widths and keeps its own options. Then depth,
with ``M`` the parameter budget of the Llama baseline at that scale and ``m`` the cost of the small
layout at the target widths, both from ``scaling.counting`` (so every registered primitive, present or
future, is sized by its own ``param_count``).

Choices the paper leaves open (recorded in docs/extrapolate.md):
- **Norms.** ``M`` and ``m`` are *layer* parameters: each layer's pre-norm gain is counted with its
  layer (``counting.layer_params``), the final norm is left out of both. The final norm is paid once
  whatever the depth, so counting it in ``m`` would charge every stacked copy for a norm it does not
  bring. With this rule ``M / m`` is exactly the number of Llama blocks when the layout is ``AM``.
  The reported target and real counts are full non-embedding counts (final norm included).
- **Runs** are maximal runs of identical layers (same primitive *and* options), so a layout that
  mixes, say, two window sizes keeps each run's options.
- **Remainder of stacking.** The appended remainder copy rounds each run half up
  (``floor(r * h + 1/2)``) rather than up: the method drops "runs that round to zero length", which
  only a rounding that can reach zero allows (``ceil`` is zero only when ``r = 0``). Stacking may
  therefore land slightly under the target; stretching (``ceil``) never does.
- **auto** stacks layouts of at most ``AUTO_STACK_MAX_DEPTH`` layers and stretches deeper ones: the
  paper found stacking best for its 6-layer search and stretching for its 16-layer search; 8 splits
  the two.
All arithmetic is exact (``fractions.Fraction``): ``ceil(16.000000001)`` would add a layer.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

from composer.presets import Scale, get_scale, llama_spec, spec_from_pattern
from composer.spec import ArchSpec, SpecError
from scaling.counting import layer_params, non_embedding_params
from scaling.matching import MATCHES, match_spec, size_of
from scaling.rules import runs, stack, stretch

__all__ = ["RULES", "AUTO_STACK_MAX_DEPTH", "Extrapolation", "runs", "stretch", "stack", "choose_rule",
           "at_widths", "extrapolate"]

RULES = ("stack", "stretch", "auto")
AUTO_STACK_MAX_DEPTH = 8
"""``auto`` stacks layouts up to this depth and stretches deeper ones (paper: 6 -> stack, 16 -> stretch)."""

def choose_rule(rule: str, depth: int) -> str:
    """The rule actually used: ``auto`` -> ``stack`` up to ``AUTO_STACK_MAX_DEPTH`` layers, else ``stretch``."""
    if rule not in RULES:
        raise SpecError(f"rule: unknown rule {rule!r}; valid rules: {', '.join(RULES)}")
    if rule != "auto":
        return rule
    return "stack" if depth <= AUTO_STACK_MAX_DEPTH else "stretch"


def at_widths(spec: ArchSpec, scale: str | Scale) -> ArchSpec:
    """``spec``'s layers (options kept) at ``scale``'s widths, vocabulary, context and RoPE base.

    ``tie_embeddings`` and ``norm_eps`` are architecture choices, not widths, and are kept.
    """
    sc = get_scale(scale) if isinstance(scale, str) else scale
    return spec.replace(d_model=sc.d_model, n_heads=sc.n_heads, n_kv_heads=sc.n_kv_heads, head_dim=sc.head_dim,
                        d_ffn=sc.d_ffn, vocab_size=sc.vocab_size, max_seq_len=sc.max_seq_len,
                        rope_theta=sc.rope_theta)


def _layer_budget(spec: ArchSpec) -> int:
    """Parameters of the layers with their pre-norms; the once-paid final norm is left out."""
    return sum(layer_params(spec, layer) for layer in spec.layers)


@dataclasses.dataclass(frozen=True)
class Extrapolation:
    """A layout extrapolated to a target scale, with the numbers that sized it."""

    spec: ArchSpec
    """The extrapolated spec at the target widths."""
    source_pattern: str
    """Shorthands of the small layout."""
    scale: str
    """Name of the target scale."""
    rule: str
    """Rule actually used: ``stack`` or ``stretch`` (``auto`` resolved)."""
    M: int
    """Target layer parameters: the Llama baseline's non-embedding count less its final norm."""
    m: int
    """Layer parameters of the small layout at the target widths (final norm left out likewise)."""
    target_non_embedding_params: int
    """Non-embedding parameters of the Llama baseline at the target scale (final norm included)."""
    non_embedding_params: int
    """Real non-embedding parameters of ``spec``; above the target when ``ceil`` overshoots."""
    match: str = "none"
    """Size matching applied after the rule (``scaling.matching``): ``params``, ``flops`` or ``none``."""
    flops_per_token: int = 0
    """Forward FLOPs per token of ``spec``'s layers at ``seq_len`` (LM head left out)."""
    target_flops_per_token: int = 0
    """The same for the Llama baseline at the target scale."""
    seq_len: int = 0
    """Context length the FLOPs are counted at."""

    @property
    def s(self) -> float:
        """The stretch factor ``M / m``."""
        return self.M / self.m

    @property
    def overshoot_ratio(self) -> float:
        """Real over target non-embedding parameters (1.0 = exact; stacking may fall just under)."""
        return self.non_embedding_params / self.target_non_embedding_params

    @property
    def param_ratio(self) -> float:
        """Non-embedding parameters over the Llama baseline's (the same as ``overshoot_ratio``)."""
        return self.overshoot_ratio

    @property
    def flops_ratio(self) -> float:
        """Layer FLOPs per token over the Llama baseline's (NaN when they were not counted)."""
        return self.flops_per_token / self.target_flops_per_token if self.target_flops_per_token else math.nan


def extrapolate(spec_or_pattern: ArchSpec | str, scale: str | Scale, rule: str = "auto", *, match: str = "none",
                seq_len: int | None = None) -> Extrapolation:
    """Extrapolate a small layout to ``scale`` by ``rule`` (``stack``, ``stretch`` or ``auto``).

    A pattern (``"AAMMMM"`` or ``"2A4M"``) has no widths of its own and is taken at the target widths
    directly; a spec is first moved to the target widths with its layer options kept (docs/method.md §2.4).
    ``match`` (``params``, ``flops``; ``none`` is the method as published) then resizes the result to the
    Llama baseline's size (``scaling.matching``); FLOPs are counted at ``seq_len`` (default: the
    scale's context).
    """
    if match not in MATCHES:
        raise SpecError(f"match: unknown match {match!r}; valid: {', '.join(MATCHES)}")
    sc = get_scale(scale) if isinstance(scale, str) else scale
    if isinstance(spec_or_pattern, str):
        small = spec_from_pattern(spec_or_pattern, sc)
    else:
        small = at_widths(spec_or_pattern, sc)
    used = choose_rule(rule, small.n_layers)
    llama = llama_spec(sc)
    M, m = _layer_budget(llama), _layer_budget(small)
    if used == "stack":
        layers = stack(small.layers, M, m)
    else:
        layers = stretch(small.layers, Fraction(M, m))
    out = small.replace(layers=layers)
    out = match_spec(out, small.layers, used, M, m, llama, match, seq_len=seq_len,
                     granularity=16 if sc.is_proxy else 64)
    try:
        size, ref = size_of(out, seq_len), size_of(llama, seq_len)
        flops = dict(flops_per_token=size.flops, target_flops_per_token=ref.flops, seq_len=size.seq_len)
    except NotImplementedError:  # a primitive that counts parameters but not FLOPs: no FLOPs reported
        flops = {}
    return Extrapolation(spec=out, source_pattern=small.pattern, scale=sc.name, rule=used, M=M, m=m,
                         target_non_embedding_params=non_embedding_params(llama),
                         non_embedding_params=non_embedding_params(out), match=match, **flops)
