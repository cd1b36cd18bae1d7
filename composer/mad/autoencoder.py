"""MAD's compression decoder (docs/mad_tasks.md §1.3): a position-wise MLP on the pooled encoder code.

For every output position ``p``: ``z_p = e + s_p`` with ``e`` the encoder output at the last input
position and ``s_p`` a fixed sinusoid, then ``RMSNorm -> Linear(d, d) -> GELU -> RMSNorm ->
Linear(d, d) -> GELU -> RMSNorm -> Linear(d, V)``. No residuals, so everything the decoder emits must
pass through the single vector ``e``. Linear weights ~ N(0, 0.02), biases zero, as MAD's AE init.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from primitives import rms_norm

__all__ = ["sinusoid", "init_decoder", "decode"]

_EPS = 1e-5


def sinusoid(length: int, d: int) -> jax.Array:
    """``[length, d]``: dims ``[0, d/2)`` are ``sin(p w_i)``, dims ``[d/2, d)`` are ``cos(p w_i)``,
    ``w_i = 10000^(-i / (d/2 - 1))`` (not interleaved, as MAD)."""
    half = d // 2
    omega = 10000.0 ** (-jnp.arange(half, dtype=jnp.float32) / max(half - 1, 1))
    angles = jnp.arange(length, dtype=jnp.float32)[:, None] * omega[None, :]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


def init_decoder(key: jax.Array, d: int, vocab: int) -> dict[str, jax.Array]:
    k1, k2, k3 = jax.random.split(key, 3)
    normal = lambda k, shape: 0.02 * jax.random.normal(k, shape, jnp.float32)
    return {
        "norm1": jnp.ones((d,)), "w1": normal(k1, (d, d)), "b1": jnp.zeros((d,)),
        "norm2": jnp.ones((d,)), "w2": normal(k2, (d, d)), "b2": jnp.zeros((d,)),
        "norm3": jnp.ones((d,)), "w_out": normal(k3, (d, vocab)), "b_out": jnp.zeros((vocab,)),
    }


def decode(params: dict[str, jax.Array], code: jax.Array, length: int) -> jax.Array:
    """Logits ``[b, length, V]`` (float32) from the code ``[b, d]``."""
    z = code[:, None, :] + sinusoid(length, code.shape[-1])[None]
    z = jax.nn.gelu(rms_norm(z, params["norm1"], _EPS) @ params["w1"] + params["b1"], approximate=False)
    z = jax.nn.gelu(rms_norm(z, params["norm2"], _EPS) @ params["w2"] + params["b2"], approximate=False)
    return rms_norm(z, params["norm3"], _EPS) @ params["w_out"] + params["b_out"]
