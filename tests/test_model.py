"""The NNX model: assembly from a spec, cached decoding, generation, precision."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from composer.model import LM, generate
from composer.presets import spec_from_pattern


@pytest.fixture(scope="module")
def model():
    spec = spec_from_pattern("AMWM", "proxy", layer_options={"W": {"window": 4}}, tie_embeddings=False)
    return LM(spec, rngs=nnx.Rngs(0))


def _tokens(b=2, t=10, seed=0):
    return jax.random.randint(jax.random.key(seed), (b, t), 0, 256)


def test_logits_shape_and_dtype(model):
    logits = model(_tokens())
    assert logits.shape == (2, 10, 256) and logits.dtype == jnp.float32
    assert model.layers[2].prim.window == 4


def test_model_decode_equals_parallel(model):
    tok = _tokens()
    full = model(tok)
    state = model.init_state(2, 10)
    outs = []
    for t in range(10):
        o, state = model.step(tok[:, t : t + 1], state, jnp.int32(t))
        outs.append(o)
    np.testing.assert_allclose(np.asarray(jnp.concatenate(outs, 1)), np.asarray(full), atol=1e-4)


def test_greedy_generation_equals_uncached_argmax(model):
    prompt = _tokens(t=5, seed=3)
    new = generate(model, prompt, 6)
    seq = prompt
    for _ in range(6):
        nxt = jnp.argmax(model(seq)[:, -1], -1)[:, None].astype(seq.dtype)
        seq = jnp.concatenate([seq, nxt], 1)
    np.testing.assert_array_equal(np.asarray(new), np.asarray(seq[:, 5:]))


def test_sampling_is_seeded(model):
    prompt = _tokens(t=3, seed=4)
    a = generate(model, prompt, 5, temperature=1.0, key=jax.random.key(7))
    b = generate(model, prompt, 5, temperature=1.0, key=jax.random.key(7))
    c = generate(model, prompt, 5, temperature=1.0, key=jax.random.key(8))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert a.shape == (2, 5) and not np.array_equal(np.asarray(a), np.asarray(c))


def test_bf16_model_runs_close_to_fp32():
    spec = spec_from_pattern("AM", "proxy")
    m32 = LM(spec, rngs=nnx.Rngs(0))
    m16 = LM(spec, rngs=nnx.Rngs(0), dtype=jnp.bfloat16)
    tok = _tokens()
    l32, l16 = m32(tok), m16(tok)
    assert l16.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(l16)))
    assert float(jnp.abs(l16 - l32).max()) < 0.05 * float(jnp.abs(l32).max()) + 1e-3
    assert m16.embed[...].dtype == jnp.float32  # parameters stay fp32


def test_tied_embeddings_share_the_matrix():
    spec = spec_from_pattern("M", "proxy")
    m = LM(spec, rngs=nnx.Rngs(0))
    assert not hasattr(m, "lm_head")
    h = m.embed_tokens(_tokens())
    for layer in m.layers:
        h = layer(h)
    expected = m.final_norm(h) @ m.embed[...].T
    np.testing.assert_allclose(np.asarray(m(_tokens())), np.asarray(expected), atol=1e-4)
