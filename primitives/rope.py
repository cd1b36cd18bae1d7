"""Rotary position embedding (Su et al. 2021, RoFormer eq. 34), half-split layout as in Llama."""

import jax
import jax.numpy as jnp

__all__ = ["apply_rope"]


def apply_rope(x: jax.Array, positions: jax.Array, theta: float) -> jax.Array:
    """Rotate ``x`` ``[..., t, k]`` (time second to last, head-major) by absolute ``positions`` ``[t]``.

    The head dim is split in halves (not interleaved); frequencies ``theta^(-2i/k)``.
    Odd head dims leave the last channel unrotated.
    """
    k = x.shape[-1]
    half = k // 2
    freqs = theta ** (-jnp.arange(half, dtype=jnp.float32) * 2.0 / (2 * half))
    angles = positions.astype(jnp.float32)[:, None] * freqs  # [t, half]
    cos, sin = jnp.cos(angles), jnp.sin(angles)
    x32 = x.astype(jnp.float32)
    x1, x2, rest = x32[..., :half], x32[..., half : 2 * half], x32[..., 2 * half :]
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest], axis=-1)
    return out.astype(x.dtype)
