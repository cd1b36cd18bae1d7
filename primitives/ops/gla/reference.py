"""The gated linear attention (GLA) recurrence, one time step at a time, written to be read.

GLA (Yang et al. 2024, "Gated Linear Attention Transformers with Hardware-Efficient Training",
Sec. 4.1, with the per-key-channel gate ``alpha_t``) runs, per head, the recurrence

    S_t = diag(exp(log_g_t)) S_{t-1} + outer(k_t, v_t)       S_t: [k, v]
    o_t = (scale * q_t) @ S_t                                o_t: [v]

where ``log_g_t <= 0`` is the log of the forget gate (the paper's ``alpha_t = exp(log_g_t)``).

This file is the ground truth that the chunked and Pallas paths are tested against. Output gating,
normalisation and the gate's parameterisation belong to the caller.
"""

import functools

import jax.numpy as jnp

from primitives.ops._common import resolve_scale, scan_time, zero_state


def gla_step(q_t, k_t, v_t, log_g_t, state, scale=None):
    """One step of the GLA recurrence, for token-by-token decoding.

    Args:
        q_t: [b, h, k] queries at this step.
        k_t: [b, h, k] keys.
        v_t: [b, h, v] values.
        log_g_t: [b, h, k] log forget gate, ``<= 0``.
        state: [b, h, k, v] the state ``S_{t-1}``.
        scale: factor on ``q_t``; defaults to ``k ** -0.5``.

    Returns:
        ``(o_t, new_state)``: o_t [b, h, v] in ``q_t``'s dtype and the float32 state ``S_t``.
    """
    f32 = jnp.float32
    scale = resolve_scale(scale, q_t.shape[-1])
    decay = jnp.exp(log_g_t.astype(f32))[..., None]  # [b, h, k, 1]
    update = jnp.einsum("bhk,bhv->bhkv", k_t.astype(f32), v_t.astype(f32))
    new_state = decay * state.astype(f32) + update
    o_t = jnp.einsum("bhk,bhkv->bhv", scale * q_t.astype(f32), new_state)
    return o_t.astype(q_t.dtype), new_state


def gla_reference(q, k, v, log_g, initial_state=None, scale=None):
    """The GLA recurrence as a ``lax.scan`` over time.

    Args:
        q: [b, t, h, k] queries.
        k: [b, t, h, k] keys.
        v: [b, t, h, v] values.
        log_g: [b, t, h, k] log forget gate, ``<= 0``.
        initial_state: [b, h, k, v] or None for zeros.
        scale: factor on ``q``; defaults to ``k ** -0.5``.

    Returns:
        ``(o, final_state)``: o [b, t, h, v] in ``q``'s dtype, final_state [b, h, k, v] float32.
    """
    b, _, h, dk = q.shape
    if initial_state is None:
        initial_state = zero_state(b, h, dk, v.shape[-1])
    return scan_time(functools.partial(gla_step, scale=scale), (q, k, v, log_g), initial_state)
