"""What every path of every op shares: matmul precision, default scale and state, time padding,
and the reference paths' loop over time.

Each op folder (``ssd``, ``gla``, ``delta``) holds the op's algebra only; its scaffolding lives
here, in :mod:`primitives.ops._chunks` (chunked XLA paths) and :mod:`primitives.ops._pallas`
(Pallas kernels).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

__all__ = ["HIGHEST", "pad_time", "resolve_scale", "scan_time", "zero_state"]

# Every path is checked against the sequential reference at float32 tolerances; TF32 matmuls (the
# default for float32 on GPU) would not meet them. On CPU this changes nothing.
HIGHEST = lax.Precision.HIGHEST


def resolve_scale(scale, dk: int):
    """The factor applied to queries: ``scale`` if given, else ``dk ** -0.5`` (scaled dot product)."""
    return dk**-0.5 if scale is None else scale


def zero_state(b: int, h: int, rows: int, cols: int):
    """A float32 zero state ``[b, h, rows, cols]``, the state before any token."""
    return jnp.zeros((b, h, rows, cols), jnp.float32)


def pad_time(x, multiple: int):
    """Zero-pads axis 1 (time) of ``x`` up to a multiple of ``multiple``.

    Every op is written so that a zero step leaves its state unchanged (zero keys, values or
    ``dt``; zero log decay, i.e. decay 1), so the final state after the padded steps equals the
    state at the last real step; the padded outputs are sliced off by the caller.
    """
    pad = -x.shape[1] % multiple
    if pad == 0:
        return x
    return jnp.pad(x, [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2))


def scan_time(step, xs, initial_state):
    """The reference paths' loop: a ``lax.scan`` of ``step`` over axis 1 (time) of each of ``xs``.

    Args:
        step: ``step(*x_t, state) -> (o_t, new_state)``, one token of the recurrence.
        xs: ``[b, t, ...]`` arrays, sliced at each step into the ``x_t`` handed to ``step``.
        initial_state: the state before the first token; carried in float32.

    Returns:
        ``(o, final_state)``: the stacked ``o_t`` as ``[b, t, ...]`` and the last state.
    """

    def body(state, x_t):
        o_t, state = step(*x_t, state)
        return state, o_t

    time_major = tuple(jnp.moveaxis(x, 1, 0) for x in xs)
    final_state, o = lax.scan(body, initial_state.astype(jnp.float32), time_major)
    return jnp.moveaxis(o, 0, 1), final_state
