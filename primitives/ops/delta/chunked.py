"""Gated delta rule, chunked: matmuls inside each chunk, a loop over chunks carrying the state.

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

Performance notes (the path is the default on CPU, where it is benchmarked against the
sequential reference): one ``fori_loop`` walks the chunks and does all of a chunk's work on
cache-sized [b, h, c, *] tiles cut from the [b, t, h, *] inputs, each loaded one chunk ahead (see
:func:`primitives.ops._chunks.chunk_loop`); batching every chunk at once instead materialises transposed copies and
[t/c, c, c] intermediates in memory, which on CPU costs more than the matmuls. Differentiation
goes through a ``custom_vjp``: the forward saves each chunk's entering state, and the backward
walks the chunks in reverse, recomputing one chunk at a time and pulling the cotangents back
through it with ``jax.vjp``. ``T`` is built by :func:`_unit_lower_inverse_blocked` (2x2 block
recursion over the nonzero blocks only, a few times fewer flops than the full-size matmuls of
:func:`unit_lower_inverse`), and the cumulative decay is a triangular matmul (``jnp.cumsum`` lowers
to a ``reduce-window`` that XLA:CPU fuses into its consumers and recomputes there).
"""

import jax
import jax.numpy as jnp

from primitives.ops._chunks import chunked_recurrence
from primitives.ops._chunks import mm as _mm
from primitives.ops._common import HIGHEST, pad_time, resolve_scale, zero_state

# Diagonal block size at which _unit_lower_inverse_blocked stops recursing.
_INVERSE_BASE = 16


def unit_lower_inverse(a, precision=HIGHEST):
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


@jax.custom_vjp
def _unit_lower_inverse_blocked(a):
    """``(I + a)^-1`` for strictly lower-triangular ``a`` [..., c, c], by 2x2 block recursion.

    The diagonal blocks of size ``_INVERSE_BASE`` are inverted at once by
    :func:`unit_lower_inverse`; then pairs of neighbouring inverted blocks merge bottom-up through
    ``[[A, 0], [E, B]]^-1 = [[A^-1, 0], [-B^-1 E A^-1, B^-1]]``, touching only the nonzero blocks.
    Needs ``c = base * 2^m``; other sizes fall back to :func:`unit_lower_inverse`. Only the
    strictly lower triangle of ``a`` is read, and its gradient is the closed form
    ``-X^T dX X^T`` (restricted to that triangle) rather than autodiff through the recursion.
    """
    c = a.shape[-1]
    m = c // _INVERSE_BASE
    if c <= _INVERSE_BASE or c % _INVERSE_BASE or m & (m - 1):
        return unit_lower_inverse(jnp.tril(a, -1))
    s = _INVERSE_BASE
    blocks = a.reshape(*a.shape[:-2], m, s, m, s)
    diag = jnp.stack([blocks[..., i, :, i, :] for i in range(m)], axis=-3)
    inv = unit_lower_inverse(jnp.tril(diag, -1))
    while s < c:
        m = c // s
        blocks = a.reshape(*a.shape[:-2], m, s, m, s)
        join = jnp.stack([blocks[..., 2 * i + 1, :, 2 * i, :] for i in range(m // 2)], axis=-3)
        first, second = inv[..., 0::2, :, :], inv[..., 1::2, :, :]
        below = -_mm("...ij,...jk->...ik", _mm("...ij,...jk->...ik", second, join), first)
        top = jnp.concatenate([first, jnp.zeros_like(first)], axis=-1)
        inv = jnp.concatenate([top, jnp.concatenate([below, second], axis=-1)], axis=-2)
        s *= 2
    return inv[..., 0, :, :]


def _unit_lower_inverse_fwd(a):
    inv = _unit_lower_inverse_blocked(a)
    return inv, inv


def _unit_lower_inverse_bwd(inv, d_inv):
    # d(X) = -X d(a) X for X = (I + a)^-1, so the cotangent of a is -X^T dX X^T.
    d_a = -_mm("...ji,...jk->...ik", inv, _mm("...ij,...kj->...ik", d_inv, inv))
    return (jnp.tril(d_a, -1),)


_unit_lower_inverse_blocked.defvjp(_unit_lower_inverse_fwd, _unit_lower_inverse_bwd)


def _chunk(q, k, v, beta, g, state):
    """One chunk: [b, h, c, *] tiles (q scaled) and its entering state -> (o, leaving state)."""
    c = k.shape[-2]
    causal = jnp.tril(jnp.ones((c, c), bool))
    big_g = _mm("bhj,ij->bhi", g, causal.astype(jnp.float32))  # chunk-local cumulative decay
    # Mask before exp: above the diagonal G_i - G_j > 0 and could overflow.
    decay = jnp.exp(jnp.where(causal, big_g[..., :, None] - big_g[..., None, :], -jnp.inf))
    strict = jnp.tril(jnp.ones((c, c), bool), k=-1)
    kk = _mm("bhik,bhjk->bhij", k, k)
    t_inv = _unit_lower_inverse_blocked(jnp.where(strict, beta[..., :, None] * decay * kk, 0.0))
    decay_in = jnp.exp(big_g)  # chunk start -> step i
    u = _mm("bhij,bhjv->bhiv", t_inv, beta[..., None] * v)
    w = _mm("bhij,bhjk->bhik", t_inv, (beta * decay_in)[..., None] * k)
    delta = u - _mm("bhik,bhkv->bhiv", w, state)
    attn = decay * _mm("bhik,bhjk->bhij", q, k)  # zero above the diagonal, where decay is
    o = _mm("bhik,bhkv->bhiv", decay_in[..., None] * q, state) + _mm("bhij,bhjv->bhiv", attn, delta)
    last = big_g[..., -1:]
    k_to_end = jnp.exp(last - big_g)[..., None] * k
    new_state = jnp.exp(last)[..., None] * state + _mm("bhik,bhiv->bhkv", k_to_end, delta)
    return o, new_state


# (l, q, k, v, beta, g, s0) -> (o, final state), float32 with t a multiple of the chunk length l
# and q already scaled; the backward differentiates one chunk at a time with jax.vjp.
_delta_core = chunked_recurrence(_chunk)


def gated_delta_chunked(q, k, v, beta, g, initial_state=None, scale=None, chunk_size=64):
    """The gated delta rule by chunks (see the module docstring for the algebra); same arguments
    and results as :func:`primitives.ops.delta.reference.gated_delta_reference`.

    ``chunk_size`` is the tokens per chunk (shrunk to ``t`` for short inputs). Time is padded to a
    multiple with ``k = v = beta = g = 0``, which leaves the state unchanged.
    """
    b, t, h, dk = k.shape
    if initial_state is None:
        initial_state = zero_state(b, h, dk, v.shape[-1])
    c = min(chunk_size, t)
    scaled_q = q.astype(jnp.float32) * resolve_scale(scale, dk)
    args = tuple(pad_time(x.astype(jnp.float32), c) for x in (scaled_q, k, v, beta, g))
    o, final_state = _delta_core(c, *args, initial_state.astype(jnp.float32))
    return o[:, :t].astype(q.dtype), final_state
