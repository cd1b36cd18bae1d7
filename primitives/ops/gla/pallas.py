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
``BlockSizes.chunk`` should be a power of two of at least 16; zero channels leave the results
unchanged. The padding is applied on CPU too unless ``BlockSizes.pad_features=False``: it changes
the order of the kernels' float32 sums, and the CPU results are kept as they were validated.
"""

import functools

import jax
import jax.numpy as jnp

from primitives.ops import _pallas as pk
from primitives.ops._common import resolve_scale, zero_state
from primitives.ops._pallas import BlockSizes
from primitives.ops.gla._pallas_kernels import bwd_kernel, fwd_kernel

__all__ = ["BlockSizes", "gla_pallas"]


def gla_pallas(q, k, v, log_g, initial_state=None, scale=None, block_sizes=None):
    """GLA with the Pallas kernels; same arguments and results as
    :func:`primitives.ops.gla.reference.gla_reference`, with ``scale`` a Python number.

    ``block_sizes`` (a :class:`BlockSizes`, default ``BlockSizes(chunk=16)``: each chunk's
    intra-chunk loop runs ``chunk`` iterations of [chunk, k] work) tiles the kernels.
    """
    block_sizes = block_sizes or BlockSizes(chunk=16)
    b, _, h, dk = q.shape
    if initial_state is None:
        initial_state = zero_state(b, h, dk, v.shape[-1])
    scale = float(resolve_scale(scale, dk))
    f32 = jnp.float32
    return _gla(q, k, v, log_g.astype(f32), initial_state.astype(f32), scale, block_sizes)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def _gla(q, k, v, log_g, initial_state, scale, block_sizes):
    out, _ = _gla_fwd(q, k, v, log_g, initial_state, scale, block_sizes, save_states=False)
    return out


def _gla_fwd(q, k, v, log_g, initial_state, scale, block_sizes, save_states=True):
    t, dk, dv, chunk = q.shape[1], q.shape[-1], v.shape[-1], block_sizes.chunk
    # On every backend (pad_on_cpu): see the module docstring.
    kp, vp = pk.feature_sizes(block_sizes, dk, dv, pad_on_cpu=True)
    qs, ks, gs = (pk.to_kernel_layout(x, chunk, kp) for x in (q, k, pk.chunk_cumsum(log_g, chunk)))
    vs = pk.to_kernel_layout(v, chunk, vp)
    b, h, tp, _ = qs.shape
    seq_k, seq_v, state = pk.program_spec(tp, kp), pk.program_spec(tp, vp), pk.program_spec(vp, kp)
    out_shape = [pk.struct(b, h, tp, vp, dtype=q.dtype), pk.struct(b, h, vp, kp)]
    out_specs = [seq_v, state]
    if save_states:
        out_shape.append(pk.struct(b, h, tp // chunk * vp, kp))
        out_specs.append(pk.program_spec(tp // chunk * vp, kp))
    o, final_t, *starts = pk.program_call(
        functools.partial(fwd_kernel, scale=scale, chunk=chunk),
        out_shape=tuple(out_shape),
        grid=(b, h),
        in_specs=[seq_k, seq_k, seq_v, seq_k, state],
        out_specs=tuple(out_specs),
        name="gla_fwd",
    )(qs, ks, vs, gs, _state_to_kernel(initial_state, kp, vp))
    final_state = jnp.swapaxes(final_t, -1, -2)[:, :, :dk, :dv]
    return (pk.from_kernel_layout(o, t, dv), final_state), (qs, ks, vs, gs, *starts, final_state)


def _gla_bwd(scale, block_sizes, residuals, cotangents):
    qs, ks, vs, gs, starts, final_state = residuals
    do, d_final = cotangents
    b, h, tp, kp = qs.shape
    t, dk, dv, vp, chunk = do.shape[1], d_final.shape[2], do.shape[-1], vs.shape[-1], block_sizes.chunk
    seq_k, seq_v, state = pk.program_spec(tp, kp), pk.program_spec(tp, vp), pk.program_spec(vp, kp)
    d_q, d_k, d_v, d_s0_t = pk.program_call(
        functools.partial(bwd_kernel, scale=scale, chunk=chunk),
        out_shape=[pk.struct(b, h, tp, d) for d in (kp, kp, vp)] + [pk.struct(b, h, vp, kp)],
        grid=(b, h),
        in_specs=[seq_k, seq_k, seq_v, seq_k, pk.program_spec(tp // chunk * vp, kp), seq_v, state],
        out_specs=(seq_k, seq_k, seq_v, state),
        name="gla_bwd",
    )(qs, ks, vs, gs, starts, pk.to_kernel_layout(do, chunk, vp), _state_to_kernel(d_final, kp, vp))
    d_decay = qs.astype(jnp.float32) * d_q - ks.astype(jnp.float32) * d_k
    d_log_g = pk.from_kernel_layout(jax.lax.cumsum(d_decay, axis=2, reverse=True), t, dk)
    d_log_g += jnp.sum(d_final * final_state, axis=-1)[:, None]  # every gate scales S_T
    return (
        pk.from_kernel_layout(d_q, t, dk).astype(qs.dtype),
        pk.from_kernel_layout(d_k, t, dk).astype(ks.dtype),
        pk.from_kernel_layout(d_v, t, dv).astype(vs.dtype),
        d_log_g,
        jnp.swapaxes(d_s0_t, -1, -2)[:, :, :dk, :dv],
    )


_gla.defvjp(_gla_fwd, _gla_bwd)


def _state_to_kernel(state, kp: int, vp: int):
    """[b, h, k, v] -> [b, h, vp, kp]: transposed (see ``_pallas_kernels``) and zero-padded."""
    return pk.pad_trailing(jnp.swapaxes(state, -1, -2), vp, kp)
