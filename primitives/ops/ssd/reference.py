"""The Mamba-2 SSD recurrence, one time step at a time, written to be read.

Mamba-2 (Dao & Gu 2024, "Transformers are SSMs: Generalized Models and Efficient Algorithms Through
Structured State Space Duality", Sec. 3, the SSD layer with a scalar-times-identity ``A``) runs, per
head, the selective state-space recurrence

    S_t = exp(dt_t * A) * S_{t-1} + dt_t * outer(x_t, B_t)      S_t: [p, n]
    y_t = S_t @ C_t                                             y_t: [p]

This file is the ground truth that the chunked and Pallas paths are tested against. The ``D`` skip
connection and the output gate belong to the caller.
"""

import jax.numpy as jnp

from primitives.ops._common import scan_time, zero_state


def ssd_step(x_t, dt_t, A, B_t, C_t, state):
    """One step of the SSD recurrence, for token-by-token decoding.

    Args:
        x_t: [b, h, p] inputs at this step.
        dt_t: [b, h] positive step sizes (after softplus and bias).
        A: [h] negative reals; the per-step decay is ``exp(dt_t * A)``.
        B_t: [b, h, n] input projections.
        C_t: [b, h, n] output projections.
        state: [b, h, p, n] the state ``S_{t-1}``.

    Returns:
        ``(y_t, new_state)``: y_t [b, h, p] in ``x_t``'s dtype and the float32 state ``S_t``.
    """
    f32 = jnp.float32
    dt_t = dt_t.astype(f32)
    decay = jnp.exp(dt_t * A.astype(f32))  # [b, h]
    update = jnp.einsum("bh,bhp,bhn->bhpn", dt_t, x_t.astype(f32), B_t.astype(f32))
    new_state = decay[..., None, None] * state.astype(f32) + update
    y_t = jnp.einsum("bhpn,bhn->bhp", new_state, C_t.astype(f32))
    return y_t.astype(x_t.dtype), new_state


def ssd_reference(x, dt, A, B, C, initial_state=None):
    """The SSD recurrence as a ``lax.scan`` over time.

    Args:
        x: [b, t, h, p] inputs.
        dt: [b, t, h] positive step sizes.
        A: [h] negative reals.
        B: [b, t, h, n] input projections (groups already broadcast to heads).
        C: [b, t, h, n] output projections.
        initial_state: [b, h, p, n] or None for zeros.

    Returns:
        ``(y, final_state)``: y [b, t, h, p] in ``x``'s dtype, final_state [b, h, p, n] float32.
    """
    b, _, h, p = x.shape
    if initial_state is None:
        initial_state = zero_state(b, h, p, B.shape[-1])

    def step(x_t, dt_t, B_t, C_t, state):  # A is the same at every step
        return ssd_step(x_t, dt_t, A, B_t, C_t, state)

    return scan_time(step, (x, dt, B, C), initial_state)
