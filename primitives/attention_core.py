"""Softmax attention cores of the ``A``/``W`` primitives, head-major, on XLA (the CPU training path).

q ``[b, n, g, t, k]`` (``g`` query heads per kv head), k/v ``[b, n, s, k]``. Head-major layouts keep
the batch dims of every contraction leading, which spares XLA the transposes around each matmul
(about 1.7x faster forward+backward on CPU than ``[b, t, heads, k]``).

- ``attend_reference``: the readable definition under autodiff; every other core is tested against it.
- ``attend``: the same forward with the softmax-attention backward written out (``jax.custom_vjp``).
- ``attend_causal_blocks``: causal (sliding-window) attention over query blocks, each against only the
  keys it can see, so the masked part of the score matrix is mostly never computed.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

__all__ = ["NEG", "QUERY_BLOCK", "attend", "attend_causal_blocks", "attend_reference", "causal_mask"]

NEG = -1e30
QUERY_BLOCK = 64
"""Queries per block of ``attend_causal_blocks`` on the training path. Blocks of 64 compute 3/4 of the
score matrix at 128 tokens and 5/8 at 256. Timed on 2 cores (``experiments/bench/attention_block.py``):
the ``text`` proxy's training step (d=64, 128 tokens) takes 0.71-0.96x the time it took with blocks
of 128 (0.84-0.88x for ``AMAMAM`` and ``MMMAAA``), a ``small`` step (d=256, 256 tokens) 0.93x; blocks
of 32 are no faster on the whole and compile longer. Outputs equal one block's to float rounding."""


def causal_mask(q_positions, k_positions, window: int | None):
    """``[tq, tk]``: key ``s`` is visible from query ``t`` when ``s <= t`` (and ``t - s < window``)."""
    diff = q_positions[:, None] - k_positions[None, :]
    mask = diff >= 0
    return mask if window is None else mask & (diff < window)


def _forward(q, k, v, mask, dtype):
    """Output and the float32 probabilities the backward pass reuses."""
    scale = q.shape[-1] ** -0.5
    logits = jnp.einsum("bngtk,bnsk->bngts", q, k, preferred_element_type=jnp.float32) * scale
    probs = jax.nn.softmax(jnp.where(mask, logits, NEG), axis=-1)
    out = jnp.einsum("bngts,bnsk->bngtk", probs.astype(dtype), v, preferred_element_type=jnp.float32)
    return out.astype(dtype), probs


def _backward(dtype, q, k, v, out, probs, d_out):
    """FlashAttention's backward (Dao et al. 2022, appendix B.2) without its tiling.

    With ``P`` the saved probabilities and ``D = rowsum(dO * O)``: ``dV = P^T dO``,
    ``dS = P * (dO V^T - D) / sqrt(k)``, ``dQ = dS K``, ``dK = dS^T Q`` (float32 accumulation).
    """
    f32 = jnp.float32
    dv = jnp.einsum("bngts,bngtk->bnsk", probs.astype(dtype), d_out, preferred_element_type=f32)
    dp = jnp.einsum("bngtk,bnsk->bngts", d_out, v, preferred_element_type=f32)
    delta = jnp.sum(d_out.astype(f32) * out.astype(f32), axis=-1, keepdims=True)
    ds = (probs * (dp - delta) * q.shape[-1] ** -0.5).astype(dtype)
    dq = jnp.einsum("bngts,bnsk->bngtk", ds, k, preferred_element_type=f32)
    dk = jnp.einsum("bngts,bngtk->bnsk", ds, q, preferred_element_type=f32)
    return dq, dk, dv


def attend_reference(q, k, v, mask, dtype):
    """Softmax attention with ``mask`` (broadcasting to ``[t, s]``); gradients by autodiff."""
    return _forward(q, k, v, mask, dtype)[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def attend(q, k, v, mask, dtype):
    """``attend_reference`` with the backward written out.

    Autodiff of the reference also differentiates the mask's select and softmax's max-shift, more
    passes over the ``[t, s]`` scores: one d256 layer's forward+backward took 34.6 ms that way and
    27.5 ms this way (2 cores).
    """
    return _forward(q, k, v, mask, dtype)[0]


def _attend_fwd(q, k, v, mask, dtype):
    out, probs = _forward(q, k, v, mask, dtype)
    return out, (q, k, v, out, probs)


def _attend_bwd(dtype, residuals, d_out):
    q, k, v, out, probs = residuals
    dq, dk, dv = _backward(dtype, q, k, v, out, probs, d_out)
    return dq.astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype), None


attend.defvjp(_attend_fwd, _attend_bwd)


def _blocks(t: int, window: int | None, block: int) -> list[tuple[int, int, int]]:
    """``(q_lo, q_hi, k_lo)`` per query block; the block's keys are ``[k_lo, q_hi)``."""
    out = []
    for lo in range(0, t, block):
        hi = min(lo + block, t)
        out.append((lo, hi, 0 if window is None else max(0, lo - window + 1)))
    return out


def _blocks_forward(q, k, v, window, dtype, block):
    outs, probs = [], []
    pos = jnp.arange(q.shape[-2])
    for lo, hi, k_lo in _blocks(q.shape[-2], window, block):
        mask = causal_mask(pos[lo:hi], pos[k_lo:hi], window)
        o, p = _forward(q[..., lo:hi, :], k[..., k_lo:hi, :], v[..., k_lo:hi, :], mask, dtype)
        outs.append(o)
        probs.append(p)
    return jnp.concatenate(outs, axis=-2), probs


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5))
def attend_causal_blocks(q, k, v, window: int | None, dtype, block: int = QUERY_BLOCK):
    """Causal (sliding-window) ``attend`` over query blocks of ``block`` tokens.

    Block ``[lo, hi)`` attends to keys ``[max(0, lo - window + 1), hi)`` only: the same outputs and
    gradients as the full masked matrix, with the skipped score blocks never formed.
    """
    return _blocks_forward(q, k, v, window, dtype, block)[0]


def _blocks_fwd(q, k, v, window, dtype, block):
    out, probs = _blocks_forward(q, k, v, window, dtype, block)
    return out, (q, k, v, out, probs)


def _blocks_bwd(window, dtype, block, residuals, d_out):
    q, k, v, out, probs = residuals
    dqs, dk, dv = [], jnp.zeros(k.shape, jnp.float32), jnp.zeros(v.shape, jnp.float32)
    for (lo, hi, k_lo), p in zip(_blocks(q.shape[-2], window, block), probs):
        dq_b, dk_b, dv_b = _backward(dtype, q[..., lo:hi, :], k[..., k_lo:hi, :], v[..., k_lo:hi, :],
                                     out[..., lo:hi, :], p, d_out[..., lo:hi, :])
        dqs.append(dq_b)
        dk = dk.at[..., k_lo:hi, :].add(dk_b)
        dv = dv.at[..., k_lo:hi, :].add(dv_b)
    return jnp.concatenate(dqs, axis=-2).astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype)


attend_causal_blocks.defvjp(_blocks_fwd, _blocks_bwd)
