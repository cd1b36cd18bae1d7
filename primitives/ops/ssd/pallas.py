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

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from primitives.ops.ssd import _kernels
from primitives.ops.ssd.chunked import pad_time


@dataclasses.dataclass(frozen=True)
class BlockSizes:
    """Block sizes of the SSD Pallas kernels."""

    chunk: int = 64
    """Steps per chunk: the side of the in-chunk quadratic form."""
    pad_features: bool | None = None
    """Zero-pad p and n up to a power of two (at least 16), as Triton dots need; None: on GPU."""

    def __post_init__(self):
        if self.chunk < 1:
            raise ValueError(f"BlockSizes.chunk must be >= 1, got {self.chunk}")


def _interpret() -> bool:
    return jax.default_backend() == "cpu"


def _spec(t, *tail):
    """Block of one (batch, head) program over a [b, h, t, *tail] array."""
    return pl.BlockSpec((None, None, t, *tail), lambda i, j: (i, j, 0) + (0,) * len(tail))


def _state_spec(*shape):
    return pl.BlockSpec((None, None, *shape), lambda i, j: (i, j) + (0,) * len(shape))


def _input_specs(t, p, n):
    """Specs of x, dt, a, B, C (and of their gradients)."""
    return [_spec(t, p), _spec(t), _spec(t), _spec(t, n), _spec(t, n)]


def _to_heads_major(*arrays):
    """[b, t, h, ...] -> [b, h, t, ...]."""
    return tuple(jnp.swapaxes(v, 1, 2) for v in arrays)


def _fwd_call(x, dt, a, B, C, s0, chunk, save_states):
    """Heads-major inputs -> (y [b, h, t, p], final [b, h, p, n], entry states or None)."""
    b, h, t, p = x.shape
    n = B.shape[-1]
    f32 = jnp.float32
    out_shape = [jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct((b, h, p, n), f32)]
    out_specs = [_spec(t, p), _state_spec(p, n)]
    if save_states:
        out_shape.append(jax.ShapeDtypeStruct((b, h, t // chunk, p, n), f32))
        out_specs.append(_state_spec(t // chunk, p, n))
    outs = pl.pallas_call(
        functools.partial(_kernels.fwd_kernel, chunk=chunk),
        out_shape=out_shape,
        grid=(b, h),
        in_specs=[*_input_specs(t, p, n), _state_spec(p, n)],
        out_specs=out_specs,
        interpret=_interpret(),
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
    return pl.pallas_call(
        functools.partial(_kernels.bwd_kernel, chunk=chunk),
        out_shape=out_shape,
        grid=(b, h),
        in_specs=[*input_specs, _state_spec(nc, p, n), _spec(t, p), _state_spec(p, n)],
        out_specs=[*input_specs, _state_spec(p, n)],
        interpret=_interpret(),
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


def _feature_size(size):
    return max(16, 1 << (size - 1).bit_length())


def _pad_last(v, size):
    return jnp.pad(v, [(0, 0)] * (v.ndim - 1) + [(0, size - v.shape[-1])])


def ssd_pallas(x, dt, A, B, C, initial_state=None, *, block_sizes=BlockSizes()):
    """Pallas SSD; same contract as :func:`primitives.ops.ssd.reference.ssd_reference`.

    Forward and backward are both Pallas kernels (``ssd_fwd``, ``ssd_bwd``) joined by
    ``jax.custom_vjp``; ``dt * A`` is formed outside the kernels so autodiff routes its gradient
    to ``dt`` and ``A``. Interpret mode is used when the default backend is CPU.
    """
    b, t, h, p = x.shape
    n = B.shape[-1]
    f32 = jnp.float32
    if initial_state is None:
        initial_state = jnp.zeros((b, h, p, n), f32)
    s0 = initial_state.astype(f32)
    pad_features = block_sizes.pad_features
    if pad_features is None:
        pad_features = jax.default_backend() == "gpu"
    if pad_features:
        p_pad, n_pad = _feature_size(p), _feature_size(n)
        x, B, C = _pad_last(x, p_pad), _pad_last(B, n_pad), _pad_last(C, n_pad)
        s0 = jnp.pad(s0, [(0, 0), (0, 0), (0, p_pad - p), (0, n_pad - n)])
    # dt goes in as float32 so its two gradient terms (direct, and through a = dt * A) are
    # summed before any rounding to a bf16 dt.
    x, dt, B, C = pad_time((x, dt.astype(f32), B, C), block_sizes.chunk)
    a = dt * A.astype(f32)
    y, final = _ssd_core(block_sizes.chunk, x, dt, a, B, C, s0)
    return y[:, :t, :, :p], final[:, :, :p, :n]
