"""GLA forward as a Pallas kernel; the backward recomputes through the chunked XLA path.

The kernel runs one program per (batch, head) and walks that sequence chunk by chunk, carrying the
[k, v] state in registers/VMEM (Yang et al. 2024, the chunkwise form: inter-chunk terms through the
state, intra-chunk terms through a causal score matrix). Inside a chunk the decayed scores
``A_ij = sum_k q_ik k_jk exp(G_ik - G_jk)`` are built one key column ``j`` at a time from the exact
pairwise decays, with the exponent masked to 0 above the diagonal, so no exponent is ever
positive and strongly decaying gates cannot overflow. ``G`` (the cumulative log-gate from the chunk
start) is computed outside the kernel by XLA.

**Backward: not a Pallas kernel.** ``jax.custom_vjp`` pairs the kernel forward with the VJP of
``gla_chunked`` on the same inputs (recomputation through the chunked XLA path); only the inputs are
kept as residuals.

On CPU the kernel runs in Pallas interpret mode. For the GPU (Triton) lowering, the key and value
dims are zero-padded to a power of two of at least 16 (Triton loads, stores and dots need that) and
``block_t`` should be a power of two of at least 16; zero channels leave the results unchanged.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from primitives.ops.gla._common import pad_time, resolve_scale, zero_state
from primitives.ops.gla.chunked import gla_chunked

_PRECISION = jax.lax.Precision.HIGHEST  # float32 parity with the reference; see chunked.py
_MIN_FEATURE = 16


@dataclasses.dataclass(frozen=True)
class BlockSizes:
    """Block sizes of the GLA Pallas kernel."""

    block_t: int = 16
    """Steps per chunk in the in-kernel loop; ``t`` is zero-padded to a multiple of it. The
    intra-chunk score loop runs ``block_t`` iterations of [block_t, k] work."""

    def __post_init__(self):
        if self.block_t < 1:
            raise ValueError(f"BlockSizes.block_t must be >= 1, got {self.block_t}")


def gla_pallas(q, k, v, log_g, initial_state=None, scale=None, block_sizes=BlockSizes()):
    """GLA with the Pallas forward kernel; same contract as ``gla_reference``.

    Args:
        q: [b, t, h, k] queries.
        k: [b, t, h, k] keys.
        v: [b, t, h, v] values.
        log_g: [b, t, h, k] log forget gate, ``<= 0``.
        initial_state: [b, h, k, v] or None for zeros.
        scale: factor on ``q`` (a Python number); defaults to ``k ** -0.5``.
        block_sizes: kernel block sizes.

    Returns:
        ``(o, final_state)``: o [b, t, h, v] in ``q``'s dtype, final_state [b, h, k, v] float32.
    """
    if initial_state is None:
        initial_state = zero_state(q, v)
    scale = float(resolve_scale(scale, q.shape[-1]))
    return _gla(q, k, v, log_g, initial_state.astype(jnp.float32), scale, block_sizes)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def _gla(q, k, v, log_g, initial_state, scale, block_sizes):
    return _forward(q, k, v, log_g, initial_state, scale, block_sizes)


def _gla_fwd(q, k, v, log_g, initial_state, scale, block_sizes):
    out = _forward(q, k, v, log_g, initial_state, scale, block_sizes)
    return out, (q, k, v, log_g, initial_state)


def _gla_bwd(scale, block_sizes, residuals, cotangents):
    chunked = functools.partial(gla_chunked, scale=scale, chunk_size=block_sizes.block_t)
    _, vjp = jax.vjp(chunked, *residuals)
    return vjp(cotangents)


_gla.defvjp(_gla_fwd, _gla_bwd)


def _feature_size(d: int) -> int:
    return max(_MIN_FEATURE, 1 << (d - 1).bit_length())


def _to_kernel_layout(x, block_t: int, d: int):
    """[b, t, h, d0] -> [b, h, tp, d]: time padded to ``block_t``, features zero-padded to ``d``."""
    x = pad_time(x, block_t)
    x = jnp.pad(x, [(0, 0)] * 3 + [(0, d - x.shape[-1])])
    return x.transpose(0, 2, 1, 3)


def _chunk_cumsum(log_g, block_t: int):
    """Float32 cumulative log-gate from each chunk's start, inclusive; [b, tp, h, k]."""
    g = pad_time(log_g.astype(jnp.float32), block_t)
    b, tp, h, dk = g.shape
    g = jnp.cumsum(g.reshape(b, tp // block_t, block_t, h, dk), axis=2)
    return g.reshape(b, tp, h, dk)


def _forward(q, k, v, log_g, initial_state, scale, block_sizes):
    b, t, h, dk = q.shape
    dv = v.shape[-1]
    bt = block_sizes.block_t
    kp, vp = _feature_size(dk), _feature_size(dv)
    g = _chunk_cumsum(log_g, bt)
    qs, ks, gs = (_to_kernel_layout(x, bt, kp) for x in (q, k, g))
    vs = _to_kernel_layout(v, bt, vp)
    tp = qs.shape[2]
    # The kernel carries the state transposed, [v, k], so the per-key decay broadcasts along
    # the minor axis.
    pad_state = [(0, 0), (0, 0), (0, vp - dv), (0, kp - dk)]
    state_t = jnp.pad(jnp.swapaxes(initial_state, -1, -2), pad_state)

    def seq_spec(d):
        return pl.BlockSpec((None, None, tp, d), lambda i, j: (i, j, 0, 0))

    state_spec = pl.BlockSpec((None, None, vp, kp), lambda i, j: (i, j, 0, 0))
    o, final_t = pl.pallas_call(
        functools.partial(_fwd_kernel, scale=scale, block_t=bt),
        out_shape=(
            jax.ShapeDtypeStruct((b, h, tp, vp), q.dtype),
            jax.ShapeDtypeStruct((b, h, vp, kp), jnp.float32),
        ),
        grid=(b, h),
        in_specs=[seq_spec(kp), seq_spec(kp), seq_spec(vp), seq_spec(kp), state_spec],
        out_specs=(seq_spec(vp), state_spec),
        name="gla_fwd",
        interpret=jax.default_backend() == "cpu",
    )(qs, ks, vs, gs, state_t)
    o = o.transpose(0, 2, 1, 3)[:, :t, :, :dv]
    final_state = jnp.swapaxes(final_t, -1, -2)[:, :, :dk, :dv]
    return o, final_state


def _fwd_kernel(q_ref, k_ref, v_ref, g_ref, s0_ref, o_ref, s_ref, *, scale, block_t):
    """One (batch, head): refs are q, k, g [tp, k], v and o [tp, v], states [v, k]."""
    c = block_t
    f32 = jnp.float32
    rows = jax.lax.broadcasted_iota(jnp.int32, (c, c), 0)
    cols = jax.lax.broadcasted_iota(jnp.int32, (c, c), 1)
    key_rows = jax.lax.broadcasted_iota(jnp.int32, (c, k_ref.shape[-1]), 0)

    def chunk(i, state_t):
        start = pl.multiple_of(i * c, c)
        span = pl.ds(start, c)
        q = q_ref[span, :].astype(f32) * scale
        k = k_ref[span, :].astype(f32)
        v = v_ref[span, :].astype(f32)
        g = g_ref[span, :]
        g_last = g_ref[pl.ds(start + c - 1, 1), :]  # [1, k]

        def column(j, scores):
            k_j = k_ref[pl.ds(start + j, 1), :].astype(f32)
            g_j = g_ref[pl.ds(start + j, 1), :]
            decay = jnp.exp(jnp.where(key_rows >= j, g - g_j, 0.0))  # exponent <= 0
            score_j = jnp.sum(q * decay * k_j, axis=1, keepdims=True)  # [c, 1]
            return scores + jnp.where(cols == j, score_j, 0.0)

        scores = jax.lax.fori_loop(0, c, column, jnp.zeros((c, c), f32))
        scores = jnp.where(rows >= cols, scores, 0.0)
        o = jnp.dot(scores, v, precision=_PRECISION)
        o += jax.lax.dot_general(q * jnp.exp(g), state_t, (((1,), (1,)), ((), ())), precision=_PRECISION)
        o_ref[span, :] = o.astype(o_ref.dtype)
        k_to_end = k * jnp.exp(g_last - g)
        update_t = jax.lax.dot_general(v, k_to_end, (((0,), (0,)), ((), ())), precision=_PRECISION)
        return state_t * jnp.exp(g_last) + update_t

    n_chunks = q_ref.shape[0] // c
    s_ref[...] = jax.lax.fori_loop(0, n_chunks, chunk, s0_ref[...].astype(f32))
