"""Attention-specific behaviour beyond the contract: window bounds, bounded cache, GQA sharing."""

import jax
import jax.numpy as jnp
import numpy as np
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
