"""Chunk plumbing shared by the chunked XLA paths of every op (SSD, GLA, gated delta rule)."""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

__all__ = ["HIGHEST", "mm", "load_chunk", "store_chunk", "chunk_loop"]

# The paths are checked against the sequential reference at float32 tolerances; TF32 matmuls
# (the default for float32 on GPU) would not meet them. On CPU this changes nothing.
HIGHEST = lax.Precision.HIGHEST


def mm(spec, a, b):
    """Float32-accumulating einsum at full precision."""
    return jnp.einsum(spec, a, b, precision=HIGHEST, preferred_element_type=jnp.float32)


def load_chunk(x, c, l):
    """Chunk ``c`` of a [b, t, h, ...] array as a [b, h, l, ...] tile."""
    return jnp.moveaxis(lax.dynamic_slice_in_dim(x, c * l, l, axis=1), 2, 1)


def store_chunk(buf, x, c, l):
    """Writes the [b, h, l, ...] tile ``x`` into chunk ``c`` of the [b, t, h, ...] ``buf``."""
    return lax.dynamic_update_slice_in_dim(buf, jnp.moveaxis(x, 1, 2), c * l, axis=1)


def chunk_loop(n, l, arrays, body, init, reverse=False):
    """``fori_loop`` over the ``n`` chunks of ``arrays`` [b, t, h, ...], the last first if ``reverse``.

    ``body(c, tiles, carry) -> carry`` gets chunk ``c``'s [b, h, l, ...] tiles. They are loaded one
    iteration ahead and handed over through the loop carry, which makes them materialised buffers:
    a tile loaded and consumed in the same iteration gets its [b, l, h] -> [b, h, l] transpose
    fused into its elementwise consumers, which XLA:CPU compiles to slow strided code.
    """
    chunk = (lambda i: n - 1 - i) if reverse else (lambda i: i)

    def step(i, state):
        tiles, carry = state
        following = tuple(load_chunk(x, chunk(jnp.minimum(i + 1, n - 1)), l) for x in arrays)
        return following, body(chunk(i), tiles, carry)

    first = tuple(load_chunk(x, chunk(0), l) for x in arrays)
    return lax.fori_loop(0, n, step, (first, init))[1]
