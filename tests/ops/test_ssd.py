"""SSD op: chunked and Pallas paths against the sequential reference, forward and gradients."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from primitives.ops.ssd import BlockSizes, ssd, ssd_step
from primitives.ops.ssd.pallas import ssd_pallas
from tests.ops.tolerances import tol

BATCH, HEADS, HEAD_DIM, STATE = 2, 3, 12, 16  # head dim deliberately not a power of two
ARG_NAMES = ("x", "dt", "A", "B", "C", "initial_state")
# Compile time dominates this file on CPU; parity does not depend on LLVM optimisation level.
_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _inputs(t, dtype, *, seed=0):
    """Random SSD inputs (numpy RNG: no XLA compiles); B, C scaled by n**-0.5 so y stays O(1)."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape: rng.standard_normal(shape, np.float32)  # noqa: E731
    x = normal(BATCH, t, HEADS, HEAD_DIM)
    dt = np.logaddexp(0.0, normal(BATCH, t, HEADS) - 1.0)  # softplus
    A = -np.exp(normal(HEADS))
    B = normal(BATCH, t, HEADS, STATE) * STATE**-0.5
    C = normal(BATCH, t, HEADS, STATE) * STATE**-0.5
    s0 = normal(BATCH, HEADS, HEAD_DIM, STATE)
    cast = lambda v: jnp.asarray(v, dtype)  # noqa: E731
    return cast(x), cast(dt), jnp.asarray(A), cast(B), cast(C), jnp.asarray(s0)


def _jit(fn):
    return jax.jit(fn, compiler_options=_FAST_COMPILE)


def _loss_and_outputs(fn, t, *, seed=1):
    """A scalar mixing y and the final state with random weights, returning (y, state) as aux."""
    rng = np.random.default_rng(seed)
    w_y = rng.standard_normal((BATCH, t, HEADS, HEAD_DIM), np.float32)
    w_s = rng.standard_normal((BATCH, HEADS, HEAD_DIM, STATE), np.float32)

    def loss(*args):
        y, state = fn(*args)
        return jnp.sum(y.astype(jnp.float32) * w_y) + jnp.sum(state * w_s), (y, state)

    return _jit(jax.value_and_grad(loss, argnums=tuple(range(6)), has_aux=True))


def _impl(impl, chunk_size):
    def fn(x, dt, A, B, C, s0):
        return ssd(x, dt, A, B, C, initial_state=s0, impl=impl, chunk_size=chunk_size)

    return fn


def _assert_close(actual, expected, dtype, what):
    np.testing.assert_allclose(
        np.asarray(actual, np.float32),
        np.asarray(expected, np.float32),
        err_msg=what,
        **tol("ssd", dtype),
    )


@functools.cache
def _reference_results(t, dtype):
    """Outputs and gradients of the reference, shared by the chunked and Pallas cases."""
    return _loss_and_outputs(_impl("reference", 1), t)(*_inputs(t, dtype))


def _check_parity(fn, t, dtype):
    args = _inputs(t, dtype)
    (_, (y_ref, s_ref)), g_ref = _reference_results(t, dtype)
    (_, (y, s)), g = _loss_and_outputs(fn, t)(*args)
    assert y.dtype == args[0].dtype and y.shape == args[0].shape
    assert s.dtype == jnp.float32 and s.shape == (BATCH, HEADS, HEAD_DIM, STATE)
    _assert_close(y, y_ref, dtype, "y")
    _assert_close(s, s_ref, dtype, "final_state")
    for name, gi, gi_ref in zip(ARG_NAMES, g, g_ref):
        assert gi.dtype == gi_ref.dtype, name
        _assert_close(gi, gi_ref, dtype, f"d{name}")


# (t, chunk): t = 1; t < chunk; t an exact multiple; t needing padding.
SHAPES = [(1, 16), (63, 16), (64, 32), (130, 32)]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("t,chunk", SHAPES, ids=[f"t{t}-c{c}" for t, c in SHAPES])
@pytest.mark.parametrize("impl", ["chunked", "pallas"])
def test_parity_with_reference(impl, t, chunk, dtype):
    _check_parity(_impl(impl, chunk), t, dtype)


def test_pallas_feature_padding_matches_reference():
    """The power-of-two feature padding used on GPU, exercised here in interpret mode."""

    def fn(x, dt, A, B, C, s0):
        return ssd_pallas(x, dt, A, B, C, s0, block_sizes=BlockSizes(16, pad_features=True))

    _check_parity(fn, 20, jnp.float32)


@pytest.mark.parametrize("impl", ["reference", "chunked", "pallas"])
def test_initial_state_carries_across_calls(impl):
    run = _impl(impl, 16)

    def full_and_halves(x, dt, A, B, C, s0):
        y_full, s_full = run(x, dt, A, B, C, s0)
        y_1, s_1 = run(x[:, :23], dt[:, :23], A, B[:, :23], C[:, :23], s0)
        y_2, s_2 = run(x[:, 23:], dt[:, 23:], A, B[:, 23:], C[:, 23:], s_1)
        return y_full, s_full, jnp.concatenate([y_1, y_2], axis=1), s_2

    y_full, s_full, y_halves, s_halves = _jit(full_and_halves)(*_inputs(40, jnp.float32))
    _assert_close(y_halves, y_full, jnp.float32, "y")
    _assert_close(s_halves, s_full, jnp.float32, "final_state")


@pytest.mark.parametrize("impl", ["chunked", "pallas"])
def test_no_initial_state_means_zeros(impl):
    def without_and_with_zeros(x, dt, A, B, C, s0):
        zeros = jnp.zeros_like(s0)
        return ssd(x, dt, A, B, C, impl=impl, chunk_size=16), _impl("reference", 1)(
            x, dt, A, B, C, zeros
        )

    (y, s), (y_zero, s_zero) = _jit(without_and_with_zeros)(*_inputs(10, jnp.float32))
    _assert_close(y, y_zero, jnp.float32, "y")
    _assert_close(s, s_zero, jnp.float32, "final_state")


def test_step_by_step_decoding_matches_reference():
    def stepped_and_reference(x, dt, A, B, C, state):
        reference = _impl("reference", 1)(x, dt, A, B, C, state)
        ys = []
        for i in range(x.shape[1]):
            y_t, state = ssd_step(x[:, i], dt[:, i], A, B[:, i], C[:, i], state)
            ys.append(y_t)
        return (jnp.stack(ys, axis=1), state), reference

    (y, s), (y_ref, s_ref) = _jit(stepped_and_reference)(*_inputs(9, jnp.float32))
    _assert_close(y, y_ref, jnp.float32, "y")
    _assert_close(s, s_ref, jnp.float32, "final_state")


def test_unknown_impl_raises():
    x, dt, A, B, C, _ = _inputs(4, jnp.float32)
    with pytest.raises(ValueError, match="impl must be one of"):
        ssd(x, dt, A, B, C, impl="triton")


def test_bad_block_sizes_raise():
    with pytest.raises(ValueError, match="BlockSizes.chunk"):
        BlockSizes(chunk=0)
