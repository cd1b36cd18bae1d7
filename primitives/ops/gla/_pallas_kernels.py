"""Pallas kernel bodies for GLA, forward and backward; ``pallas.py`` lays out inputs and calls them.

One program handles one (batch, head) and walks its sequence chunk by chunk. Refs hold that
sequence in kernel layout: q, k, g as [tp, k], v, o, do as [tp, v], states transposed as [v, k]
(so the per-key-channel decay broadcasts along the minor axis). ``g`` is the cumulative log-gate
``G`` measured from each chunk's start. Every exponent is ``<= 0``: intra-chunk decays are built
one key column ``j`` at a time as ``exp(G_i - G_j)`` with the exponent masked to 0 for ``i < j``.
"""

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from primitives.ops._pallas import dot, dot_nt, dot_tn

_F32 = jnp.float32


def _load_chunk(refs, start, c, scale):
    """Float32 (scaled q, k, v, g) of the chunk at ``start`` and ``G`` at its last step [1, k]."""
    q_ref, k_ref, v_ref, g_ref = refs
    span = pl.ds(start, c)
    q = q_ref[span, :].astype(_F32) * scale
    k, v = k_ref[span, :].astype(_F32), v_ref[span, :].astype(_F32)
    return q, k, v, g_ref[span, :], g_ref[pl.ds(start + c - 1, 1), :]


def _key_decay(k_ref, g_ref, start, j, g):
    """Row ``j`` of the chunk's keys [1, k] and its decays ``exp(G_i - G_j)`` [c, k] (1 for i < j)."""
    k_j = k_ref[pl.ds(start + j, 1), :].astype(_F32)
    g_j = g_ref[pl.ds(start + j, 1), :]
    rows = jax.lax.broadcasted_iota(jnp.int32, g.shape, 0)
    return k_j, jnp.exp(jnp.where(rows >= j, g - g_j, 0.0))


def fwd_kernel(q_ref, k_ref, v_ref, g_ref, s0_ref, o_ref, s_ref, *starts_ref, scale, chunk):
    """Forward; with a ``starts_ref`` [n * v, k] it also saves each chunk's entering state."""
    c = chunk
    rows = jax.lax.broadcasted_iota(jnp.int32, (c, c), 0)
    cols = jax.lax.broadcasted_iota(jnp.int32, (c, c), 1)
    dv = s0_ref.shape[0]

    def chunk_step(i, state_t):
        start = pl.multiple_of(i * c, c)
        if starts_ref:
            starts_ref[0][pl.ds(i * dv, dv), :] = state_t
        q, k, v, g, g_last = _load_chunk((q_ref, k_ref, v_ref, g_ref), start, c, scale)

        def column(j, scores):
            k_j, decay = _key_decay(k_ref, g_ref, start, j, g)
            score_j = jnp.sum(q * decay * k_j, axis=1, keepdims=True)  # [c, 1]
            return scores + jnp.where(cols == j, score_j, 0.0)

        scores = jax.lax.fori_loop(0, c, column, jnp.zeros((c, c), _F32))
        scores = jnp.where(rows >= cols, scores, 0.0)
        o = dot(scores, v) + dot_nt(q * jnp.exp(g), state_t)
        o_ref[pl.ds(start, c), :] = o.astype(o_ref.dtype)
        return state_t * jnp.exp(g_last) + dot_tn(v, k * jnp.exp(g_last - g))

    n_chunks = q_ref.shape[0] // c
    s_ref[...] = jax.lax.fori_loop(0, n_chunks, chunk_step, s0_ref[...].astype(_F32))


def bwd_kernel(
    q_ref, k_ref, v_ref, g_ref, starts_ref, do_ref, ds_ref,
    dq_ref, dk_ref, dv_ref, ds0_ref, *, scale, chunk,
):  # fmt: skip
    """Backward for q, k, v and the initial state, walking chunks last to first.

    With ``A_ij = sum_k q_ik k_jk exp(G_ik - G_jk)`` (``j <= i``), ``dA = mask(do @ v.T)`` and
    ``dS`` the cotangent of the state leaving the chunk (``S`` the one entering it):

        dq_i = exp(G_i) * (S do_i) + sum_{j <= i} dA_ij k_j * exp(G_i - G_j)
        dk_j = exp(G_c - G_j) * (dS v_j) + sum_{i >= j} dA_ij q_i * exp(G_i - G_j)
        dv   = A.T @ do + (k * exp(G_c - G)) @ dS
        dS_entering = exp(G_c) * dS + (q * exp(G)).T @ do

    The log-gate gradient is left to the caller, which derives it from dq and dk.
    """
    c = chunk
    rows = jax.lax.broadcasted_iota(jnp.int32, (c, c), 0)
    cols = jax.lax.broadcasted_iota(jnp.int32, (c, c), 1)
    row_ids = jax.lax.broadcasted_iota(jnp.int32, (c, 1), 0)
    dv_size = ds_ref.shape[0]
    n_chunks = q_ref.shape[0] // c

    def chunk_step(r, dstate_t):
        i = n_chunks - 1 - r
        start = pl.multiple_of(i * c, c)
        span = pl.ds(start, c)
        q, k, v, g, g_last = _load_chunk((q_ref, k_ref, v_ref, g_ref), start, c, scale)
        do = do_ref[span, :].astype(_F32)
        state_t = starts_ref[pl.ds(i * dv_size, dv_size), :]
        d_scores = jnp.where(rows >= cols, dot_nt(do, v), 0.0)

        def column(j, carry):
            scores, dq, dk = carry
            k_j, decay = _key_decay(k_ref, g_ref, start, j, g)
            in_col = cols == j
            scores += jnp.where(in_col, jnp.sum(q * decay * k_j, axis=1, keepdims=True), 0.0)
            d_score_j = jnp.sum(jnp.where(in_col, d_scores, 0.0), axis=1, keepdims=True)  # [c, 1]
            dq += d_score_j * decay * k_j
            dk_j = jnp.sum(d_score_j * decay * q, axis=0, keepdims=True)  # [1, k]
            dk += jnp.where(row_ids == j, dk_j, 0.0)
            return scores, dq, dk

        zeros = (jnp.zeros((c, c), _F32), jnp.zeros_like(q), jnp.zeros_like(k))
        scores, dq, dk = jax.lax.fori_loop(0, c, column, zeros)
        scores = jnp.where(rows >= cols, scores, 0.0)
        to_end = jnp.exp(g_last - g)
        dq += jnp.exp(g) * dot(do, state_t)
        dk += to_end * dot(v, dstate_t)
        dv = dot_tn(scores, do) + dot_nt(k * to_end, dstate_t)
        dq_ref[span, :] = dq * scale
        dk_ref[span, :] = dk
        dv_ref[span, :] = dv
        return dstate_t * jnp.exp(g_last) + dot_tn(do, q * jnp.exp(g))

    ds0_ref[...] = jax.lax.fori_loop(0, n_chunks, chunk_step, ds_ref[...].astype(_F32))
