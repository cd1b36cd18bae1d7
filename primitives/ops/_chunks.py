"""Chunk plumbing shared by the chunked XLA paths of every op (SSD, GLA, gated delta rule).

An op's chunked path supplies only its per-chunk algebra, ``chunk_fn(*tiles, state) -> (o, state)``
(optionally with a hand-derived ``chunk_vjp``); :func:`chunked_recurrence` turns that into the
loop over chunks with a ``custom_vjp``: the forward saves the state entering each chunk, and the
backward walks the chunks in reverse, recomputing one chunk at a time and pulling the cotangents
back through it. That is the chunkwise-parallel form shared by Mamba-2 (Dao & Gu 2024, Sec. 6),
GLA (Yang et al. 2024, Sec. 4) and DeltaNet (Yang et al. 2024): state passed between chunks,
matmuls inside them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from primitives.ops._common import HIGHEST

__all__ = ["mm", "load_chunk", "store_chunk", "chunk_loop", "chunked_recurrence"]


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


def _autodiff_vjp(chunk_fn):
    """The chunk VJP by ``jax.vjp`` of ``chunk_fn``, for ops without a hand-derived one."""

    def chunk_vjp(tiles, state, cotangents):
        return jax.vjp(chunk_fn, *tiles, state)[1](cotangents)

    return chunk_vjp


def _forward(chunk_fn, l, xs, s0, save_states):
    n = xs[0].shape[1] // l
    # The output's shape from one chunk's (b, h, l, ...) -> the whole (b, t, h, ...).
    tiles = [jax.ShapeDtypeStruct((x.shape[0], x.shape[2], l, *x.shape[3:]), x.dtype) for x in xs]
    o_c = jax.eval_shape(chunk_fn, *tiles, s0)[0]
    o = jnp.zeros((o_c.shape[0], xs[0].shape[1], o_c.shape[1], *o_c.shape[3:]), o_c.dtype)

    def body(c, tiles, carry):
        state, o, states = carry
        if save_states:
            states = lax.dynamic_update_index_in_dim(states, state, c, 0)
        o_c, state = chunk_fn(*tiles, state)
        return state, store_chunk(o, o_c, c, l), states

    states = jnp.zeros((n if save_states else 0, *s0.shape), jnp.float32)
    final, o, states = chunk_loop(n, l, xs, body, (s0, o, states))
    return o, final, states


def _backward(chunk_vjp, l, xs, states, do, d_final):
    n = xs[0].shape[1] // l

    def body(c, tiles, carry):
        d_state, *bufs = carry  # d_state: cotangent of the state leaving chunk c
        *tiles, do_c = tiles
        state = lax.dynamic_index_in_dim(states, c, 0, keepdims=False)
        *grads, d_state = chunk_vjp(tuple(tiles), state, (do_c, d_state))
        bufs = tuple(store_chunk(buf, grad, c, l) for buf, grad in zip(bufs, grads))
        return (d_state, *bufs)

    zeros = tuple(jnp.zeros_like(x) for x in xs)
    d_s0, *grads = chunk_loop(n, l, (*xs, do), body, (d_final, *zeros), reverse=True)
    return (*grads, d_s0)


def chunked_recurrence(chunk_fn, chunk_vjp=None):
    """The chunked path of a recurrence, as ``core(l, *xs, s0) -> (o, final_state)`` with a custom VJP.

    Args:
        chunk_fn: ``chunk_fn(*tiles, state) -> (o_c, new_state)``: one chunk's [b, h, l, ...]
            tiles of ``xs`` and the state entering it -> its [b, h, l, ...] outputs and the state
            leaving it.
        chunk_vjp: ``chunk_vjp(tiles, state, (do_c, d_new_state)) -> (*d_tiles, d_state)``, the
            chunk's VJP; defaults to ``jax.vjp`` of ``chunk_fn``.

    Returns:
        ``core(l, *xs, s0)``: float32 [b, t, h, ...] inputs with ``t`` a multiple of the static
        chunk length ``l`` and the float32 initial state -> ``(o [b, t, h, ...], final state)``.
        Its backward keeps one state per chunk, not every intermediate of every chunk as autodiff
        through the loop would.
    """
    chunk_vjp = chunk_vjp or _autodiff_vjp(chunk_fn)

    @functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
    def core(l, *args):
        o, final, _ = _forward(chunk_fn, l, args[:-1], args[-1], save_states=False)
        return o, final

    def core_fwd(l, *args):
        xs = args[:-1]
        o, final, states = _forward(chunk_fn, l, xs, args[-1], save_states=True)
        return (o, final), (xs, states)

    def core_bwd(l, residuals, cotangents):
        xs, states = residuals
        return _backward(chunk_vjp, l, xs, states, *cotangents)

    core.defvjp(core_fwd, core_bwd)
    return core
