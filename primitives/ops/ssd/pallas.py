"""SSD as Pallas kernels, forward and backward, wrapped in ``jax.custom_vjp``.

The grid is (batch, heads); each program loops over its sequence ``chunk`` steps at a time and
carries the state (see :mod:`primitives.ops.ssd._kernels`). The backward is a Pallas kernel too (the
hand-derived VJP, run over chunks in reverse); it reads the chunk-entry states that the forward
saves, so nothing is recomputed through XLA. ``custom_vjp`` is also what makes the op
differentiable in interpret mode (CPU), where ``pallas_call`` itself cannot be differentiated.

Time is zero-padded to a multiple of the chunk (padded steps have ``dt = 0`` and leave the state
unchanged). Each program holds its whole [t, p] sequence as one block, which suits GPU (blocks are
read chunk by chunk from global memory); on TPU a long sequence would need a chunk grid axis.
"""

import functools

import jax
import jax.numpy as jnp

from primitives.ops import _pallas as pk
from primitives.ops._common import pad_time, zero_state
from primitives.ops._pallas import BlockSizes
from primitives.ops.ssd import _kernels

__all__ = ["BlockSizes", "ssd_pallas"]


def _input_specs(t, p, n):
    """Specs of x, dt, a, B, C (and of their gradients)."""
    s = pk.program_spec
    return [s(t, p), s(t), s(t), s(t, n), s(t, n)]


def _to_heads_major(*arrays):
    """[b, t, h, ...] -> [b, h, t, ...]."""
    return tuple(jnp.swapaxes(v, 1, 2) for v in arrays)


def _fwd_call(x, dt, a, B, C, s0, chunk, save_states):
    """Heads-major inputs -> (y [b, h, t, p], final [b, h, p, n], entry states or None)."""
    b, h, t, p = x.shape
    n = B.shape[-1]
    f32 = jnp.float32
    out_shape = [jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct((b, h, p, n), f32)]
    out_specs = [pk.program_spec(t, p), pk.program_spec(p, n)]
    if save_states:
        out_shape.append(jax.ShapeDtypeStruct((b, h, t // chunk, p, n), f32))
        out_specs.append(pk.program_spec(t // chunk, p, n))
    outs = pk.program_call(
        functools.partial(_kernels.fwd_kernel, chunk=chunk),
        out_shape=out_shape,
        grid=(b, h),
        in_specs=[*_input_specs(t, p, n), pk.program_spec(p, n)],
        out_specs=out_specs,
        name="ssd_fwd",
    )(x, dt, a, B, C, s0)
    return outs[0], outs[1], (outs[2] if save_states else None)


def _bwd_call(x, dt, a, B, C, states, dy, d_final, chunk):
    """Heads-major inputs and cotangents -> (dx, ddt, da, dB, dC, ds0), heads-major."""
    b, h, t, p = x.shape
    n = B.shape[-1]
    nc = t // chunk
    out_shape = [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in (x, dt, a, B, C)]
    out_shape.append(jax.ShapeDtypeStruct((b, h, p, n), jnp.float32))
    input_specs = _input_specs(t, p, n)
    state = pk.program_spec(p, n)
    return pk.program_call(
        functools.partial(_kernels.bwd_kernel, chunk=chunk),
        out_shape=out_shape,
        grid=(b, h),
        in_specs=[*input_specs, pk.program_spec(nc, p, n), pk.program_spec(t, p), state],
        out_specs=[*input_specs, state],
        name="ssd_bwd",
    )(x, dt, a, B, C, states, dy, d_final)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _ssd_core(chunk, x, dt, a, B, C, s0):
    """[b, t, h, ...] inputs with t a multiple of ``chunk`` -> (y [b, t, h, p], final state)."""
    y, final, _ = _fwd_call(*_to_heads_major(x, dt, a, B, C), s0, chunk, save_states=False)
    return jnp.swapaxes(y, 1, 2), final


def _ssd_core_fwd(chunk, x, dt, a, B, C, s0):
    y, final, states = _fwd_call(*_to_heads_major(x, dt, a, B, C), s0, chunk, save_states=True)
    return (jnp.swapaxes(y, 1, 2), final), (x, dt, a, B, C, states)


def _ssd_core_bwd(chunk, residuals, cotangents):
    x, dt, a, B, C, states = residuals
    dy, d_final = cotangents
    *inputs, dy = _to_heads_major(x, dt, a, B, C, dy)
    grads = _bwd_call(*inputs, states, dy, d_final.astype(jnp.float32), chunk)
    return (*_to_heads_major(*grads[:5]), grads[5])


_ssd_core.defvjp(_ssd_core_fwd, _ssd_core_bwd)


def ssd_pallas(x, dt, A, B, C, initial_state=None, *, block_sizes=None):
    """Pallas SSD; same contract as :func:`primitives.ops.ssd.reference.ssd_reference`.

    ``block_sizes`` (a :class:`BlockSizes`, default ``BlockSizes()``) tiles the kernels.

    Forward and backward are both Pallas kernels (``ssd_fwd``, ``ssd_bwd``) joined by
    ``jax.custom_vjp``; ``dt * A`` is formed outside the kernels so autodiff routes its gradient
    to ``dt`` and ``A``. Interpret mode is used when the default backend is CPU.
    """
    block_sizes = block_sizes or BlockSizes()
    b, t, h, p = x.shape
    n = B.shape[-1]
    f32 = jnp.float32
    if initial_state is None:
        initial_state = zero_state(b, h, p, n)
    p_k, n_k = pk.feature_sizes(block_sizes, p, n)
    x, B, C = pk.pad_trailing(x, p_k), pk.pad_trailing(B, n_k), pk.pad_trailing(C, n_k)
    s0 = pk.pad_trailing(initial_state.astype(f32), p_k, n_k)
    # dt goes in as float32 so its two gradient terms (direct, and through a = dt * A) are
    # summed before any rounding to a bf16 dt.
    x, dt, B, C = (pad_time(v, block_sizes.chunk) for v in (x, dt.astype(f32), B, C))
    a = dt * A.astype(f32)
    y, final = _ssd_core(block_sizes.chunk, x, dt, a, B, C, s0)
    return y[:, :t, :, :p], final[:, :, :p, :n]
