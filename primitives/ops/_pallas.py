"""Scaffolding shared by the Pallas kernels of every op (SSD, GLA, gated delta rule).

Every kernel runs one program per (batch, head) over a grid ``(b, h)``, sees that program's whole
sequence in *kernel layout* ``[b, h, t, ...]`` (time zero-padded to a multiple of the chunk) and
walks it a chunk at a time, as in the chunkwise-parallel forms of Mamba-2 (Dao & Gu 2024, Sec. 6),
GLA (Yang et al. 2024, Sec. 4) and DeltaNet (Yang et al. 2024). What differs between ops is the
kernel body; the block sizes, layout, padding, matmul precision and the interpret switch are here.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from primitives.ops._common import HIGHEST, pad_time

__all__ = [
    "BlockSizes",
    "chunk_cumsum",
    "dot",
    "dot_nt",
    "dot_tn",
    "feature_sizes",
    "from_kernel_layout",
    "interpret",
    "pad_trailing",
    "program_call",
    "program_spec",
    "struct",
    "to_kernel_layout",
]

# Triton's loads, stores and dots need power-of-two block shapes of at least 16 along each axis.
_MIN_FEATURE = 16


@dataclasses.dataclass(frozen=True)
class BlockSizes:
    """Block sizes of an op's Pallas kernels."""

    chunk: int = 64
    """Steps per chunk: the side of the in-kernel quadratic (intra-chunk) form; ``t`` is
    zero-padded to a multiple of it."""
    pad_features: bool | None = None
    """Zero-pad the feature dims to a power of two (at least 16), as Triton dots need; None: the
    op's default (SSD on GPU only; GLA and the delta rule on every backend)."""

    def __post_init__(self):
        if self.chunk < 1:
            raise ValueError(f"BlockSizes.chunk must be >= 1, got {self.chunk}")


def interpret() -> bool:
    """Whether ``pallas_call`` runs in interpret mode: on CPU, so the kernels are tested there."""
    return jax.default_backend() == "cpu"


def dot(a, b, contract=(1, 0)):
    """2-D float32 matmul at full precision, contracting ``a``'s axis ``contract[0]`` with ``b``'s
    ``contract[1]`` (so transposed operands are never materialised)."""
    dims = (((contract[0],), (contract[1],)), ((), ()))
    return jax.lax.dot_general(a, b, dims, precision=HIGHEST, preferred_element_type=jnp.float32)


def dot_nt(a, b):
    """``a @ b.T`` in float32."""
    return dot(a, b, (1, 1))


def dot_tn(a, b):
    """``a.T @ b`` in float32."""
    return dot(a, b, (0, 0))


def feature_sizes(block_sizes: BlockSizes, *dims: int, pad_on_cpu: bool = False) -> tuple[int, ...]:
    """The sizes the kernels see for feature dims ``dims``: each rounded up to a power of two of at
    least 16 when ``block_sizes.pad_features`` says so (None: on GPU, or everywhere if
    ``pad_on_cpu``), else unchanged. Zero features leave every op's results unchanged."""
    pad = block_sizes.pad_features
    if pad is None:
        pad = pad_on_cpu or jax.default_backend() == "gpu"
    return tuple(max(_MIN_FEATURE, 1 << (d - 1).bit_length()) if pad else d for d in dims)


def pad_trailing(x, *sizes: int):
    """Zero-pads the last ``len(sizes)`` axes of ``x`` up to ``sizes``."""
    widths = [(0, size - n) for n, size in zip(x.shape[-len(sizes) :], sizes)] if sizes else []
    if not any(hi for _, hi in widths):
        return x
    return jnp.pad(x, [(0, 0)] * (x.ndim - len(sizes)) + widths)


def to_kernel_layout(x, chunk: int, *features: int):
    """``[b, t, h, ...] -> [b, h, tp, ...]``: time zero-padded to a multiple of ``chunk``, the
    trailing feature axes zero-padded to ``features``."""
    return jnp.swapaxes(pad_trailing(pad_time(x, chunk), *features), 1, 2)


def from_kernel_layout(x, t: int, *features: int):
    """``[b, h, tp, ...] -> [b, t, h, ...]``, dropping the time and feature padding."""
    x = jnp.swapaxes(x, 1, 2)[:, :t]
    return x[(..., *(slice(0, d) for d in features))]


def chunk_cumsum(x, chunk: int):
    """Float32 inclusive cumulative sum of ``x`` [b, t, h, ...] over time from each chunk's start,
    time zero-padded to a multiple of ``chunk`` (the chunk-local log decay the kernels read)."""
    x = pad_time(x.astype(jnp.float32), chunk)
    b, tp = x.shape[:2]
    return jnp.cumsum(x.reshape(b, tp // chunk, chunk, *x.shape[2:]), axis=2).reshape(x.shape)


def struct(*shape: int, dtype=jnp.float32):
    """A kernel output's shape and dtype."""
    return jax.ShapeDtypeStruct(shape, dtype)


def program_spec(*block: int):
    """The block of one (batch, head) program over a ``[b, h, *block]`` array: all of it."""
    return pl.BlockSpec((None, None, *block), lambda i, j: (i, j) + (0,) * len(block))


def program_call(kernel, *, grid, in_specs, out_specs, out_shape, name):
    """``pallas_call`` over the (batch, head) ``grid``, interpreted on CPU."""
    return pl.pallas_call(
        kernel,
        out_shape=out_shape,
        grid=grid,
        in_specs=in_specs,
        out_specs=out_specs,
        interpret=interpret(),
        name=name,
    )
