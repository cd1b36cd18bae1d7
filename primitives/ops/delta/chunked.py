"""Gated delta rule, chunked: matmuls inside each chunk, a scan over chunks carrying the state.

Within a chunk of length ``c`` starting from state ``S0``, write the recurrence as
``S_i = a_i S_{i-1} + k_i d_i^T`` with ``a_i = exp(g_i)`` and the *delta*
``d_i = beta_i (v_i - a_i S_{i-1}^T k_i)``. With ``G_i`` the chunk-local cumulative log decay,
unrolling ``S_{i-1}`` gives a unit lower-triangular system for all deltas at once
(the WY representation / UT transform of Yang et al. 2024, "Parallelizing Linear Transformers with
the Delta Rule over Sequence Length", with the gate decay of Gated DeltaNet, Yang et al. 2025)::

    (I + A) D = diag(beta) V - diag(beta * exp(G)) K S0,
    A_ij = beta_i exp(G_i - G_j) k_i . k_j   for j < i (0 otherwise)

so ``D = U - W S0`` with ``U = T diag(beta) V`` and ``W = T diag(beta exp(G)) K``, neither of which
depends on the state. ``T = (I + A)^-1`` is the UT transform; :func:`unit_lower_inverse` builds it
from matmuls alone. Then, with causal mask ``M`` (``j <= i``)::

    O   = scale * (diag(exp(G)) Q S0 + (M * exp(G_i - G_j) * Q K^T) D)
    S_c = exp(G_c) S0 + (diag(exp(G_c - G)) K)^T D

Every exponent is ``<= 0`` so nothing overflows, and no decay is ever divided by.
"""

import jax
import jax.numpy as jnp

# fp32 parity with the reference on every backend: TF32 matmul passes would exceed the tolerance.
_HIGHEST = jax.lax.Precision.HIGHEST


def unit_lower_inverse(a, precision=_HIGHEST):
    """``(I + a)^-1`` for strictly lower-triangular ``a`` of shape ``[..., c, c]``.

    Recursive block inversion run bottom-up: with ``D`` the inverse of the diagonal blocks of size
    ``s`` and ``E`` the part of ``a`` joining pairs of them, ``[[L11, 0], [L21, L22]]^-1`` is
    ``D - D E D``, giving the diagonal blocks of size ``2s``. ``log2(c)`` rounds of matmuls, so it
    compiles fast, suits tensor cores better than a batched ``trsm`` of small matrices, and also
    runs inside the Pallas kernel (masks come from iota, not captured constants).
    """
    c = a.shape[-1]
    rows = jax.lax.broadcasted_iota(jnp.int32, (c, c), 0)
    cols = jax.lax.broadcasted_iota(jnp.int32, (c, c), 1)
    inv = jnp.broadcast_to((rows == cols).astype(a.dtype), a.shape)
    s = 1
    while s < c:
        joins = (rows // (2 * s) == cols // (2 * s)) & (rows // s != cols // s)
        e = jnp.where(joins, a, 0.0)
        inv = inv - jnp.matmul(jnp.matmul(inv, e, precision=precision), inv, precision=precision)
        s *= 2
    return inv


def _to_chunks(x, n, c):
    """``[b, t, h, ...]`` -> ``[n, b, h, c, ...]``, zero-padding time to ``n * c``."""
    pad = n * c - x.shape[1]
    x = jnp.pad(x.astype(jnp.float32), [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2))
    x = x.reshape(x.shape[0], n, c, *x.shape[2:])
    return jnp.moveaxis(x, (1, 3), (0, 2))


def _intra_chunk(q, k, v, beta, g):
    """What a chunk needs that does not depend on its initial state; all ``[n, b, h, c, ...]``."""
    c = k.shape[-2]
    big_g = jnp.cumsum(g, axis=-1)
    causal = jnp.tril(jnp.ones((c, c), bool))
    strict = jnp.tril(jnp.ones((c, c), bool), k=-1)
    # Mask before exp: above the diagonal G_i - G_j > 0 and could overflow.
    decay = jnp.exp(jnp.where(causal, big_g[..., :, None] - big_g[..., None, :], -jnp.inf))
    kk = jnp.einsum("nbhik,nbhjk->nbhij", k, k, precision=_HIGHEST)
    t_inv = unit_lower_inverse(jnp.where(strict, beta[..., :, None] * decay * kk, 0.0))
    u = jnp.einsum("nbhij,nbhjv->nbhiv", t_inv, beta[..., None] * v, precision=_HIGHEST)
    w_rhs = (beta * jnp.exp(big_g))[..., None] * k
    w = jnp.einsum("nbhij,nbhjk->nbhik", t_inv, w_rhs, precision=_HIGHEST)
    qk = jnp.einsum("nbhik,nbhjk->nbhij", q, k, precision=_HIGHEST)
    attn = jnp.where(causal, decay * qk, 0.0)
    q_decayed = jnp.exp(big_g)[..., None] * q
    k_to_end = jnp.exp(big_g[..., -1:] - big_g)[..., None] * k
    return u, w, attn, q_decayed, k_to_end, jnp.exp(big_g[..., -1])


def _across_chunks(state, chunk):
    """One chunk given its initial state ``[b, h, k, v]``: returns (final state, output)."""
    u, w, attn, q_decayed, k_to_end, chunk_decay = chunk
    delta = u - jnp.einsum("bhck,bhkv->bhcv", w, state, precision=_HIGHEST)
    o = jnp.einsum("bhck,bhkv->bhcv", q_decayed, state, precision=_HIGHEST)
    o = o + jnp.einsum("bhij,bhjv->bhiv", attn, delta, precision=_HIGHEST)
    state = chunk_decay[..., None, None] * state
    state = state + jnp.einsum("bhck,bhcv->bhkv", k_to_end, delta, precision=_HIGHEST)
    return state, o


def gated_delta_chunked(q, k, v, beta, g, initial_state=None, scale=None, chunk_size=64):
    """The gated delta rule by chunks (see the module docstring for the algebra).

    Args:
        q, k: ``[b, t, h, k]``; v: ``[b, t, h, v]``; beta, g: ``[b, t, h]``.
        initial_state: ``[b, h, k, v]``, or None for zeros.
        scale: query scale; defaults to ``k ** -0.5``.
        chunk_size: tokens per chunk (shrunk to ``t`` for short inputs). Time is padded to a
            multiple with ``k = v = beta = g = 0``, which leaves the state unchanged.

    Returns:
        ``(o, final_state)``: ``o`` is ``[b, t, h, v]`` in ``q``'s dtype, ``final_state`` is
        ``[b, h, k, v]`` float32.
    """
    b, t, h, dk = k.shape
    dv = v.shape[-1]
    scale = dk**-0.5 if scale is None else scale
    if initial_state is None:
        initial_state = jnp.zeros((b, h, dk, dv), jnp.float32)
    out_dtype = q.dtype
    c = min(chunk_size, t)
    n = -(-t // c)
    q = q.astype(jnp.float32) * scale
    chunks = _intra_chunk(*(_to_chunks(x, n, c) for x in (q, k, v, beta, g)))
    final_state, o = jax.lax.scan(_across_chunks, initial_state.astype(jnp.float32), chunks)
    o = jnp.moveaxis(o, (0, 3), (1, 2)).reshape(b, n * c, h, dv)[:, :t]
    return o.astype(out_dtype), final_state
