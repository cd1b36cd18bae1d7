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
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from primitives.ops.delta.chunked import gated_delta_chunked, unit_lower_inverse

_HIGHEST = jax.lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class BlockSizes:
    """Tiling of the gated delta kernel."""

    chunk: int = 64
    """Tokens per chunk (the side of the in-kernel triangular inverse); time pads to a multiple."""


def _mm(x, y):
    """``x @ y`` in fp32."""
    return jax.lax.dot_general(x, y, (((1,), (0,)), ((), ())), precision=_HIGHEST)


def _mm_nt(x, y):
    """``x @ y^T`` in fp32."""
    return jax.lax.dot_general(x, y, (((1,), (1,)), ((), ())), precision=_HIGHEST)


def _mm_tn(x, y):
    """``x^T @ y`` in fp32."""
    return jax.lax.dot_general(x, y, (((0,), (0,)), ((), ())), precision=_HIGHEST)


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
        a = jnp.where(strict, beta[:, None] * decay * _mm_nt(k, k), 0.0)
        t_inv = unit_lower_inverse(a)
        u = _mm(t_inv, beta[:, None] * v)
        w = _mm(t_inv, (beta * jnp.exp(big_g))[:, None] * k)
        delta = u - _mm(w, state)
        attn = jnp.where(causal, decay * _mm_nt(q, k), 0.0)
        o = _mm(jnp.exp(big_g)[:, None] * q, state) + _mm(attn, delta)
        o_ref[span, :] = o.astype(o_ref.dtype)
        k_to_end = jnp.exp(g_end - big_g)[:, None] * k
        return jnp.exp(g_end)[:, None] * state + _mm_tn(k_to_end, delta)

    n_chunks = q_ref.shape[0] // c
    s_ref[...] = jax.lax.fori_loop(0, n_chunks, body, s0_ref[...].astype(jnp.float32))


def _pow2(n):
    return 1 << max(n - 1, 0).bit_length()


def _heads_major(x, t_pad, d_pad):
    """``[b, t, h, d]`` -> ``[b, h, t_pad, d_pad]``, zero-padded (exact: zero rows do nothing)."""
    x = jnp.pad(x, [(0, 0), (0, t_pad - x.shape[1]), (0, 0), (0, d_pad - x.shape[3])])
    return jnp.transpose(x, (0, 2, 1, 3))


def _pallas_forward(q, k, v, beta, g, s0, scale, block):
    b, t, h, dk = k.shape
    dv = v.shape[-1]
    c = block.chunk
    tp = -(-t // c) * c
    # Head dims padded to powers of two (Triton block shapes); zero rows/columns stay zero.
    dkp, dvp = _pow2(dk), _pow2(dv)
    qh, kh = _heads_major(q, tp, dkp), _heads_major(k, tp, dkp)
    vh = _heads_major(v, tp, dvp)
    beta = jnp.pad(beta.astype(jnp.float32), [(0, 0), (0, tp - t), (0, 0)]).transpose(0, 2, 1)
    g = jnp.pad(g.astype(jnp.float32), [(0, 0), (0, tp - t), (0, 0)])
    gcum = jnp.cumsum(g.reshape(b, tp // c, c, h), axis=2).reshape(b, tp, h).transpose(0, 2, 1)
    s0 = jnp.pad(s0.astype(jnp.float32), [(0, 0), (0, 0), (0, dkp - dk), (0, dvp - dv)])

    def spec(*tail):
        return pl.BlockSpec((None, None, *tail), lambda i, j: (i, j) + (0,) * len(tail))

    o, state = pl.pallas_call(
        functools.partial(_kernel, chunk=c, scale=scale),
        out_shape=(
            jax.ShapeDtypeStruct((b, h, tp, dvp), q.dtype),
            jax.ShapeDtypeStruct((b, h, dkp, dvp), jnp.float32),
        ),
        grid=(b, h),
        in_specs=[spec(tp, dkp), spec(tp, dkp), spec(tp, dvp), spec(tp), spec(tp), spec(dkp, dvp)],
        out_specs=(spec(tp, dvp), spec(dkp, dvp)),
        name="gated_delta_fwd",
        interpret=jax.default_backend() == "cpu",
    )(qh, kh, vh, beta, gcum, s0)
    return jnp.transpose(o[:, :, :t, :dv], (0, 2, 1, 3)), state[:, :, :dk, :dv]


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7))
def _gated_delta(q, k, v, beta, g, s0, scale, block):
    return _pallas_forward(q, k, v, beta, g, s0, scale, block)


def _gated_delta_fwd(q, k, v, beta, g, s0, scale, block):
    return _pallas_forward(q, k, v, beta, g, s0, scale, block), (q, k, v, beta, g, s0)


def _gated_delta_bwd(scale, block, residuals, cotangents):
    chunked = functools.partial(gated_delta_chunked, scale=scale, chunk_size=block.chunk)
    _, vjp = jax.vjp(chunked, *residuals)
    return vjp(cotangents)


_gated_delta.defvjp(_gated_delta_fwd, _gated_delta_bwd)


def gated_delta_pallas(q, k, v, beta, g, initial_state=None, scale=None, block=BlockSizes()):
    """The gated delta rule with a Pallas forward and a recomputed chunked-XLA backward.

    Args:
        q, k: ``[b, t, h, k]``; v: ``[b, t, h, v]``; beta, g: ``[b, t, h]``.
        initial_state: ``[b, h, k, v]``, or None for zeros.
        scale: query scale (a Python float); defaults to ``k ** -0.5``.
        block: kernel tiling.

    Returns:
        ``(o, final_state)``: ``o`` is ``[b, t, h, v]`` in ``q``'s dtype, ``final_state`` is
        ``[b, h, k, v]`` float32.
    """
    b, _, h, dk = k.shape
    scale = dk**-0.5 if scale is None else float(scale)
    if initial_state is None:
        initial_state = jnp.zeros((b, h, dk, v.shape[-1]), jnp.float32)
    return _gated_delta(q, k, v, beta, g, initial_state.astype(jnp.float32), scale, block)
