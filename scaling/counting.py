"""Analytic cost accounting for an ``ArchSpec``: parameters, FLOPs and decode-state bytes.

Pure functions over the spec; every per-layer number comes from the primitive's own class methods,
so a new primitive is counted correctly without touching this file. Conventions:
- FLOPs count 2 per multiply-add; forward FLOPs per token at context ``seq_len`` average over the
  positions of one causal sequence of that length; training = 3 x forward (backward = 2 x forward,
  Kaplan et al. 2020 §2.1). The LM head is counted; embedding lookups, norms and softmax are not.
- Parameters: each layer carries one RMSNorm gain (``d``), plus the final norm; embeddings are
  ``vocab * d`` (twice when untied).
"""

from __future__ import annotations

import dataclasses

import primitives
from composer.errors import lookup
from composer.spec import ArchSpec, LayerSpec

__all__ = [
    "layer_params", "embedding_params", "non_embedding_params", "total_params",
    "flops_per_token", "training_flops_per_token", "state_bytes_per_sequence",
    "state_bytes_per_token", "primitive_counts", "CostReport", "cost_report", "DTYPE_BYTES",
]

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "int8": 1, "fp8": 1}


def _prim(layer: LayerSpec):
    return primitives.get(layer.primitive)


def _dtype_bytes(dtype: str | int) -> int:
    if isinstance(dtype, int):
        return dtype
    return lookup(DTYPE_BYTES, dtype, field="dtype", what="dtype", error=ValueError)


def layer_params(spec: ArchSpec, layer: LayerSpec) -> int:
    """Parameters of one layer: its primitive plus the pre-norm gain."""
    return _prim(layer).param_count(spec.dims, **layer.option_dict) + spec.d_model


def embedding_params(spec: ArchSpec) -> int:
    return spec.vocab_size * spec.d_model * (1 if spec.tie_embeddings else 2)


def non_embedding_params(spec: ArchSpec) -> int:
    return sum(layer_params(spec, l) for l in spec.layers) + spec.d_model


def total_params(spec: ArchSpec) -> int:
    return non_embedding_params(spec) + embedding_params(spec)


def flops_per_token(spec: ArchSpec, seq_len: int | None = None) -> int:
    """Forward FLOPs per token at context length ``seq_len`` (default: ``spec.max_seq_len``)."""
    t = spec.max_seq_len if seq_len is None else seq_len
    layers = sum(_prim(l).flops_per_token(spec.dims, t, **l.option_dict) for l in spec.layers)
    return layers + 2 * spec.d_model * spec.vocab_size


def training_flops_per_token(spec: ArchSpec, seq_len: int | None = None) -> int:
    return 3 * flops_per_token(spec, seq_len)


def state_bytes_per_sequence(spec: ArchSpec, seq_len: int | None = None, dtype: str | int = "bfloat16") -> int:
    """KV-cache plus recurrent-state bytes to decode one sequence of ``seq_len`` tokens."""
    t = spec.max_seq_len if seq_len is None else seq_len
    nbytes = _dtype_bytes(dtype)
    return sum(_prim(l).state_bytes(spec.dims, t, nbytes, **l.option_dict) for l in spec.layers)


def state_bytes_per_token(spec: ArchSpec, seq_len: int | None = None, dtype: str | int = "bfloat16") -> float:
    """Cache/state bytes per token of context, i.e. per-sequence bytes divided by ``seq_len``."""
    t = spec.max_seq_len if seq_len is None else seq_len
    return state_bytes_per_sequence(spec, t, dtype) / t


def primitive_counts(spec: ArchSpec) -> dict[str, int]:
    """Shorthand -> number of layers, in order of first appearance."""
    counts: dict[str, int] = {}
    for ch in spec.pattern:
        counts[ch] = counts.get(ch, 0) + 1
    return counts


@dataclasses.dataclass(frozen=True)
class CostReport:
    """Every cost of a spec at one context length and cache dtype."""

    params: int
    embedding_params: int
    non_embedding_params: int
    flops_per_token: int
    training_flops_per_token: int
    kv_cache_bytes_per_token: float
    kv_cache_bytes_per_sequence: int
    seq_len: int
    cache_dtype: str


def cost_report(spec: ArchSpec, seq_len: int | None = None, dtype: str = "bfloat16") -> CostReport:
    t = spec.max_seq_len if seq_len is None else seq_len
    if t < 1:
        raise ValueError(f"seq_len: must be >= 1, got {t}")
    return CostReport(
        params=total_params(spec), embedding_params=embedding_params(spec),
        non_embedding_params=non_embedding_params(spec), flops_per_token=flops_per_token(spec, t),
        training_flops_per_token=training_flops_per_token(spec, t),
        kv_cache_bytes_per_token=state_bytes_per_token(spec, t, dtype),
        kv_cache_bytes_per_sequence=state_bytes_per_sequence(spec, t, dtype), seq_len=t, cache_dtype=dtype,
    )
