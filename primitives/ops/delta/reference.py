"""Gated delta rule, the literal recurrence: one token at a time, written to be read.

Gated DeltaNet (Yang, Kautz & Hatamizadeh, "Gated Delta Networks: Improving Mamba2 with Delta Rule",
ICLR 2025), eq. (10), with the state stored as ``S`` of shape ``[k, v]``::

    S_t = exp(g_t) * (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T
    o_t = S_t^T (scale * q_t)

This file is the ground truth that the chunked and Pallas paths are tested against.
"""

import functools

import jax.numpy as jnp

from primitives.ops._common import HIGHEST, resolve_scale, scan_time, zero_state


def gated_delta_step(q_t, k_t, v_t, beta_t, g_t, state, scale=None):
    """One token of the gated delta rule, for decoding.

    Args:
        q_t: queries ``[b, h, k]``.
        k_t: keys ``[b, h, k]`` (L2-normalised by the caller).
        v_t: values ``[b, h, v]``.
        beta_t: writing strength ``[b, h]`` in (0, 1).
        g_t: log decay ``[b, h]``, at most 0.
        state: ``[b, h, k, v]``.
        scale: query scale; defaults to ``k ** -0.5``.

    Returns:
        ``(o_t, new_state)``: ``o_t`` is ``[b, h, v]`` in ``q_t``'s dtype; ``new_state`` is float32.
    """
    scale = resolve_scale(scale, q_t.shape[-1])
    f32 = lambda x: x.astype(jnp.float32)
    q, k, v, beta, g, s = map(f32, (q_t, k_t, v_t, beta_t, g_t, state))
    # HIGHEST: the reference must be exact in fp32 on every backend, or it would be a worse
    # yardstick than the paths it judges.
    # (I - beta k k^T) S = S - beta k (k^T S): the "delta" correction of what S recalls for k.
    recalled = jnp.einsum("bhk,bhkv->bhv", k, s, precision=HIGHEST)
    erased = s - beta[..., None, None] * k[..., :, None] * recalled[..., None, :]
    written = beta[..., None, None] * k[..., :, None] * v[..., None, :]
    new_state = jnp.exp(g)[..., None, None] * erased + written
    o = jnp.einsum("bhk,bhkv->bhv", scale * q, new_state, precision=HIGHEST)
    return o.astype(q_t.dtype), new_state


def gated_delta_reference(q, k, v, beta, g, initial_state=None, scale=None):
    """The gated delta rule over a sequence, by ``jax.lax.scan`` of :func:`gated_delta_step`.

    Args:
        q, k: ``[b, t, h, k]``; v: ``[b, t, h, v]``; beta, g: ``[b, t, h]``.
        initial_state: ``[b, h, k, v]``, or None for zeros.
        scale: query scale; defaults to ``k ** -0.5``.

    Returns:
        ``(o, final_state)``: ``o`` is ``[b, t, h, v]`` in ``q``'s dtype, ``final_state`` is
        ``[b, h, k, v]`` float32.
    """
    b, _, h, dk = k.shape
    if initial_state is None:
        initial_state = zero_state(b, h, dk, v.shape[-1])
    step = functools.partial(gated_delta_step, scale=scale)
    return scan_time(step, (q, k, v, beta, g), initial_state)
