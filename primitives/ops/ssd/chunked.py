"""The chunked SSD algorithm in plain XLA (Mamba-2, Dao & Gu 2024, Sec. 6 "the SSD algorithm").

The sequence is cut into chunks of ``l`` steps. Inside a chunk the output is the quadratic
(attention-like) form ``y = (C B^T * L) (dt * x)`` with the decay mask
``L[i, j] = exp(cs_i - cs_j)`` for ``j <= i`` (``cs`` the cumulative log-decay ``dt * A`` from the
chunk start) and 0 above the diagonal; the [p, n] state entering the chunk adds
``exp(cs_i) * S C_i``, and leaves it as ``exp(cs_l) S + sum_j exp(cs_l - cs_j) dt_j x_j B_j^T``.
Every exponent is ``<= 0`` (``A < 0``, ``dt > 0``), so nothing overflows. Everything is float32.

Performance notes (the path is the default on CPU, where it is benchmarked against the
sequential reference):

* One ``fori_loop`` walks the chunks and does all of a chunk's work (the four matmuls, the decay
  mask, the state update) on cache-sized [b, h, l, *] tiles cut from the [b, t, h, *] inputs
  (each loaded one chunk ahead, see :func:`primitives.ops._chunks.chunk_loop`). Batching every
  chunk at once instead materialises [b, h, t/l, l, *] transposes and [t/l, l, l] masks in memory,
  which on CPU costs more than the matmuls themselves. ``chunk_size=64`` is the fastest at
  ``p = n = 64`` (32 and 128 are both slower forward and backward).
* Differentiation goes through the ``custom_vjp`` of
  :func:`primitives.ops._chunks.chunked_recurrence`, with the hand-derived chunk VJP run over the
  chunks in reverse (the same structure as the Pallas backward kernel), reading the chunk-entry
  states the forward saved. Autodiff through the loop would instead save every intermediate of
  every chunk.
* Cumulative sums are matmuls with a triangular 0/1 matrix: ``jnp.cumsum`` lowers to a
  ``reduce-window`` that XLA:CPU fuses into (and recomputes inside) the [l, l] mask loop.
"""

import jax.numpy as jnp

from primitives.ops._chunks import chunked_recurrence
from primitives.ops._chunks import mm as _mm
from primitives.ops._common import pad_time, zero_state


class _Chunk:
    """One chunk's inputs ([b, h, l, ...] tiles) and the decay terms shared by forward and backward."""

    def __init__(self, x, dt, a, B, C):
        self.x, self.dt, self.B, self.C = x, dt, B, C
        l = x.shape[-2]
        causal = jnp.tril(jnp.ones((l, l), bool))
        self.tri = causal.astype(jnp.float32)  # tri[i, j] = 1 for j <= i
        self.cs = _mm("bhj,ij->bhi", a, self.tri)  # log-decay from the chunk start, inclusive
        last = self.cs[..., -1:]
        self.decay_in = jnp.exp(self.cs)  # state entering the chunk -> step i
        self.decay_out = jnp.exp(last - self.cs)  # step j -> chunk end
        self.decay_all = jnp.exp(last)[..., None]  # [b, h, 1, 1] across the whole chunk
        seg = jnp.where(causal, self.cs[..., :, None] - self.cs[..., None, :], -jnp.inf)
        self.mask = jnp.exp(seg)  # L: exp(cs_i - cs_j) on and below the diagonal, 0 above
        self.kl = _mm("bhin,bhjn->bhij", self.C, self.B) * self.mask  # (C B^T) * L
        self.mix = self.kl * self.dt[..., None, :]  # y_intra = mix @ x


def _chunk(x, dt, a, B, C, state):
    """One chunk: [b, h, l, *] tiles and the entering state [b, h, p, n] -> (y, leaving state)."""
    ch = _Chunk(x, dt, a, B, C)
    y = _mm("bhij,bhjp->bhip", ch.mix, ch.x)
    y = y + _mm("bhin,bhpn->bhip", ch.C * ch.decay_in[..., None], state)
    update = _mm("bhjp,bhjn->bhpn", ch.x * (ch.decay_out * ch.dt)[..., None], ch.B)
    return y, ch.decay_all * state + update


def _chunk_vjp(tiles, state, cotangents):
    """The hand-derived VJP of :func:`_chunk` (the same algebra as the Pallas backward kernel)."""
    ch = _Chunk(*tiles)
    dy_c, d_state = cotangents  # d_state: gradient w.r.t. the state leaving the chunk
    w = ch.decay_out * ch.dt  # weight of step j in the chunk's state update

    d_mix = _mm("bhip,bhjp->bhij", dy_c, ch.x)
    dx_c = _mm("bhij,bhip->bhjp", ch.mix, dy_c) + _mm("bhjn,bhpn->bhjp", ch.B * w[..., None], d_state)
    x_ds = _mm("bhjp,bhpn->bhjn", ch.x, d_state)
    dy_s = _mm("bhip,bhpn->bhin", dy_c, state)
    d_scores = d_mix * ch.dt[..., None, :] * ch.mask  # gradient w.r.t. C B^T
    dB_c = w[..., None] * x_ds + _mm("bhij,bhin->bhjn", d_scores, ch.C)
    dC_c = ch.decay_in[..., None] * dy_s + _mm("bhij,bhjn->bhin", d_scores, ch.B)

    d_w = jnp.sum(ch.B * x_ds, axis=-1)
    d_seg = d_mix * ch.mix  # gradient w.r.t. cs_i - cs_j (zero above the diagonal)
    ddt_c = jnp.sum(d_mix * ch.kl, axis=-2) + d_w * ch.decay_out
    d_cs = jnp.sum(d_seg, axis=-1) - jnp.sum(d_seg, axis=-2) - d_w * w
    d_cs = d_cs + ch.decay_in * jnp.sum(ch.C * dy_s, axis=-1)
    d_last = jnp.sum(d_w * w, axis=-1) + ch.decay_all[..., 0, 0] * jnp.sum(state * d_state, axis=(-2, -1))
    d_cs = d_cs.at[..., -1].add(d_last)
    da_c = _mm("bhi,ij->bhj", d_cs, ch.tri)  # reverse cumulative sum

    d_state = ch.decay_all * d_state + _mm("bhip,bhin->bhpn", dy_c * ch.decay_in[..., None], ch.C)
    return dx_c, ddt_c, da_c, dB_c, dC_c, d_state


# (l, x, dt, a, B, C, s0) -> (y, final state), float32 with t a multiple of the chunk length l.
_ssd_core = chunked_recurrence(_chunk, _chunk_vjp)


def ssd_chunked(x, dt, A, B, C, initial_state=None, *, chunk_size=64):
    """Chunked SSD; same contract as :func:`primitives.ops.ssd.reference.ssd_reference`.

    ``dt * A`` is formed outside the ``custom_vjp`` core, so autodiff routes its gradient to
    ``dt`` and ``A``.
    """
    b, t, h, p = x.shape
    f32 = jnp.float32
    if initial_state is None:
        initial_state = zero_state(b, h, p, B.shape[-1])
    chunk = min(chunk_size, t)
    xs, dts, Bs, Cs = (pad_time(v.astype(f32), chunk) for v in (x, dt, B, C))
    a = dts * A.astype(f32)
    y, final_state = _ssd_core(chunk, xs, dts, a, Bs, Cs, initial_state.astype(f32))
    return y[:, :t].astype(x.dtype), final_state
