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
``_chunk_loop``); batching every chunk at once instead materialises transposed copies of
everything, which on CPU costs more than the matmuls. Differentiation goes through a
``custom_vjp``: the forward saves each chunk's entering state, and the backward walks the chunks
in reverse, recomputing one chunk at a time and pulling the cotangents back through it with
``jax.vjp``. Cumulative sums are matmuls with a triangular 0/1 matrix (``jnp.cumsum`` lowers to a
``reduce-window`` that XLA:CPU fuses into its consumers and recomputes there).
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax

from primitives.ops._chunks import chunk_loop as _chunk_loop
from primitives.ops._chunks import mm as _mm
from primitives.ops._chunks import store_chunk as _store
from primitives.ops.gla._common import pad_time, resolve_scale, zero_state

# Largest total in-chunk decay -G_c (any batch, head, channel) that uses the factorised scores:
# factors stay below e^30 ~ 1e13, far from float32 overflow (~3e38) even after summing a
# masked-out [c, k] x [k, c] product of large q and k.
_FACTORISED_MAX_DECAY = 30.0


def gla_chunked(q, k, v, log_g, initial_state=None, scale=None, chunk_size=64, sub_chunk=16):
    """GLA by chunks; same contract as ``gla_reference``.

    Args:
        q: [b, t, h, k] queries.
        k: [b, t, h, k] keys.
        v: [b, t, h, v] values.
        log_g: [b, t, h, k] log forget gate, ``<= 0``.
        initial_state: [b, h, k, v] or None for zeros.
        scale: factor on ``q``; defaults to ``k ** -0.5``.
        chunk_size: steps per chunk; ``t`` is zero-padded to a multiple of it (capped at ``t``).
        sub_chunk: largest sub-chunk of the exact (strong-decay) form (the largest divisor of the
            chunk not above it is used); its pairwise-decay work grows with it.

    Returns:
        ``(o, final_state)``: o [b, t, h, v] in ``q``'s dtype, final_state [b, h, k, v] float32.
    """
    t, dk = q.shape[1], q.shape[-1]
    if initial_state is None:
        initial_state = zero_state(q, v)
    f32 = jnp.float32
    chunk = min(chunk_size, t)
    sub = max(d for d in range(1, min(sub_chunk, chunk) + 1) if chunk % d == 0)
    scaled_q = q.astype(f32) * resolve_scale(scale, dk)
    qs, ks, vs, gs = (pad_time(x.astype(f32), chunk) for x in (scaled_q, k, v, log_g))
    o, final_state = _gla_core(chunk, sub, qs, ks, vs, gs, initial_state.astype(f32))
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


def _forward(q, k, v, g, s0, l, sub, save_states):
    n = q.shape[1] // l

    def body(c, tiles, carry):
        state, o, states = carry
        if save_states:
            states = lax.dynamic_update_index_in_dim(states, state, c, 0)
        o_c, state = _run_chunk(*tiles, state, sub)
        return state, _store(o, o_c, c, l), states

    o = jnp.zeros(v.shape, jnp.float32)
    states = jnp.zeros((n if save_states else 0, *s0.shape), jnp.float32)
    final, o, states = _chunk_loop(n, l, (q, k, v, g), body, (s0, o, states))
    return o, final, states


def _backward(q, k, v, g, states, do, d_final, l, sub):
    n = q.shape[1] // l

    def body(c, tiles, carry):
        d_state, *bufs = carry  # d_state: cotangent of the state leaving chunk c
        *tiles, do_c = tiles
        state = lax.dynamic_index_in_dim(states, c, 0, keepdims=False)
        cotangents = (do_c, d_state)

        def pull_back(factorised):
            def run(tiles, state, cotangents):
                chunk_fn = functools.partial(_chunk, factorised=factorised, sub=sub)
                return jax.vjp(chunk_fn, *tiles, state)[1](cotangents)

            return run

        *grads, d_state = lax.cond(
            _factorised_ok(tiles[3]), pull_back(True), pull_back(False), tuple(tiles), state, cotangents
        )
        bufs = tuple(_store(buf, grad, c, l) for buf, grad in zip(bufs, grads))
        return (d_state, *bufs)

    zeros = tuple(jnp.zeros_like(x) for x in (q, k, v, g))
    d_s0, *grads = _chunk_loop(n, l, (q, k, v, g, do), body, (d_final, *zeros), reverse=True)
    return (*grads, d_s0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _gla_core(chunk, sub, q, k, v, g, s0):
    """Float32 [b, t, h, *] inputs with t a multiple of ``chunk`` -> (o, final state)."""
    o, final, _ = _forward(q, k, v, g, s0, chunk, sub, save_states=False)
    return o, final


def _gla_core_fwd(chunk, sub, q, k, v, g, s0):
    o, final, states = _forward(q, k, v, g, s0, chunk, sub, save_states=True)
    return (o, final), (q, k, v, g, states)


def _gla_core_bwd(chunk, sub, residuals, cotangents):
    do, d_final = cotangents
    return _backward(*residuals, do, d_final, chunk, sub)


_gla_core.defvjp(_gla_core_fwd, _gla_core_bwd)


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
