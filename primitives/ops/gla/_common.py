"""Small helpers shared by the GLA paths: default scale, zero state, time padding."""

import jax.numpy as jnp


def resolve_scale(scale, dk: int) -> float:
    """The factor applied to ``q``: ``scale`` if given, else ``dk ** -0.5``."""
    return dk**-0.5 if scale is None else scale


def zero_state(q, v):
    """A float32 zero state [b, h, k, v] matching ``q`` [b, t, h, k] and ``v`` [b, t, h, v]."""
    b, _, h, dk = q.shape
    return jnp.zeros((b, h, dk, v.shape[-1]), jnp.float32)


def pad_time(x, multiple: int):
    """Zero-pads axis 1 (time) of ``x`` up to a multiple of ``multiple``.

    Zero keys and values add nothing to the state and a zero log-gate does not decay it, so the
    final state after the padded steps equals the state at the last real step.
    """
    t = x.shape[1]
    pad = -t % multiple
    if pad == 0:
        return x
    widths = [(0, 0)] * x.ndim
    widths[1] = (0, pad)
    return jnp.pad(x, widths)
