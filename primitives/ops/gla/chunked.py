"""GLA in chunked form, in plain XLA: matmuls inside chunks, a scan over chunks between them.

Split time into chunks of ``c`` steps and write ``G_i = sum_{s <= i} log_g_s`` for the cumulative
log-gate measured from the chunk start (the chunkwise parallel form of Yang et al. 2024).
With ``S_0`` the state entering the chunk, unrolling the recurrence gives, for step ``i`` of it,

    o_i  = (q_i * exp(G_i)) @ S_0  +  sum_{j <= i} [sum_k q_ik k_jk exp(G_ik - G_jk)] v_j
    S_c  = exp(G_c) * S_0  +  sum_j outer(k_j * exp(G_c - G_j), v_j)

Every exponent above is ``<= 0`` because the gates are, so nothing overflows. The intra-chunk
scores are the delicate part: the textbook factorisation ``(q_i e^{G_i}) . (k_j e^{-G_j})``
overflows float32 once ``-G`` passes about 88 (a chunk of 32 steps at ``log_g = -3``). Instead they
use the paper's secondary-level chunking: sub-chunks of ``s`` steps; a query sub-chunk ``I`` meets an
earlier key sub-chunk ``J < I`` through a matmul with both sides measured from the end of sub-chunk
``I - 1`` (so both factors are ``<= 1``), and meets itself through the exact pairwise decays.
"""

import jax
import jax.numpy as jnp

from primitives.ops.gla._common import pad_time, resolve_scale, zero_state

# The paths are checked against the sequential reference at float32 tolerances; TF32 matmuls
# (the default for float32 on GPU) would not meet them.
_PRECISION = jax.lax.Precision.HIGHEST


def gla_chunked(q, k, v, log_g, initial_state=None, scale=None, chunk_size=64, sub_chunk=16):
    """GLA by chunks; same contract as ``gla_reference``.

    Args:
        q: [b, t, h, k] queries.
        k: [b, t, h, k] keys.
        v: [b, t, h, v] values.
        log_g: [b, t, h, k] log forget gate, ``<= 0``.
        initial_state: [b, h, k, v] or None for zeros.
        scale: factor on ``q``; defaults to ``k ** -0.5``.
        chunk_size: steps per chunk; ``t`` is zero-padded up to a multiple of it.
        sub_chunk: largest sub-chunk inside a chunk (the largest divisor of ``chunk_size`` not
            above it is used); the pairwise-decay work grows with it.

    Returns:
        ``(o, final_state)``: o [b, t, h, v] in ``q``'s dtype, final_state [b, h, k, v] float32.
    """
    b, t, h, dk = q.shape
    dv = v.shape[-1]
    if initial_state is None:
        initial_state = zero_state(q, v)
    scaled_q = q.astype(jnp.float32) * resolve_scale(scale, dk)
    qc, kc, vc, gc = (_to_chunks(x, chunk_size) for x in (scaled_q, k, v, log_g))
    g = jnp.cumsum(gc, axis=-2)  # [b, h, n, c, k] log decay from the chunk start, inclusive
    g_last = g[..., -1:, :]  # [b, h, n, 1, k]

    scores = _intra_chunk_scores(qc, kc, g, sub_chunk)  # [b, h, n, c, c]
    o_intra = jnp.einsum("bhnij,bhnjv->bhniv", scores, vc, precision=_PRECISION)
    k_to_end = kc * jnp.exp(g_last - g)
    chunk_updates = jnp.einsum("bhnck,bhncv->bhnkv", k_to_end, vc, precision=_PRECISION)
    starts, final_state = _scan_chunk_states(
        chunk_updates, jnp.exp(g_last[..., 0, :]), initial_state.astype(jnp.float32)
    )
    o_inter = jnp.einsum("bhnck,bhnkv->bhncv", qc * jnp.exp(g), starts, precision=_PRECISION)

    n, c = qc.shape[2:4]
    o = (o_intra + o_inter).transpose(0, 2, 3, 1, 4).reshape(b, n * c, h, dv)[:, :t]
    return o.astype(q.dtype), final_state


def _to_chunks(x, c: int):
    """[b, t, h, d] -> float32 [b, h, n, c, d], zero-padding time to a multiple of ``c``."""
    x = pad_time(x.astype(jnp.float32), c)
    b, tp, h, d = x.shape
    return x.reshape(b, tp // c, c, h, d).transpose(0, 3, 1, 2, 4)


def _scan_chunk_states(updates, decays, initial_state):
    """States entering each chunk [b, h, n, k, v], and the final state [b, h, k, v].

    ``updates`` [b, h, n, k, v] is each chunk's own contribution to the state at its end;
    ``decays`` [b, h, n, k] is each chunk's total per-key-channel decay.
    """

    def step(state, inputs):
        update, decay = inputs
        return decay[..., None] * state + update, state

    xs = (jnp.moveaxis(updates, 2, 0), jnp.moveaxis(decays, 2, 0))
    final_state, starts = jax.lax.scan(step, initial_state, xs)
    return jnp.moveaxis(starts, 0, 2), final_state


def _intra_chunk_scores(q, k, g, sub_chunk: int):
    """Causal decayed scores ``A_ij = sum_k q_ik k_jk exp(G_ik - G_jk)``, ``j <= i``, per chunk.

    Args:
        q, k, g: [..., c, k] scaled queries, keys and cumulative log-gates of each chunk.
        sub_chunk: upper bound on the sub-chunk length ``s``.

    Returns:
        [..., c, c] scores, zero above the diagonal.
    """
    c = q.shape[-2]
    s = max(d for d in range(1, min(sub_chunk, c) + 1) if c % d == 0)
    m = c // s
    q, k, g = (x.reshape(*x.shape[:-2], m, s, x.shape[-1]) for x in (q, k, g))

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
    off = jnp.einsum("...Iik,...IJjk->...IiJj", q_off, k_off, precision=_PRECISION)
    off = jnp.where(below[:, None, :, None], off, 0.0)

    on_diag = jnp.eye(m, dtype=bool)[:, None, :, None]
    blocks = jnp.where(on_diag, diag[..., :, :, None, :], off)  # [..., m, s, m, s]
    return blocks.reshape(*blocks.shape[:-4], c, c)
