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
F32, BF16 = jnp.float32, jnp.bfloat16
# Compiling dominates this file's runtime and the programs are tiny, so XLA's backend optimisation
# is switched off (about halves compile time on CPU; numerics stay within tolerance).
_FAST_COMPILE = {"xla_backend_optimization_level": 0}


def _compile(fn, *args):
    """``fn`` jitted and compiled for ``args`` (positional)."""
    return jax.jit(fn).lower(*args).compile(compiler_options=_FAST_COMPILE)


def _inputs(t, dtype, *, seed=0):
    """Inputs as the caller makes them: L2-normalised q/k, beta in (0, 1), g <= 0.

    Drawn with numpy: eager jax.random would compile a program per shape, seconds on CPU.
    """
    rng = np.random.default_rng(seed)
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    q = unit(rng.normal(size=(B, t, H, DK)))
    k = unit(rng.normal(size=(B, t, H, DK)))
    v = rng.normal(size=(B, t, H, DV))
    beta = 1 / (1 + np.exp(-rng.normal(size=(B, t, H))))
    g = -rng.uniform(0, 0.2, size=(B, t, H))
    state = (0.5 * rng.normal(size=(B, H, DK, DV))).astype(np.float32)
    return tuple(x.astype(dtype) for x in (q, k, v, beta, g)) + (state,)


@functools.lru_cache(maxsize=None)
def _grad_program(impl, chunk_size, t, dtype_name):
    """Compiled ``args -> (grads, (o, final_state))`` of a random-weighted sum of both outputs."""
    rng = np.random.default_rng(1)
    w_o = rng.normal(size=(B, t, H, DV)).astype(np.float32)
    w_s = rng.normal(size=(B, H, DK, DV)).astype(np.float32)

    def loss(q, k, v, beta, g, state):
        o, s = gated_delta(q, k, v, beta, g, initial_state=state, impl=impl, chunk_size=chunk_size)
        return jnp.sum(w_o * o.astype(jnp.float32)) + jnp.sum(w_s * s), (o, s)

    grad = jax.grad(loss, argnums=tuple(range(6)), has_aux=True)
    return _compile(grad, *_inputs(t, np.dtype(dtype_name)))


def _forward_and_grads(impl, chunk_size, args):
    return _grad_program(impl, chunk_size, args[0].shape[1], args[0].dtype.name)(*args)


def _reference(t, dtype):
    """Reference results; bf16 cases run the fp32 program on the bf16-rounded inputs."""
    args = tuple(x.astype(np.float32) for x in _inputs(t, dtype))
    return _forward_and_grads("reference", 0, args)


def _close(actual, expected, dtype, what):
    np.testing.assert_allclose(
        np.asarray(actual, np.float32),
        np.asarray(expected, np.float32),
        err_msg=what,
        **tol("delta", dtype),
    )


# Every compile costs seconds on CPU (Pallas interpret mode most), so the grid is pruned: the
# chunked path sees every T in fp32, both paths see padding (T = 63, 130) and bf16. The Pallas
# backward is the chunked one (recompute), so its gradients mainly check the custom_vjp wiring.
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


IDS = [f"{impl}-T{t}-C{c}-{np.dtype(d).name}" for impl, t, c, d in CASES]


@pytest.mark.parametrize("impl,t,chunk_size,dtype", CASES, ids=IDS)
def test_matches_reference(impl, t, chunk_size, dtype):
    args = _inputs(t, dtype)
    grads, (o, s) = _forward_and_grads(impl, chunk_size, args)
    ref_grads, (ref_o, ref_s) = _reference(t, dtype)
    assert o.shape == (B, t, H, DV) and o.dtype == dtype
    assert s.shape == (B, H, DK, DV) and s.dtype == jnp.float32
    _close(o, ref_o, dtype, "output")
    _close(s, ref_s, dtype, "final state")
    for name, arg, grad, ref_grad in zip(ARG_NAMES, args, grads, ref_grads):
        assert grad.dtype == arg.dtype, name
        _close(grad, ref_grad, dtype, f"d loss / d {name}")


@pytest.mark.parametrize("impl", ["chunked", "pallas"])
def test_initial_state_carries_across_halves(impl):
    q, k, v, beta, g, _ = _inputs(130, F32, seed=2)
    whole = functools.partial(gated_delta, impl=impl, chunk_size=16)  # initial_state=None: zeros
    half = lambda *a: gated_delta(*a[:5], initial_state=a[5], impl=impl, chunk_size=16)
    whole_o, whole_s = _compile(whole, q, k, v, beta, g)(q, k, v, beta, g)
    first = [x[:, :65] for x in (q, k, v, beta, g)] + [np.zeros((B, H, DK, DV), np.float32)]
    run_half = _compile(half, *first)
    first_o, mid = run_half(*first)
    second_o, end = run_half(*[x[:, 65:] for x in (q, k, v, beta, g)], mid)
    _close(np.concatenate([first_o, second_o], axis=1), whole_o, F32, "output")
    _close(end, whole_s, F32, "final state")


def test_step_matches_reference():
    q, k, v, beta, g, state = _inputs(9, F32, seed=3)
    ref = lambda *a: gated_delta(*a[:5], initial_state=a[5], impl="reference")
    ref_o, ref_s = _compile(ref, q, k, v, beta, g, state)(q, k, v, beta, g, state)
    token = lambda i: (q[:, i], k[:, i], v[:, i], beta[:, i], g[:, i])
    step = _compile(gated_delta_step, *token(0), state)
    outs = []
    for i in range(q.shape[1]):
        o_i, state = step(*token(i), state)
        outs.append(o_i)
    _close(np.stack(outs, axis=1), ref_o, F32, "output")
    _close(state, ref_s, F32, "final state")


def test_unknown_impl_raises():
    q, k, v, beta, g, _ = _inputs(4, F32)
    with pytest.raises(ValueError, match="impl='triton'"):
        gated_delta(q, k, v, beta, g, impl="triton")
