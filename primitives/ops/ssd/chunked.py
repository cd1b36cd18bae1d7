"""The chunked SSD algorithm in plain XLA (Mamba-2, Dao & Gu 2024, Sec. 6 "the SSD algorithm").

The sequence is cut into chunks of ``l`` steps. Inside a chunk the output is the quadratic
(attention-like) form ``y = (C B^T * L) (dt * x)`` with the decay mask
``L[i, j] = exp(sum_{j<k<=i} dt_k A)`` for ``j <= i`` and 0 above the diagonal; across chunks a
``lax.scan`` carries the [p, n] state, whose contribution to a chunk is ``exp(cumsum) * C S``.
Everything is computed in float32.
"""

import jax
import jax.numpy as jnp

_HIGHEST = jax.lax.Precision.HIGHEST


def pad_time(arrays, chunk):
    """Zero-pad axis 1 of each array up to a multiple of ``chunk``.

    A padded step has ``dt = 0`` (so decay ``exp(0) = 1``) and ``x = B = 0``, hence it leaves the
    state unchanged; its outputs are sliced off by the caller.
    """
    t = arrays[0].shape[1]
    pad = -t % chunk
    if pad == 0:
        return arrays
    return tuple(jnp.pad(a, [(0, 0), (0, pad)] + [(0, 0)] * (a.ndim - 2)) for a in arrays)


def _segsum(a):
    """[..., l] -> [..., l, l]: ``out[i, j] = sum_{j<k<=i} a_k`` for ``j <= i``, ``-inf`` above.

    Summed directly (not as a difference of cumulative sums) so no precision is lost to large
    cumulative decays; the ``-inf`` is written before ``exp`` so gradients never see ``inf``.
    """
    l = a.shape[-1]
    i = jnp.arange(l)[:, None]
    j = jnp.arange(l)[None, :]
    terms = jnp.where(j < i, jnp.broadcast_to(a[..., :, None], a.shape + (l,)), 0.0)
    sums = jnp.cumsum(terms, axis=-2)
    return jnp.where(j <= i, sums, -jnp.inf)


def ssd_chunked_core(x, dt, a, B, C, initial_state, chunk):
    """Chunked SSD on float32 inputs whose time axis is a multiple of ``chunk``.

    Args:
        x: [b, t, h, p]; dt: [b, t, h]; a: [b, t, h] log-decays ``dt * A``;
        B, C: [b, t, h, n]; initial_state: [b, h, p, n]; chunk: chunk length ``l``.

    Returns:
        ``(y, final_state)``: y [b, t, h, p] and final_state [b, h, p, n], both float32.
    """
    b, t, h, p = x.shape
    c = t // chunk
    xc, Bc, Cc = (v.reshape(b, c, chunk, h, -1) for v in (x, B, C))
    dtc, ac = (v.reshape(b, c, chunk, h) for v in (dt, a))
    a_hl = jnp.moveaxis(ac, 2, 3)  # [b, c, h, l]
    decay = jnp.exp(_segsum(a_hl))  # [b, c, h, l(i), l(j)]
    cum_decay = jnp.exp(jnp.cumsum(a_hl, axis=-1))  # decay from chunk start to step i

    scores = jnp.einsum("bcihn,bcjhn->bchij", Cc, Bc, precision=_HIGHEST)
    mix = scores * decay * jnp.moveaxis(dtc, 2, 3)[..., None, :]
    y_diag = jnp.einsum("bchij,bcjhp->bcihp", mix, xc, precision=_HIGHEST)

    to_end = decay[..., -1, :] * jnp.moveaxis(dtc, 2, 3)  # [b, c, h, l]
    chunk_states = jnp.einsum("bchl,bclhp,bclhn->bchpn", to_end, xc, Bc, precision=_HIGHEST)
    chunk_decay = cum_decay[..., -1]  # [b, c, h]

    def carry_state(state, inputs):
        step_decay, step_state = inputs
        return step_decay[..., None, None] * state + step_state, state

    final_state, entry_states = jax.lax.scan(
        carry_state,
        initial_state,
        (jnp.moveaxis(chunk_decay, 1, 0), jnp.moveaxis(chunk_states, 1, 0)),
    )
    entry_states = jnp.moveaxis(entry_states, 0, 1)  # [b, c, h, p, n], state entering chunk c
    y_off = jnp.einsum("bclhn,bchpn,bchl->bclhp", Cc, entry_states, cum_decay, precision=_HIGHEST)
    return (y_diag + y_off).reshape(b, t, h, p), final_state


def ssd_chunked(x, dt, A, B, C, initial_state=None, *, chunk_size=64):
    """Chunked SSD; same contract as :func:`primitives.ops.ssd.reference.ssd_reference`."""
    b, t, h, p = x.shape
    n = B.shape[-1]
    f32 = jnp.float32
    if initial_state is None:
        initial_state = jnp.zeros((b, h, p, n), f32)
    chunk = min(chunk_size, t)
    xs, dts, Bs, Cs = pad_time(tuple(v.astype(f32) for v in (x, dt, B, C)), chunk)
    a = dts * A.astype(f32)
    y, final_state = ssd_chunked_core(xs, dts, a, Bs, Cs, initial_state.astype(f32), chunk)
    return y[:, :t].astype(x.dtype), final_state
