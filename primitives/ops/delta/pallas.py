"""Gated delta rule as a Pallas kernel: one program per (batch, head), chunks looped inside.

The forward is the chunked algorithm of :mod:`primitives.ops.delta.chunked` (WY/UT form, Yang et
al. 2024; gate decay of Gated DeltaNet, Yang et al. 2025), with the ``[k, v]`` state carried in
registers across a ``fori_loop`` over chunks. The unit lower-triangular inverse (UT transform) is
the matmul-only recursive block inversion shared with the chunked path; it beats forward
substitution in a ``fori_loop`` (``c`` dependent steps) and needs no dynamic row indexing.

Backward: **not** a Pallas kernel. ``jax.custom_vjp`` recomputes the forward through the chunked XLA
path and differentiates that (``jax.vjp`` of :func:`gated_delta_chunked`), so gradients cost one
chunked forward plus its reverse pass.

On CPU the kernel runs in Pallas interpret mode, so the same code is tested without an accelerator.
Head dims are zero-padded to powers of two (at least 16, as Triton block shapes need) unless
``BlockSizes.pad_features=False``; zero rows and columns leave the results unchanged up to the
order of float32 sums, so the padding is kept on CPU too, where the results were validated with it.
"""

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from primitives.ops import _pallas as pk
from primitives.ops._common import resolve_scale, zero_state
from primitives.ops._pallas import BlockSizes, dot, dot_nt, dot_tn
from primitives.ops.delta.chunked import gated_delta_chunked, unit_lower_inverse

__all__ = ["BlockSizes", "gated_delta_pallas"]


def _kernel(q_ref, k_ref, v_ref, beta_ref, gcum_ref, s0_ref, o_ref, s_ref, *, chunk, scale):
    """One (batch, head): refs are ``[t, k]``, ``[t, v]``, ``[t]`` and ``[k, v]``.

    ``gcum_ref`` holds the chunk-local cumulative log decay, computed outside the kernel.
    """
    c = chunk
    rows = jax.lax.broadcasted_iota(jnp.int32, (c, c), 0)
    cols = jax.lax.broadcasted_iota(jnp.int32, (c, c), 1)
    causal, strict = rows >= cols, rows > cols

    def body(i, state):
        start = pl.multiple_of(i * c, c)
        span = pl.ds(start, c)
        q = q_ref[span, :].astype(jnp.float32) * scale
        k = k_ref[span, :].astype(jnp.float32)
        v = v_ref[span, :].astype(jnp.float32)
        beta = beta_ref[span]
        big_g = gcum_ref[span]
        g_end = gcum_ref[pl.ds(start + c - 1, 1)]
        decay = jnp.exp(jnp.where(causal, big_g[:, None] - big_g[None, :], -jnp.inf))
        a = jnp.where(strict, beta[:, None] * decay * dot_nt(k, k), 0.0)
        t_inv = unit_lower_inverse(a)
        u = dot(t_inv, beta[:, None] * v)
        w = dot(t_inv, (beta * jnp.exp(big_g))[:, None] * k)
        delta = u - dot(w, state)
        attn = jnp.where(causal, decay * dot_nt(q, k), 0.0)
        o = dot(jnp.exp(big_g)[:, None] * q, state) + dot(attn, delta)
        o_ref[span, :] = o.astype(o_ref.dtype)
        k_to_end = jnp.exp(g_end - big_g)[:, None] * k
        return jnp.exp(g_end)[:, None] * state + dot_tn(k_to_end, delta)

    n_chunks = q_ref.shape[0] // c
    s_ref[...] = jax.lax.fori_loop(0, n_chunks, body, s0_ref[...].astype(jnp.float32))


def _pallas_forward(q, k, v, beta, g, s0, scale, block_sizes):
    b, t, h, dk = k.shape
    dv = v.shape[-1]
    c = block_sizes.chunk
    dkp, dvp = pk.feature_sizes(block_sizes, dk, dv, pad_on_cpu=True)  # see the module docstring
    qh, kh = pk.to_kernel_layout(q, c, dkp), pk.to_kernel_layout(k, c, dkp)
    vh = pk.to_kernel_layout(v, c, dvp)
    beta = pk.to_kernel_layout(beta.astype(jnp.float32), c)
    gcum = jnp.swapaxes(pk.chunk_cumsum(g, c), 1, 2)
    s0 = pk.pad_trailing(s0.astype(jnp.float32), dkp, dvp)
    tp = qh.shape[2]
    spec = pk.program_spec
    o, state = pk.program_call(
        functools.partial(_kernel, chunk=c, scale=scale),
        out_shape=(pk.struct(b, h, tp, dvp, dtype=q.dtype), pk.struct(b, h, dkp, dvp)),
        grid=(b, h),
        in_specs=[spec(tp, dkp), spec(tp, dkp), spec(tp, dvp), spec(tp), spec(tp), spec(dkp, dvp)],
        out_specs=(spec(tp, dvp), spec(dkp, dvp)),
        name="gated_delta_fwd",
    )(qh, kh, vh, beta, gcum, s0)
    return pk.from_kernel_layout(o, t, dv), state[:, :, :dk, :dv]


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7))
def _gated_delta(q, k, v, beta, g, s0, scale, block_sizes):
    return _pallas_forward(q, k, v, beta, g, s0, scale, block_sizes)


def _gated_delta_fwd(q, k, v, beta, g, s0, scale, block_sizes):
    return _pallas_forward(q, k, v, beta, g, s0, scale, block_sizes), (q, k, v, beta, g, s0)


def _gated_delta_bwd(scale, block_sizes, residuals, cotangents):
    chunked = functools.partial(gated_delta_chunked, scale=scale, chunk_size=block_sizes.chunk)
    _, vjp = jax.vjp(chunked, *residuals)
    return vjp(cotangents)


_gated_delta.defvjp(_gated_delta_fwd, _gated_delta_bwd)


def gated_delta_pallas(q, k, v, beta, g, initial_state=None, scale=None, block_sizes=None):
    """The gated delta rule with a Pallas forward and a recomputed chunked-XLA backward.

    Args:
        q, k: ``[b, t, h, k]``; v: ``[b, t, h, v]``; beta, g: ``[b, t, h]``.
        initial_state: ``[b, h, k, v]``, or None for zeros.
        scale: query scale (a Python float); defaults to ``k ** -0.5``.
        block_sizes: kernel tiling, a :class:`BlockSizes`; defaults to ``BlockSizes()``.

    Returns:
        ``(o, final_state)``: ``o`` is ``[b, t, h, v]`` in ``q``'s dtype, ``final_state`` is
        ``[b, h, k, v]`` float32.
    """
    b, _, h, dk = k.shape
    scale = float(resolve_scale(scale, dk))
    if initial_state is None:
        initial_state = zero_state(b, h, dk, v.shape[-1])
    block_sizes = block_sizes or BlockSizes()
    return _gated_delta(q, k, v, beta, g, initial_state.astype(jnp.float32), scale, block_sizes)
