"""Mamba-2 SSD scan (Dao & Gu 2024): one op, three paths behind ``impl=``.

Shapes: x [b, t, h, p], dt [b, t, h] (positive), A [h] (negative), B and C [b, t, h, n],
state [b, h, p, n]. The ``D`` skip and the gate are the caller's.
"""

from primitives.ops import IMPLS
from primitives.ops.ssd.chunked import ssd_chunked
from primitives.ops.ssd.pallas import BlockSizes, ssd_pallas
from primitives.ops.ssd.reference import ssd_reference, ssd_step

__all__ = ["IMPLS", "BlockSizes", "ssd", "ssd_step"]


def ssd(x, dt, A, B, C, *, initial_state=None, impl="chunked", chunk_size=64):
    """Run ``S_t = exp(dt_t A) S_{t-1} + dt_t x_t B_t^T``, ``y_t = S_t C_t`` over the sequence.

    Args:
        x: [b, t, h, p] inputs.
        dt: [b, t, h] positive step sizes (after softplus and bias).
        A: [h] negative reals.
        B: [b, t, h, n] input projections, groups already broadcast to heads.
        C: [b, t, h, n] output projections.
        initial_state: [b, h, p, n] or None for zeros.
        impl: ``"reference"`` (sequential scan), ``"chunked"`` (XLA) or ``"pallas"`` (kernels).
        chunk_size: steps per chunk for the chunked and Pallas paths.

    Returns:
        ``(y, final_state)``: y [b, t, h, p] in ``x``'s dtype, final_state [b, h, p, n] float32.

    Raises:
        ValueError: ``impl`` is not one of :data:`IMPLS`.
    """
    if impl == "reference":
        return ssd_reference(x, dt, A, B, C, initial_state)
    if impl == "chunked":
        return ssd_chunked(x, dt, A, B, C, initial_state, chunk_size=chunk_size)
    if impl == "pallas":
        return ssd_pallas(x, dt, A, B, C, initial_state, block_sizes=BlockSizes(chunk=chunk_size))
    raise ValueError(f"ssd: impl must be one of {IMPLS}, got {impl!r}")
