"""Gated delta rule (Gated DeltaNet, Yang, Kautz & Hatamizadeh, ICLR 2025), one ``impl=`` switch.

``impl="reference"`` is the sequential recurrence, ``"chunked"`` the WY/UT chunked form in plain
XLA, ``"pallas"`` a Pallas forward kernel with a chunked-XLA recompute backward.
"""

from primitives.ops import IMPLS
from primitives.ops.delta.chunked import gated_delta_chunked
from primitives.ops.delta.pallas import BlockSizes, gated_delta_pallas
from primitives.ops.delta.reference import gated_delta_reference, gated_delta_step

__all__ = [
    "IMPLS",
    "BlockSizes",
    "gated_delta",
    "gated_delta_chunked",
    "gated_delta_pallas",
    "gated_delta_reference",
    "gated_delta_step",
]


def gated_delta(q, k, v, beta, g, *, initial_state=None, scale=None, impl="chunked", chunk_size=64):
    """Gated delta rule over a sequence.

    ``S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T``,
    ``o_t = S_t^T (scale q_t)``, with ``S`` of shape ``[k, v]``.

    Args:
        q, k: ``[b, t, h, k]``, L2-normalised by the caller; v: ``[b, t, h, v]``.
        beta: ``[b, t, h]`` in (0, 1); g: ``[b, t, h]`` log decay, at most 0.
        initial_state: ``[b, h, k, v]``, or None for zeros.
        scale: query scale; defaults to ``k ** -0.5``.
        impl: one of :data:`IMPLS`.
        chunk_size: tokens per chunk for ``"chunked"`` and ``"pallas"``.

    Returns:
        ``(o, final_state)``: ``o`` is ``[b, t, h, v]`` in ``q``'s dtype (fp32 accumulation),
        ``final_state`` is ``[b, h, k, v]`` float32.

    Raises:
        ValueError: if ``impl`` is not one of :data:`IMPLS`.
    """
    args = (q, k, v, beta, g)
    if impl == "reference":
        return gated_delta_reference(*args, initial_state=initial_state, scale=scale)
    if impl == "chunked":
        return gated_delta_chunked(
            *args, initial_state=initial_state, scale=scale, chunk_size=chunk_size
        )
    if impl == "pallas":
        return gated_delta_pallas(
            *args, initial_state=initial_state, scale=scale, block_sizes=BlockSizes(chunk=chunk_size)
        )
    raise ValueError(f"gated_delta: impl={impl!r} is not one of {IMPLS}")
