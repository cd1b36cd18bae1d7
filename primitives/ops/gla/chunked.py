"""GLA in chunked form, in plain XLA: matmuls inside chunks, the [k, v] state carried between them.

Split time into chunks of ``c`` steps and write ``G_i = sum_{s <= i} log_g_s`` for the cumulative
log-gate measured from the chunk start (the chunkwise parallel form of Yang et al. 2024).
With ``S_0`` the state entering the chunk, unrolling the recurrence gives, for step ``i`` of it,

    o_i  = (q_i * exp(G_i)) @ S_0  +  sum_{j <= i} [sum_k q_ik k_jk exp(G_ik - G_jk)] v_j
    S_c  = exp(G_c) * S_0  +  sum_j outer(k_j * exp(G_c - G_j), v_j)

Every exponent above is ``<= 0`` because the gates are, so nothing overflows. The intra-chunk
scores are the delicate part, and take one of two forms, chosen per chunk:

* **Factorised** (the fast path): ``(q_i e^{G_i}) . (k_j e^{-G_j})``, one [c, k] x [k, c] matmul.
  ``e^{-G}`` grows with the chunk's total decay ``-G_c``, so this form is used only while that
  stays below ``_FACTORISED_MAX_DECAY`` for every batch, head and channel of the chunk; then no
  factor or product comes near float32's range and the rounding matches the exact form's.
* **Exact** (strongly decaying gates, where ``e^{-G}`` would overflow float32 once ``-G`` passes
  about 88): the paper's secondary-level chunking. Sub-chunks of ``s`` steps; a query sub-chunk
  ``I`` meets an earlier key sub-chunk ``J < I`` through a matmul with both sides measured from the
  end of sub-chunk ``I - 1`` (so both factors are ``<= 1``), and meets itself through the exact
  pairwise decays.

Performance notes (the path is the default on CPU, where it is benchmarked against the
sequential reference): one ``fori_loop`` walks the chunks and does all of a chunk's work on
cache-sized [b, h, c, *] tiles cut from the [b, t, h, *] inputs, each loaded one chunk ahead (see
:func:`primitives.ops._chunks.chunk_loop`); batching every chunk at once instead materialises
transposed copies of everything, which on CPU costs more than the matmuls. Differentiation goes
through the ``custom_vjp`` of :func:`primitives.ops._chunks.chunked_recurrence`: the forward saves
each chunk's entering state, and the backward walks the chunks in reverse, recomputing one chunk
at a time and pulling the cotangents back through it with ``jax.vjp``. Cumulative sums are
matmuls with a triangular 0/1 matrix (``jnp.cumsum`` lowers to a ``reduce-window`` that XLA:CPU
fuses into its consumers and recomputes there).
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax

from primitives.ops._chunks import chunked_recurrence
from primitives.ops._chunks import mm as _mm
from primitives.ops._common import pad_time, resolve_scale, zero_state

# Largest total in-chunk decay -G_c (any batch, head, channel) that uses the factorised scores:
# factors stay below e^30 ~ 1e13, far from float32 overflow (~3e38) even after summing a
# masked-out [c, k] x [k, c] product of large q and k.
_FACTORISED_MAX_DECAY = 30.0


def gla_chunked(q, k, v, log_g, initial_state=None, scale=None, chunk_size=64, sub_chunk=16):
    """GLA by chunks; same arguments and results as :func:`primitives.ops.gla.reference.gla_reference`.

    Args:
        chunk_size: steps per chunk; ``t`` is zero-padded to a multiple of it (capped at ``t``).
        sub_chunk: largest sub-chunk of the exact (strong-decay) form (the largest divisor of the
            chunk not above it is used); its pairwise-decay work grows with it.
    """
    b, t, h, dk = q.shape
    if initial_state is None:
        initial_state = zero_state(b, h, dk, v.shape[-1])
    f32 = jnp.float32
    chunk = min(chunk_size, t)
    sub = max(d for d in range(1, min(sub_chunk, chunk) + 1) if chunk % d == 0)
    scaled_q = q.astype(f32) * resolve_scale(scale, dk)
    qs, ks, vs, gs = (pad_time(x.astype(f32), chunk) for x in (scaled_q, k, v, log_g))
    o, final_state = _gla_core(sub)(chunk, qs, ks, vs, gs, initial_state.astype(f32))
    return o[:, :t].astype(q.dtype), final_state


def _cumsum(g):
    """Inclusive cumulative sum over axis -2 of [..., l, k], as a triangular matmul."""
    l = g.shape[-2]
    return _mm("...jk,ij->...ik", g, jnp.tril(jnp.ones((l, l), jnp.float32)))


def _factorised_ok(g):
    """Whether a [b, h, l, k] tile of log-gates may use the factorised intra-chunk scores."""
    return -jnp.min(jnp.sum(g, axis=-2)) <= _FACTORISED_MAX_DECAY


def _chunk(q, k, v, g, state, *, factorised, sub):
    """One chunk: [b, h, l, *] tiles and the entering state [b, h, k, v] -> (o, leaving state)."""
    big_g = _cumsum(g)  # [b, h, l, k] log decay from the chunk start, inclusive
    g_last = big_g[..., -1:, :]  # [b, h, 1, k]
    q_in = q * jnp.exp(big_g)  # queries measured from the chunk start
    k_out = k * jnp.exp(g_last - big_g)  # keys measured to the chunk end
    l = q.shape[-2]
    causal = jnp.tril(jnp.ones((l, l), bool))
    if factorised:
        # Keys measured from the chunk start directly (not k_out * exp(-g_last)): mathematically the
        # same, but going through g_last would leak round-off gradients into later positions' gates.
        scores = _mm("bhik,bhjk->bhij", q_in, k * jnp.exp(-big_g))
    else:
        scores = _exact_scores(q, k, big_g, sub)
    scores = jnp.where(causal, scores, 0.0)
    o = _mm("bhij,bhjv->bhiv", scores, v) + _mm("bhik,bhkv->bhiv", q_in, state)
    new_state = jnp.exp(g_last[..., 0, :, None]) * state + _mm("bhjk,bhjv->bhkv", k_out, v)
    return o, new_state


def _run_chunk(q, k, v, g, state, sub):
    """``_chunk`` with the scores' form chosen from the tile's gates."""
    fast = functools.partial(_chunk, factorised=True, sub=sub)
    exact = functools.partial(_chunk, factorised=False, sub=sub)
    return lax.cond(_factorised_ok(g), fast, exact, q, k, v, g, state)


def _chunk_vjp(tiles, state, cotangents, *, sub):
    """VJP of :func:`_run_chunk`: ``jax.vjp`` of the scores' form the gates select."""

    def pull_back(factorised):
        def run(tiles, state, cotangents):
            chunk_fn = functools.partial(_chunk, factorised=factorised, sub=sub)
            return jax.vjp(chunk_fn, *tiles, state)[1](cotangents)

        return run

    return lax.cond(_factorised_ok(tiles[3]), pull_back(True), pull_back(False), tiles, state, cotangents)


@functools.cache
def _gla_core(sub):
    """``(l, q, k, v, g, s0) -> (o, final state)`` (float32, t a multiple of l) for sub-chunk ``sub``."""
    return chunked_recurrence(functools.partial(_run_chunk, sub=sub), functools.partial(_chunk_vjp, sub=sub))


def _exact_scores(q, k, big_g, sub: int):
    """Causal decayed scores ``A_ij = sum_k q_ik k_jk exp(G_ik - G_jk)``, ``j <= i``, per chunk.

    Args:
        q, k, big_g: [..., c, k] scaled queries, keys and cumulative log-gates of each chunk.
        sub: sub-chunk length ``s`` (divides ``c``).

    Returns:
        [..., c, c] scores, zero above the diagonal.
    """
    c = q.shape[-2]
    s = sub
    m = c // s
    q, k, g = (x.reshape(*x.shape[:-2], m, s, x.shape[-1]) for x in (q, k, big_g))

    # Diagonal blocks: exact pairwise decays. Masking the exponent (not the result) keeps exp
    # finite above the diagonal, and `where` rather than `minimum` keeps the gradient exact at
    # ties (G_i == G_j happens whenever gates are 0).
    causal = jnp.tril(jnp.ones((s, s), bool))[:, :, None]
    pair = jnp.where(causal, g[..., :, None, :] - g[..., None, :, :], 0.0)  # [..., m, s, s, k]
    diag = jnp.sum(q[..., :, None, :] * k[..., None, :, :] * jnp.exp(pair), axis=-1)
    diag = jnp.where(causal[..., 0], diag, 0.0)  # [..., m, s, s]

    # Off-diagonal blocks: both factors measured from r_I, the end of sub-chunk I - 1.
    r = jnp.concatenate([jnp.zeros_like(g[..., :1, -1, :]), g[..., :-1, -1, :]], axis=-2)
    q_off = q * jnp.exp(g - r[..., :, None, :])  # [..., m, s, k]
    below = jnp.tril(jnp.ones((m, m), bool), -1)  # J < I
    k_exp = jnp.where(below[:, :, None, None], r[..., :, None, None, :] - g[..., None, :, :, :], 0.0)
    k_off = k[..., None, :, :, :] * jnp.exp(k_exp)  # [..., m(I), m(J), s, k]
    off = _mm("...Iik,...IJjk->...IiJj", q_off, k_off)
    off = jnp.where(below[:, None, :, None], off, 0.0)

    on_diag = jnp.eye(m, dtype=bool)[:, None, :, None]
    blocks = jnp.where(on_diag, diag[..., :, :, None, :], off)  # [..., m, s, m, s]
    return blocks.reshape(*blocks.shape[:-4], c, c)
