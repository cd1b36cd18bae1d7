"""Gated delta rule: the chunked and Pallas paths against the sequential reference.

Outputs, final state and gradients (w.r.t. q, k, v, beta, g and the initial state) at awkward
shapes: T in {1, 63, 64, 130}, head dims 12 and 20, chunks of 16 and 32 (so padding is exercised).
The Pallas kernel runs in interpret mode on CPU.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from primitives.ops.delta import gated_delta, gated_delta_step
from tests.ops.tolerances import tol

B, H, DK, DV = 2, 3, 12, 20
ARG_NAMES = ("q", "k", "v", "beta", "g", "initial_state")


def _inputs(t, dtype, *, seed=0):
    """Inputs as the caller makes them: L2-normalised q/k, beta in (0, 1), g <= 0."""
    kq, kk, kv, kb, kg, ks = jax.random.split(jax.random.key(seed), 6)
    unit = lambda x: x / jnp.linalg.norm(x, axis=-1, keepdims=True)
    q = unit(jax.random.normal(kq, (B, t, H, DK))).astype(dtype)
    k = unit(jax.random.normal(kk, (B, t, H, DK))).astype(dtype)
    v = jax.random.normal(kv, (B, t, H, DV)).astype(dtype)
    beta = jax.nn.sigmoid(jax.random.normal(kb, (B, t, H))).astype(dtype)
    g = -jax.random.uniform(kg, (B, t, H), maxval=0.2).astype(dtype)
    state = 0.5 * jax.random.normal(ks, (B, H, DK, DV), jnp.float32)
    return q, k, v, beta, g, state


@functools.lru_cache(maxsize=None)
def _forward_and_grads(impl, chunk_size):
    """Jitted ``(o, final_state, grads)`` of a random-weighted sum of outputs and final state."""

    def loss(q, k, v, beta, g, state, w_o, w_s):
        o, s = gated_delta(
            q, k, v, beta, g, initial_state=state, impl=impl, chunk_size=chunk_size
        )
        total = jnp.sum(w_o * o.astype(jnp.float32)) + jnp.sum(w_s * s)
        return total, (o, s)

    return jax.jit(jax.grad(loss, argnums=tuple(range(6)), has_aux=True))


def _weighted(t, dtype):
    args = _inputs(t, dtype)
    kw_o, kw_s = jax.random.split(jax.random.key(1))
    w_o = jax.random.normal(kw_o, (B, t, H, DV))
    w_s = jax.random.normal(kw_s, (B, H, DK, DV))
    return args + (w_o, w_s)


@functools.lru_cache(maxsize=None)
def _reference(t, dtype_name):
    """Reference results; bf16 cases reuse the fp32 program on the bf16-rounded inputs."""
    args = _weighted(t, jnp.dtype(dtype_name))
    grads, (o, s) = _forward_and_grads("reference", 0)(*(x.astype(jnp.float32) for x in args))
    return o, s, grads


def _close(actual, expected, dtype, what):
    np.testing.assert_allclose(
        np.asarray(actual, np.float32), np.asarray(expected, np.float32),
        err_msg=what, **tol("delta", dtype),
    )


# Every compile costs seconds on CPU (Pallas interpret mode most), so the grid is pruned: the
# chunked path sees every T in fp32, both paths see padding (T = 63, 130) and bf16. The Pallas
# backward is the chunked one (recompute), so its gradients are checked for the custom_vjp wiring.
F32, BF16 = jnp.float32, jnp.bfloat16
CASES = [
    ("chunked", 1, 16, F32),
    ("chunked", 63, 16, F32),
    ("chunked", 64, 32, F32),
    ("chunked", 130, 32, F32),
    ("chunked", 63, 16, BF16),
    ("chunked", 130, 32, BF16),
    ("pallas", 1, 16, F32),
    ("pallas", 63, 16, F32),
    ("pallas", 64, 32, BF16),
    ("pallas", 130, 32, F32),
    ("pallas", 130, 32, BF16),
]


@pytest.mark.parametrize(
    "impl,t,chunk_size,dtype", CASES, ids=[f"{c[0]}-T{c[1]}-C{c[2]}-{jnp.dtype(c[3]).name}" for c in CASES]
)
def test_matches_reference(impl, t, chunk_size, dtype):
    args = _weighted(t, dtype)
    grads, (o, s) = _forward_and_grads(impl, chunk_size)(*args)
    ref_o, ref_s, ref_grads = _reference(t, jnp.dtype(dtype).name)
    assert o.shape == (B, t, H, DV) and o.dtype == dtype
    assert s.shape == (B, H, DK, DV) and s.dtype == jnp.float32
    _close(o, ref_o, dtype, "output")
    _close(s, ref_s, dtype, "final state")
    for name, arg, grad, ref_grad in zip(ARG_NAMES, args, grads, ref_grads):
        assert grad.dtype == arg.dtype, name
        _close(grad, ref_grad, dtype, f"d loss / d {name}")


@pytest.mark.parametrize("impl", ["chunked", "pallas"])
def test_initial_state_carries_across_halves(impl):
    q, k, v, beta, g, _ = _inputs(130, jnp.float32, seed=2)
    run = jax.jit(functools.partial(gated_delta, impl=impl, chunk_size=16))
    whole_o, whole_s = run(q, k, v, beta, g)  # initial_state=None means zeros
    first_o, mid = run(q[:, :65], k[:, :65], v[:, :65], beta[:, :65], g[:, :65],
                       initial_state=jnp.zeros((B, H, DK, DV)))
    second_o, end = run(q[:, 65:], k[:, 65:], v[:, 65:], beta[:, 65:], g[:, 65:],
                        initial_state=mid)
    _close(jnp.concatenate([first_o, second_o], axis=1), whole_o, jnp.float32, "output")
    _close(end, whole_s, jnp.float32, "final state")


def test_step_matches_reference():
    q, k, v, beta, g, state = _inputs(9, jnp.float32, seed=3)
    ref_o, ref_s = gated_delta(q, k, v, beta, g, initial_state=state, impl="reference")
    step = jax.jit(gated_delta_step)
    outs = []
    for i in range(q.shape[1]):
        o_i, state = step(q[:, i], k[:, i], v[:, i], beta[:, i], g[:, i], state)
        outs.append(o_i)
    _close(jnp.stack(outs, axis=1), ref_o, jnp.float32, "output")
    _close(state, ref_s, jnp.float32, "final state")


def test_unknown_impl_raises():
    q, k, v, beta, g, _ = _inputs(4, jnp.float32)
    with pytest.raises(ValueError, match="impl='triton'"):
        gated_delta(q, k, v, beta, g, impl="triton")
