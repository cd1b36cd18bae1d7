"""Gated linear attention (Yang et al. 2024), one op behind an ``impl=`` switch.

``gla`` runs a whole sequence; ``gla_step`` advances one token for decoding. The recurrence, per
batch and head, is ``S_t = diag(exp(log_g_t)) S_{t-1} + outer(k_t, v_t)``,
``o_t = (scale * q_t) @ S_t`` (see ``reference.py``).
"""

from primitives.ops import IMPLS
from primitives.ops.gla.chunked import gla_chunked
from primitives.ops.gla.pallas import BlockSizes, gla_pallas
from primitives.ops.gla.reference import gla_reference, gla_step

__all__ = ["IMPLS", "gla", "gla_step"]


def gla(q, k, v, log_g, *, initial_state=None, scale=None, impl="chunked", chunk_size=64):
    """Gated linear attention over a sequence.

    Args:
        q: [b, t, h, k] queries.
        k: [b, t, h, k] keys.
        v: [b, t, h, v] values.
        log_g: [b, t, h, k] log forget gate, ``<= 0`` (per key channel).
        initial_state: [b, h, k, v] state entering the sequence, or None for zeros.
        scale: factor on ``q``; defaults to ``k ** -0.5``. A Python number for ``impl="pallas"``.
        impl: ``"reference"`` (sequential scan, to be read), ``"chunked"`` (XLA chunkwise form)
            or ``"pallas"`` (Pallas kernels for the forward and the backward pass).
        chunk_size: steps per chunk for ``"chunked"``, and the kernels' ``BlockSizes.chunk`` for
            ``"pallas"``; ignored by ``"reference"``.

    Returns:
        ``(o, final_state)``: o [b, t, h, v] in ``q``'s dtype, final_state [b, h, k, v] float32.

    Raises:
        ValueError: on an unknown ``impl``, a bad ``chunk_size`` or mismatched shapes.
    """
    if impl not in IMPLS:
        raise ValueError(f"gla: impl must be one of {IMPLS}, got {impl!r}")
    if chunk_size < 1:
        raise ValueError(f"gla: chunk_size must be >= 1, got {chunk_size}")
    _check_shapes(q, k, v, log_g, initial_state)
    if impl == "reference":
        return gla_reference(q, k, v, log_g, initial_state, scale)
    if impl == "chunked":
        return gla_chunked(q, k, v, log_g, initial_state, scale, chunk_size=chunk_size)
    return gla_pallas(q, k, v, log_g, initial_state, scale, BlockSizes(chunk=chunk_size))


def _check_shapes(q, k, v, log_g, initial_state):
    if q.ndim != 4:
        raise ValueError(f"gla: q must be [b, t, h, k], got shape {q.shape}")
    for name, x in (("k", k), ("log_g", log_g)):
        if x.shape != q.shape:
            raise ValueError(f"gla: {name} must have q's shape {q.shape}, got {x.shape}")
    if v.ndim != 4 or v.shape[:3] != q.shape[:3]:
        raise ValueError(f"gla: v must be [b, t, h, v] with (b, t, h) = {q.shape[:3]}, got {v.shape}")
    b, _, h, dk = q.shape
    expected = (b, h, dk, v.shape[-1])
    if initial_state is not None and initial_state.shape != expected:
        raise ValueError(f"gla: initial_state must have shape {expected}, got {initial_state.shape}")
