"""GLA with Pallas kernels for the forward and the backward pass.

Both kernels run one program per (batch, head) and loop over chunks inside, carrying the [k, v]
state (forward) or its cotangent (backward, last chunk first); see ``_pallas_kernels.py``. The
chunkwise form is that of Yang et al. 2024; intra-chunk decays are exact pairwise ``exp(G_i - G_j)``
with non-positive exponents, so strongly decaying gates cannot overflow.

**Backward: a Pallas kernel** (``gla_bwd``), wired in with ``jax.custom_vjp``. The forward saves
each chunk's entering state for it (float32, n * v * k per batch and head). The kernel yields dq,
dk, dv and the initial-state cotangent; the log-gate gradient follows from those in XLA by the
identity ``dlog_g_t = sum_{s >= t} (q_s * dq_s - k_s * dk_s) + sum_v (dS_T * S_T)``: every path
from ``log_g_t`` to the loss passes through the decays ``exp(B_s - B_j)`` with ``j < t <= s`` or
through ``S_T`` (``B`` the cumulative log-gate, ``S_T`` the final state).

On CPU the kernels run in Pallas interpret mode. For the GPU (Triton) lowering, the key and value
dims are zero-padded to a power of two of at least 16 (Triton loads, stores and dots need that) and
``block_t`` should be a power of two of at least 16; zero channels leave the results unchanged.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from primitives.ops.gla._common import pad_time, resolve_scale, zero_state
from primitives.ops.gla._pallas_kernels import bwd_kernel, fwd_kernel

_MIN_FEATURE = 16


@dataclasses.dataclass(frozen=True)
class BlockSizes:
    """Block sizes of the GLA Pallas kernels."""

    block_t: int = 16
    """Steps per chunk in the in-kernel loops; ``t`` is zero-padded to a multiple of it. Each
    chunk's intra-chunk loop runs ``block_t`` iterations of [block_t, k] work."""

    def __post_init__(self):
        if self.block_t < 1:
            raise ValueError(f"BlockSizes.block_t must be >= 1, got {self.block_t}")


def gla_pallas(q, k, v, log_g, initial_state=None, scale=None, block_sizes=BlockSizes()):
    """GLA with the Pallas kernels; same contract as ``gla_reference``.

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
    f32 = jnp.float32
    return _gla(q, k, v, log_g.astype(f32), initial_state.astype(f32), scale, block_sizes)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def _gla(q, k, v, log_g, initial_state, scale, block_sizes):
    out, _ = _gla_fwd(q, k, v, log_g, initial_state, scale, block_sizes, save_states=False)
    return out


def _gla_fwd(q, k, v, log_g, initial_state, scale, block_sizes, save_states=True):
    t, dk, dv, bt = q.shape[1], q.shape[-1], v.shape[-1], block_sizes.block_t
    kp, vp = _feature_size(dk), _feature_size(dv)
    qs, ks, gs = (_to_kernel_layout(x, bt, kp) for x in (q, k, _chunk_cumsum(log_g, bt)))
    vs = _to_kernel_layout(v, bt, vp)
    b, h, tp, _ = qs.shape
    out_shape = [_struct(b, h, tp, vp, dtype=q.dtype), _struct(b, h, vp, kp)]
    out_specs = [_seq_spec(tp, vp), _state_spec(vp, kp)]
    if save_states:
        out_shape.append(_struct(b, h, tp // bt * vp, kp))
        out_specs.append(_state_spec(tp // bt * vp, kp))
    o, final_t, *starts = pl.pallas_call(
        functools.partial(fwd_kernel, scale=scale, block_t=bt),
        out_shape=tuple(out_shape),
        grid=(b, h),
        in_specs=[_seq_spec(tp, kp)] * 2 + [_seq_spec(tp, vp), _seq_spec(tp, kp), _state_spec(vp, kp)],
        out_specs=tuple(out_specs),
        name="gla_fwd",
        interpret=_interpret(),
    )(qs, ks, vs, gs, _state_to_kernel(initial_state, kp, vp))
    final_state = jnp.swapaxes(final_t, -1, -2)[:, :, :dk, :dv]
    return (_from_kernel_layout(o, t, dv), final_state), (qs, ks, vs, gs, *starts, final_state)


def _gla_bwd(scale, block_sizes, residuals, cotangents):
    qs, ks, vs, gs, starts, final_state = residuals
    do, d_final = cotangents
    b, h, tp, kp = qs.shape
    t, dk, dv, vp, bt = do.shape[1], d_final.shape[2], do.shape[-1], vs.shape[-1], block_sizes.block_t
    seq_k, seq_v, state = _seq_spec(tp, kp), _seq_spec(tp, vp), _state_spec(vp, kp)
    d_q, d_k, d_v, d_s0_t = pl.pallas_call(
        functools.partial(bwd_kernel, scale=scale, block_t=bt),
        out_shape=(_struct(b, h, tp, kp), _struct(b, h, tp, kp), _struct(b, h, tp, vp), _struct(b, h, vp, kp)),
        grid=(b, h),
        in_specs=[seq_k, seq_k, seq_v, seq_k, _state_spec(tp // bt * vp, kp), seq_v, state],
        out_specs=(seq_k, seq_k, seq_v, state),
        name="gla_bwd",
        interpret=_interpret(),
    )(qs, ks, vs, gs, starts, _to_kernel_layout(do, bt, vp), _state_to_kernel(d_final, kp, vp))
    d_decay = qs.astype(jnp.float32) * d_q - ks.astype(jnp.float32) * d_k
    d_log_g = _from_kernel_layout(jax.lax.cumsum(d_decay, axis=2, reverse=True), t, dk)
    d_log_g += jnp.sum(d_final * final_state, axis=-1)[:, None]  # every gate scales S_T
    return (
        _from_kernel_layout(d_q, t, dk).astype(qs.dtype),
        _from_kernel_layout(d_k, t, dk).astype(ks.dtype),
        _from_kernel_layout(d_v, t, dv).astype(vs.dtype),
        d_log_g,
        jnp.swapaxes(d_s0_t, -1, -2)[:, :, :dk, :dv],
    )


_gla.defvjp(_gla_fwd, _gla_bwd)


def _interpret() -> bool:
    return jax.default_backend() == "cpu"


def _struct(*shape, dtype=jnp.float32):
    return jax.ShapeDtypeStruct(shape, dtype)


def _seq_spec(tp: int, d: int):
    return pl.BlockSpec((None, None, tp, d), lambda i, j: (i, j, 0, 0))


def _state_spec(rows: int, cols: int):
    return pl.BlockSpec((None, None, rows, cols), lambda i, j: (i, j, 0, 0))


def _feature_size(d: int) -> int:
    return max(_MIN_FEATURE, 1 << (d - 1).bit_length())


def _to_kernel_layout(x, block_t: int, d: int):
    """[b, t, h, d0] -> [b, h, tp, d]: time padded to ``block_t``, features zero-padded to ``d``."""
    x = pad_time(x, block_t)
    x = jnp.pad(x, [(0, 0)] * 3 + [(0, d - x.shape[-1])])
    return x.transpose(0, 2, 1, 3)


def _from_kernel_layout(x, t: int, d: int):
    """[b, h, tp, dp] -> [b, t, h, d], dropping the padding."""
    return x.transpose(0, 2, 1, 3)[:, :t, :, :d]


def _state_to_kernel(state, kp: int, vp: int):
    """[b, h, k, v] -> [b, h, vp, kp]: transposed (see ``_pallas_kernels``) and zero-padded."""
    state_t = jnp.swapaxes(state, -1, -2)
    return jnp.pad(state_t, [(0, 0), (0, 0), (0, vp - state_t.shape[2]), (0, kp - state_t.shape[3])])


def _chunk_cumsum(log_g, block_t: int):
    """Float32 cumulative log-gate from each chunk's start, inclusive; [b, tp, h, k]."""
    g = pad_time(log_g.astype(jnp.float32), block_t)
    b, tp, h, dk = g.shape
    g = jnp.cumsum(g.reshape(b, tp // block_t, block_t, h, dk), axis=2)
    return g.reshape(b, tp, h, dk)
