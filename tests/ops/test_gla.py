"""GLA op: chunked and Pallas paths against the sequential reference, forward, state and gradients."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from primitives.ops.gla import IMPLS, gla, gla_step
from primitives.ops.gla.pallas import BlockSizes
from tests.ops.tolerances import tol

BATCH, HEADS, DK, DV = 2, 3, 12, 20  # head dims deliberately not powers of two
ARG_NAMES = ("q", "k", "v", "log_g", "initial_state")
# These tests are compile-bound (the arrays are tiny): skipping LLVM optimisation halves the
# compile time and changes no result.
_FAST_COMPILE = {"xla_backend_optimization_level": 0}


def _inputs(t, dtype, *, gate="mild", seed=0):
    """Random GLA inputs (q, k, v, log_g in ``dtype``; float32 initial state) and loss weights.

    Drawn with numpy: eager jax.random would compile a program per shape, which dominates here.
    """
    rng = np.random.default_rng(seed)
    normal = lambda *shape: rng.standard_normal(shape, np.float32)
    q, k, v = normal(BATCH, t, HEADS, DK), normal(BATCH, t, HEADS, DK), normal(BATCH, t, HEADS, DV)
    noise = normal(BATCH, t, HEADS, DK)
    log_g = {
        "mild": -np.logaddexp(0.0, -(noise + 2.0)),  # log_sigmoid: decay about 0.9 per step
        "strong": np.minimum(-5.0 + 0.5 * noise, 0.0),  # -G reaches about 160 in a chunk of 32
        "zero": np.zeros_like(noise),  # no decay: every pairwise exponent ties at 0
    }[gate]
    s0 = normal(BATCH, HEADS, DK, DV)
    weights = (normal(BATCH, t, HEADS, DV), normal(BATCH, HEADS, DK, DV))
    return tuple(x.astype(dtype) for x in (q, k, v, log_g)) + (s0,), weights


@functools.partial(jax.jit, static_argnames=("impl", "chunk_size"), compiler_options=_FAST_COMPILE)
def _outputs_and_grads(args, weights, *, impl, chunk_size):
    """(o, final_state) and the gradients of a random-weighted sum of both w.r.t. all inputs."""
    w_o, w_s = weights

    def loss(q, k, v, log_g, s0):
        o, state = gla(q, k, v, log_g, initial_state=s0, impl=impl, chunk_size=chunk_size)
        return jnp.sum(o.astype(jnp.float32) * w_o) + jnp.sum(state * w_s), (o, state)

    (_, (o, state)), grads = jax.value_and_grad(loss, argnums=tuple(range(5)), has_aux=True)(*args)
    return o, state, grads


@functools.partial(jax.jit, static_argnames=("impl", "chunk_size"), compiler_options=_FAST_COMPILE)
def _forward(q, k, v, log_g, s0, *, impl, chunk_size):
    return gla(q, k, v, log_g, initial_state=s0, impl=impl, chunk_size=chunk_size)


def _assert_close(actual, expected, dtype, what):
    np.testing.assert_allclose(
        np.asarray(actual, np.float32), np.asarray(expected, np.float32), err_msg=what, **tol("gla", dtype)
    )


def _check_parity(impl, t, chunk, dtype, gate="mild"):
    args, weights = _inputs(t, dtype, gate=gate)
    o_ref, s_ref, g_ref = _outputs_and_grads(args, weights, impl="reference", chunk_size=1)
    o, s, g = _outputs_and_grads(args, weights, impl=impl, chunk_size=chunk)
    assert o.dtype == args[0].dtype and o.shape == (BATCH, t, HEADS, DV)
    assert s.dtype == jnp.float32 and s.shape == (BATCH, HEADS, DK, DV)
    _assert_close(o, o_ref, dtype, "o")
    _assert_close(s, s_ref, dtype, "final_state")
    for name, gi, gi_ref in zip(ARG_NAMES, g, g_ref):
        assert gi.dtype == gi_ref.dtype, name
        assert np.all(np.isfinite(np.asarray(gi, np.float32))), name
        _assert_close(gi, gi_ref, dtype, f"d{name}")


# (t, chunk, dtype): t = 1; t needing padding; t an exact multiple; several chunks and a partial
# one. bfloat16 (which changes rounding, not the shape logic) runs at the two padded shapes only:
# the Pallas interpret-mode compiles dominate this file's time.
CASES = [
    (1, 16, jnp.float32),
    (63, 16, jnp.float32),
    (64, 32, jnp.float32),
    (130, 32, jnp.float32),
    (63, 16, jnp.bfloat16),
    (130, 32, jnp.bfloat16),
]
CASE_IDS = [f"t{t}-c{c}-{np.dtype(d).name}" for t, c, d in CASES]


@pytest.mark.parametrize("t,chunk,dtype", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("impl", ["chunked", "pallas"])
def test_parity_with_reference(impl, t, chunk, dtype):
    _check_parity(impl, t, chunk, dtype)


@pytest.mark.parametrize("gate", ["strong", "zero"])
@pytest.mark.parametrize("impl", ["chunked", "pallas"])
def test_parity_at_extreme_gates(impl, gate):
    """Strong decay would overflow exp(-G) in the naive factorisation; zero gates make ties."""
    _check_parity(impl, 130, 32, jnp.float32, gate=gate)


@pytest.mark.parametrize("impl", ["chunked", "pallas"])
def test_initial_state_carries_across_halves(impl):
    args, _ = _inputs(126, jnp.float32)
    q, k, v, log_g, s0 = args
    o_full, s_full = _forward(*args, impl=impl, chunk_size=16)
    first, second = zip(*((x[:, :63], x[:, 63:]) for x in (q, k, v, log_g)))
    o_a, s_mid = _forward(*first, s0, impl=impl, chunk_size=16)
    o_b, s_end = _forward(*second, s_mid, impl=impl, chunk_size=16)
    _assert_close(jnp.concatenate([o_a, o_b], axis=1), o_full, jnp.float32, "o")
    _assert_close(s_end, s_full, jnp.float32, "final_state")


def test_repeated_step_matches_reference():
    (q, k, v, log_g, s0), _ = _inputs(20, jnp.float32)
    o_ref, s_ref = _forward(q, k, v, log_g, s0, impl="reference", chunk_size=1)
    step = jax.jit(gla_step, compiler_options=_FAST_COMPILE)
    state, outputs = s0, []
    for t in range(q.shape[1]):
        o_t, state = step(q[:, t], k[:, t], v[:, t], log_g[:, t], state)
        outputs.append(o_t)
    _assert_close(np.stack(outputs, axis=1), o_ref, jnp.float32, "o")
    _assert_close(state, s_ref, jnp.float32, "final_state")


def test_pallas_path_runs_the_kernels():
    """impl="pallas" reaches the forward kernel, and its gradient the backward kernel."""
    (q, k, v, log_g, _), _ = _inputs(16, jnp.float32)

    def loss(q, k, v, log_g):
        o, state = gla(q, k, v, log_g, impl="pallas", chunk_size=16)
        return jnp.sum(o) + jnp.sum(state)

    jaxpr = str(jax.make_jaxpr(jax.grad(loss, argnums=(0, 1, 2, 3)))(q, k, v, log_g))
    assert "gla_fwd" in jaxpr and "gla_bwd" in jaxpr


def test_unknown_impl_raises():
    (q, k, v, log_g, _), _ = _inputs(4, jnp.float32)
    with pytest.raises(ValueError, match="impl must be one of"):
        gla(q, k, v, log_g, impl="triton")
    assert IMPLS == ("reference", "chunked", "pallas")


def test_bad_shapes_raise():
    (q, k, v, log_g, s0), _ = _inputs(4, jnp.float32)
    with pytest.raises(ValueError, match="log_g must have q's shape"):
        gla(q, k, v, log_g[..., :1])
    with pytest.raises(ValueError, match="initial_state must have shape"):
        gla(q, k, v, log_g, initial_state=s0[..., :1])
    with pytest.raises(ValueError, match="BlockSizes.chunk"):
        BlockSizes(chunk=0)
