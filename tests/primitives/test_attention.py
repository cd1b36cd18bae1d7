"""Attention-specific behaviour beyond the contract: window bounds, bounded cache, GQA sharing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import primitives
from primitives import Dims
from primitives.rope import apply_rope

DIMS = Dims(d_model=16, n_heads=4, n_kv_heads=2, head_dim=4, d_ffn=32, rope_theta=10_000.0)


def test_window_limits_receptive_field():
    w = 4
    m = primitives.get("W")(DIMS, rngs=nnx.Rngs(0), window=w)
    x = jax.random.normal(jax.random.key(0), (1, 12, 16))
    t = 10
    g = jax.grad(lambda x: jnp.sum(m(x)[:, t] ** 2))(x)
    assert float(jnp.abs(g[:, : t - w + 1]).max()) == 0.0  # older than the window: no influence
    assert float(jnp.abs(g[:, t - w + 1 : t + 1]).min()) > 0.0


def test_window_cache_is_bounded_by_window():
    m = primitives.get("W")(DIMS, rngs=nnx.Rngs(0), window=3)
    assert m.init_state(2, 1000)["k"].shape[2] == 3
    assert primitives.get("W").state_bytes(DIMS, 1000, 2, window=3) == 2 * 3 * 2 * 4 * 2


def test_window_longer_than_sequence_equals_full_attention():
    full = primitives.get("A")(DIMS, rngs=nnx.Rngs(0))
    win = primitives.get("W")(DIMS, rngs=nnx.Rngs(0), window=64)
    x = jax.random.normal(jax.random.key(1), (2, 9, 16))
    np.testing.assert_allclose(np.asarray(win(x)), np.asarray(full(x)), atol=1e-6)


def test_attention_matches_naive_per_head_loop():
    m = primitives.get("A")(DIMS, rngs=nnx.Rngs(3))
    x = jax.random.normal(jax.random.key(2), (1, 7, 16))
    pos = jnp.arange(7)
    q = apply_rope(jnp.einsum("btd,dhk->bhtk", x, m.wq[...]), pos, DIMS.rope_theta)
    k = apply_rope(jnp.einsum("btd,dnk->bntk", x, m.wk[...]), pos, DIMS.rope_theta)
    v = jnp.einsum("btd,dnk->bntk", x, m.wv[...])
    heads = []
    for h in range(4):
        kv = h // 2  # two query heads share each kv head
        s = q[0, h] @ k[0, kv].T / 2.0
        s = jnp.where(jnp.tril(jnp.ones((7, 7), bool)), s, -jnp.inf)
        heads.append(jax.nn.softmax(s, -1) @ v[0, kv])
    o = jnp.stack(heads, 1)  # [t, h, k]
    ref = jnp.einsum("thk,hkd->td", o, m.wo[...])
    np.testing.assert_allclose(np.asarray(m(x)[0]), np.asarray(ref), atol=1e-5)


def test_rope_preserves_norm_and_is_relative():
    x = jax.random.normal(jax.random.key(0), (1, 1, 5, 8))
    r = apply_rope(x, jnp.arange(5), 10_000.0)
    np.testing.assert_allclose(np.linalg.norm(r, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-5)
    q, k = x[:, :, :1], x[:, :, 1:2]
    dot = lambda a, b: float(jnp.sum(apply_rope(q, jnp.array([a]), 1e4) * apply_rope(k, jnp.array([b]), 1e4)))
    assert abs(dot(3, 5) - dot(10, 12)) < 1e-4


# --- the library op (jax.nn.dot_product_attention) against the einsum reference -------------------

from primitives.attention import _attend_library  # noqa: E402
from primitives.attention_core import attend as _attend  # noqa: E402
from primitives.attention_core import attend_causal_blocks, causal_mask  # noqa: E402
from primitives.attention_core import attend_reference as _attend_reference  # noqa: E402


def _reference_mask(t, window):
    pos = jnp.arange(t)
    mask = pos[:, None] >= pos[None, :]
    return mask if window is None else mask & (pos[:, None] - pos[None, :] < window)


@pytest.mark.parametrize("b,n,g,t,k,window", [
    (2, 2, 3, 13, 8, None),   # GQA, 3 query heads per kv head, odd length
    (1, 1, 4, 7, 5, 3),       # MQA, odd head dim, window inside the sequence
    (3, 2, 1, 1, 4, None),    # a single token
    (2, 3, 2, 17, 6, 1),      # window 1: each token sees itself only
    (1, 2, 2, 9, 4, 9),       # window == length: full causal
    (2, 1, 2, 11, 8, 40),     # window longer than the sequence
])
def test_library_and_own_backward_match_reference_forward_and_gradients(b, n, g, t, k, window):
    keys = jax.random.split(jax.random.key(t * 31 + k), 4)
    q = jax.random.normal(keys[0], (b, n, g, t, k))
    kk, v = jax.random.normal(keys[1], (b, n, t, k)), jax.random.normal(keys[2], (b, n, t, k))
    cot = jax.random.normal(keys[3], (b, n, g, t, k))  # a random cotangent probes every output
    mask = _reference_mask(t, window)
    ref = lambda q, kk, v: jnp.sum(_attend_reference(q, kk, v, mask, jnp.float32) * cot)  # noqa: E731
    lib = lambda q, kk, v: jnp.sum(_attend_library(q, kk, v, window, jnp.float32) * cot)  # noqa: E731
    own = lambda q, kk, v: jnp.sum(_attend(q, kk, v, mask, jnp.float32) * cot)  # noqa: E731
    want_out = np.asarray(_attend_reference(q, kk, v, mask, jnp.float32))
    got_out = np.asarray(_attend_library(q, kk, v, window, jnp.float32))
    np.testing.assert_allclose(got_out, want_out, atol=2e-5, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(_attend(q, kk, v, mask, jnp.float32)), want_out, atol=1e-6, rtol=1e-6)
    want = jax.grad(ref, (0, 1, 2))(q, kk, v)
    for got, w in zip(jax.grad(lib, (0, 1, 2))(q, kk, v), want):
        np.testing.assert_allclose(np.asarray(got), np.asarray(w), atol=5e-5, rtol=1e-4)
    for got, w in zip(jax.grad(own, (0, 1, 2))(q, kk, v), want):  # the hand-written backward
        np.testing.assert_allclose(np.asarray(got), np.asarray(w), atol=2e-5, rtol=1e-4)
    for block in (4, t):  # query blocks with an uneven last one (t = 13, 7, 17, 9, 11), and a single block
        blk = lambda q, kk, v, block=block: jnp.sum(attend_causal_blocks(q, kk, v, window, jnp.float32, block) * cot)  # noqa: E731
        got_out = attend_causal_blocks(q, kk, v, window, jnp.float32, block)
        np.testing.assert_allclose(np.asarray(got_out), want_out, atol=1e-6, rtol=1e-5)
        for got, w in zip(jax.jit(jax.grad(blk, (0, 1, 2)))(q, kk, v), want):
            np.testing.assert_allclose(np.asarray(got), np.asarray(w), atol=2e-5, rtol=1e-4)


def test_library_attention_in_bfloat16_stays_close_to_the_float32_reference():
    keys = jax.random.split(jax.random.key(5), 3)
    q = jax.random.normal(keys[0], (2, 2, 2, 19, 16))
    kk, v = jax.random.normal(keys[1], (2, 2, 19, 16)), jax.random.normal(keys[2], (2, 2, 19, 16))
    mask = _reference_mask(19, 6)
    want = _attend_reference(q, kk, v, mask, jnp.float32)
    bf = lambda a: a.astype(jnp.bfloat16)  # noqa: E731
    got = _attend_library(bf(q), bf(kk), bf(v), 6, jnp.bfloat16)
    assert got.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(got, np.float32), np.asarray(want), atol=5e-2)
    # the hand-written backward in bfloat16: cotangents keep the inputs' dtype, values near float32's
    cot = jax.random.normal(jax.random.key(9), q.shape)
    loss = lambda fn, dt: lambda q, kk, v: jnp.sum(fn(q, kk, v, mask, dt).astype(jnp.float32) * cot)  # noqa: E731
    got = jax.grad(loss(_attend, jnp.bfloat16), (0, 1, 2))(bf(q), bf(kk), bf(v))
    for g, w in zip(got, jax.grad(loss(_attend_reference, jnp.float32), (0, 1, 2))(q, kk, v)):
        assert g.dtype == jnp.bfloat16
        np.testing.assert_allclose(np.asarray(g, np.float32), np.asarray(w), atol=0.1, rtol=0.05)
    blocks = lambda q, kk, v: jnp.sum(  # noqa: E731
        attend_causal_blocks(q, kk, v, 6, jnp.bfloat16, 8).astype(jnp.float32) * cot)
    for g, w in zip(jax.grad(blocks, (0, 1, 2))(bf(q), bf(kk), bf(v)), got):  # blocks move bf16 rounding little
        assert g.dtype == jnp.bfloat16
        np.testing.assert_allclose(np.asarray(g, np.float32), np.asarray(w, np.float32), atol=0.05, rtol=0.05)


def test_causal_mask_and_blocks_default():
    pos = jnp.arange(5)
    np.testing.assert_array_equal(np.asarray(causal_mask(pos, pos, None)), np.tril(np.ones((5, 5), bool)))
    lower = np.tril(np.ones((5, 5), bool))
    np.testing.assert_array_equal(np.asarray(causal_mask(pos, pos, 2)), lower & ~np.tril(lower, -2))
    q = jax.random.normal(jax.random.key(2), (1, 1, 2, 300, 4))
    kk = jax.random.normal(jax.random.key(3), (1, 1, 300, 4))
    want = _attend_reference(q, kk, kk, causal_mask(jnp.arange(300), jnp.arange(300), None), jnp.float32)
    got = attend_causal_blocks(q, kk, kk, None, jnp.float32)  # the default block: 4 of 64 queries and one of 44
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6)


@pytest.mark.parametrize("library", [False, True], ids=["cpu-default", "library"])
@pytest.mark.parametrize("name,options", [("A", {}), ("W", {"window": 5})])
def test_layer_output_and_decode_agree_with_the_reference_path(name, options, library, monkeypatch):
    monkeypatch.setattr(primitives.attention, "LIBRARY_ON_CPU", library)
    m = primitives.get(name)(Dims(d_model=24, n_heads=6, n_kv_heads=2, head_dim=4, d_ffn=32, rope_theta=1e4),
                             rngs=nnx.Rngs(4), **options)
    x = jax.random.normal(jax.random.key(6), (2, 11, 24))
    pos = jnp.arange(11)
    q, kk, v = m._qkv(x, pos)
    want = m._out(_attend_reference(q, kk, v, _reference_mask(11, options.get("window")), jnp.float32))
    np.testing.assert_allclose(np.asarray(m(x)), np.asarray(want), atol=1e-5)
    state, outs = m.init_state(2, 11), []
    for i in range(11):  # the decode cache (reference path) reproduces the parallel forward
        y, state = m.step(x[:, i:i + 1], state, jnp.int32(i))
        outs.append(y)
    np.testing.assert_allclose(np.asarray(jnp.concatenate(outs, 1)), np.asarray(m(x)), atol=1e-5)
