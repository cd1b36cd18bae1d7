"""Pallas kernel bodies for SSD: one program per (batch, head), looping over chunks.

Each program sees its whole sequence as [t, ...] refs and walks it ``chunk`` steps at a time,
keeping the [p, n] state (forward) or its cotangent (backward) in float32 registers/VMEM across the
loop. Within a chunk it uses the quadratic form of Mamba-2 (Dao & Gu 2024, Sec. 6):

    y_i  = sum_{j<=i} exp(g_i - g_j) (C_i . B_j) dt_j x_j  +  exp(g_i) S C_i
    S'   = exp(g_last) S + sum_j exp(g_last - g_j) dt_j x_j B_j^T

with ``g = cumsum(dt * A)`` inside the chunk. The backward is the hand-derived VJP of these two
lines, run over chunks in reverse with the chunk-entry states saved by the forward.
"""

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from primitives.ops._pallas import dot


def _decays(a):
    """Decay factors of one chunk from its log-decays ``a`` [l].

    Returns ``(causal, g, mask_decay, total)``: the [l, l] ``j <= i`` mask, ``g = cumsum(a)``,
    ``exp(g_i - g_j)`` masked to ``j <= i``, and ``sum(a)``. The cumsum is a masked row sum
    because ``cumsum`` does not lower on every Pallas backend.
    """
    l = a.shape[0]
    i = jax.lax.broadcasted_iota(jnp.int32, (l, l), 0)
    j = jax.lax.broadcasted_iota(jnp.int32, (l, l), 1)
    causal = j <= i
    g = jnp.sum(jnp.where(causal, a[None, :], 0.0), axis=1)
    mask_decay = jnp.exp(jnp.where(causal, g[:, None] - g[None, :], -jnp.inf))
    return causal, g, mask_decay, jnp.sum(a)


def _load_chunk(refs, start, chunk):
    f32 = jnp.float32
    return tuple(r[pl.ds(start, chunk)].astype(f32) for r in refs)


def fwd_kernel(x_ref, dt_ref, a_ref, b_ref, c_ref, s0_ref, y_ref, st_ref, *states_ref, chunk):
    """Forward. Block refs: x [t, p], dt/a [t], B/C [t, n], s0 [p, n]; outputs y [t, p],
    final state [p, n] and, when saving residuals for the backward, entry states [nc, p, n]."""
    num_chunks = x_ref.shape[0] // chunk

    def body(ci, state):
        start = pl.multiple_of(ci * chunk, chunk)
        x, dt, a, B, C = _load_chunk((x_ref, dt_ref, a_ref, b_ref, c_ref), start, chunk)
        if states_ref:
            states_ref[0][ci] = state
        _, g, mask_decay, total = _decays(a)
        mix = dot(C, B, (1, 1)) * mask_decay * dt[None, :]  # [l(i), l(j)]
        y = dot(mix, x) + jnp.exp(g)[:, None] * dot(C, state, (1, 1))
        y_ref[pl.ds(start, chunk)] = y.astype(y_ref.dtype)
        to_end = jnp.exp(total - g) * dt  # [l]
        return jnp.exp(total) * state + dot(to_end[:, None] * x, B, (0, 0))

    st_ref[...] = jax.lax.fori_loop(0, num_chunks, body, s0_ref[...].astype(jnp.float32))


def bwd_kernel(
    x_ref,
    dt_ref,
    a_ref,
    b_ref,
    c_ref,
    states_ref,
    dy_ref,
    dst_ref,
    dx_ref,
    ddt_ref,
    da_ref,
    db_ref,
    dc_ref,
    ds0_ref,
    *,
    chunk,
):
    """Backward: the VJP of :func:`fwd_kernel`, chunks in reverse, carrying ``dS``."""
    num_chunks = x_ref.shape[0] // chunk

    def body(step, d_state):
        ci = num_chunks - 1 - step
        start = pl.multiple_of(ci * chunk, chunk)
        x, dt, a, B, C, dy = _load_chunk((x_ref, dt_ref, a_ref, b_ref, c_ref, dy_ref), start, chunk)
        state = states_ref[ci]
        causal, g, mask_decay, total = _decays(a)
        e_in, e_end = jnp.exp(g), jnp.exp(total - g)
        scores = dot(C, B, (1, 1))  # C_i . B_j
        dots = dot(dy, x, (1, 1))  # dy_i . x_j
        inner = mask_decay * scores * dots  # [l(i), l(j)]
        weighted = mask_decay * dots * dt[None, :]
        x_ds = dot(x, d_state)  # [l, n]
        through_state = jnp.sum(x_ds * B, axis=1)  # x_j^T dS B_j

        dx = dot(mask_decay * scores * dt[None, :], dy, (0, 0))
        dx += (e_end * dt)[:, None] * dot(B, d_state, (1, 1))
        dc = dot(weighted, B) + e_in[:, None] * dot(dy, state)
        db = dot(weighted, C, (0, 0)) + (e_end * dt)[:, None] * x_ds
        ddt = jnp.sum(inner, axis=0) + e_end * through_state

        # Cotangent of g (the in-chunk cumsum), then of a through cumsum and total = sum(a).
        to_state = e_end * dt * through_state
        to_out = e_in * jnp.sum(dy * dot(C, state, (1, 1)), axis=1)
        inner_dt = inner * dt[None, :]
        d_g = jnp.sum(inner_dt, axis=1) - jnp.sum(inner_dt, axis=0) + to_out - to_state
        d_total = jnp.exp(total) * jnp.sum(state * d_state) + jnp.sum(to_state)
        da = jnp.sum(jnp.where(causal, d_g[:, None], 0.0), axis=0) + d_total  # reverse cumsum

        for ref, val in ((dx_ref, dx), (ddt_ref, ddt), (da_ref, da), (db_ref, db), (dc_ref, dc)):
            ref[pl.ds(start, chunk)] = val.astype(ref.dtype)
        return jnp.exp(total) * d_state + dot(e_in[:, None] * dy, C, (0, 0))

    d_state = dst_ref[...].astype(jnp.float32)
    ds0_ref[...] = jax.lax.fori_loop(0, num_chunks, body, d_state).astype(ds0_ref.dtype)
