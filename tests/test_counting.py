"""Cost accounting against instantiated models and published Llama-3.2 / 3.1 parameter counts."""

import jax
import numpy as np
import pytest
from flax import nnx

from composer.model import LM
from composer.presets import llama_spec, spec_from_pattern
from composer.spec import ArchSpec
from scaling import counting


@pytest.mark.parametrize("pattern", ["AM", "AAMMMM", "WMAM"])
@pytest.mark.parametrize("tie", [True, False])
def test_counts_match_instantiated_model(pattern, tie):
    spec = spec_from_pattern(pattern, "proxy", tie_embeddings=tie, layer_options={"W": {"window": 8}})
    model = LM(spec, rngs=nnx.Rngs(0))
    leaves = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
    assert counting.total_params(spec) == leaves
    assert counting.embedding_params(spec) == spec.vocab_size * spec.d_model * (1 if tie else 2)


def test_llama_3_2_1b_published_count():
    # Llama-3.2-1B: 1,235,814,400 parameters (tied embeddings, 16 blocks).
    assert counting.total_params(llama_spec("1B")) == 1_235_814_400


def test_llama_3_2_3b_published_count():
    # Llama-3.2-3B ships 24 heads of 128 (the scale table uses 32 x 96): 3,212,749,824 parameters.
    spec = llama_spec("3B").replace(n_heads=24, head_dim=128)
    assert counting.total_params(spec) == 3_212_749_824


def test_llama_3_1_8b_published_count():
    # Llama-3.1-8B has untied embeddings: 8,030,261,248 parameters.
    assert counting.total_params(llama_spec("8B").replace(tie_embeddings=False)) == 8_030_261_248


@pytest.mark.parametrize("scale, billions", [("100M", 0.10), ("350M", 0.35), ("1B", 0.97), ("3B", 2.78), ("8B", 7.0)])
def test_scale_table_non_embedding(scale, billions):
    assert counting.non_embedding_params(llama_spec(scale)) / 1e9 == pytest.approx(billions, rel=0.04)


def test_kv_cache_bytes_llama_1b():
    spec = llama_spec("1B")
    # 16 attention layers x (K and V) x 8 kv heads x 64 dims x 2 bytes = 32 KiB per token.
    assert counting.state_bytes_per_token(spec, 4096, "bfloat16") == 16 * 2 * 8 * 64 * 2
    assert counting.state_bytes_per_sequence(spec, 4096, "float32") == 4096 * 16 * 2 * 8 * 64 * 4


def test_flops_per_token_formula():
    spec = spec_from_pattern("AM", "proxy")
    d, f, v, h, k, t = spec.d_model, spec.d_ffn, spec.vocab_size, spec.n_heads, spec.head_dim, 32
    attn_proj = 2 * (2 * d * h * k + 2 * d * spec.n_kv_heads * k)
    attn_mix = 4 * h * k * (t + 1) / 2
    expected = attn_proj + attn_mix + 2 * 3 * d * f + 2 * d * v
    assert counting.flops_per_token(spec, t) == round(expected)
    assert counting.training_flops_per_token(spec, t) == 3 * counting.flops_per_token(spec, t)


def test_fewer_attention_layers_mean_smaller_cache():
    llama = spec_from_pattern("AMAMAM", "1B")
    composite = spec_from_pattern("AAMMMM", "1B")
    assert counting.state_bytes_per_token(composite) < counting.state_bytes_per_token(llama)
    assert counting.primitive_counts(composite) == {"A": 2, "M": 4}


def test_window_bounds_cache():
    spec = spec_from_pattern("W", "1B", layer_options={"W": {"window": 128}})
    assert counting.state_bytes_per_sequence(spec, 4096) == counting.state_bytes_per_sequence(spec, 128)


def test_bad_dtype_is_named():
    with pytest.raises(ValueError, match="dtype"):
        counting.state_bytes_per_token(spec_from_pattern("A", "proxy"), 8, "float8_e9")


def test_spec_roundtrip_preserves_costs():
    spec = llama_spec("350M")
    assert counting.cost_report(ArchSpec.from_json(spec.to_json())) == counting.cost_report(spec)
