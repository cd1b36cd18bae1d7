"""Gated delta rule, the literal recurrence: one token at a time, written to be read.

Gated DeltaNet (Yang, Kautz & Hatamizadeh, "Gated Delta Networks: Improving Mamba2 with Delta Rule",
ICLR 2025), eq. (10), with the state stored as ``S`` of shape ``[k, v]``::

    S_t = exp(g_t) * (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T
    o_t = S_t^T (scale * q_t)

This file is the ground truth that the chunked and Pallas paths are tested against.
"""

import jax
import jax.numpy as jnp

# The reference must be exact in fp32 on every backend: TF32/bf16 matmul passes would make it a
# worse yardstick than the paths it judges.
_HIGHEST = jax.lax.Precision.HIGHEST


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
    if scale is None:
        scale = q_t.shape[-1] ** -0.5
    f32 = lambda x: x.astype(jnp.float32)
    q, k, v, beta, g, s = map(f32, (q_t, k_t, v_t, beta_t, g_t, state))
    # (I - beta k k^T) S = S - beta k (k^T S): the "delta" correction of what S recalls for k.
    recalled = jnp.einsum("bhk,bhkv->bhv", k, s, precision=_HIGHEST)
    erased = s - beta[..., None, None] * k[..., :, None] * recalled[..., None, :]
    written = beta[..., None, None] * k[..., :, None] * v[..., None, :]
    new_state = jnp.exp(g)[..., None, None] * erased + written
    o = jnp.einsum("bhk,bhkv->bhv", scale * q, new_state, precision=_HIGHEST)
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
    dv = v.shape[-1]
    if initial_state is None:
        initial_state = jnp.zeros((b, h, dk, dv), jnp.float32)

    def body(state, xs):
        o_t, state = gated_delta_step(*xs, state, scale=scale)
        return state, o_t

    time_major = [jnp.moveaxis(x, 1, 0) for x in (q, k, v, beta, g)]
    final_state, o = jax.lax.scan(body, initial_state.astype(jnp.float32), time_major)
    return jnp.moveaxis(o, 0, 1), final_state
