"""SwiGLU's hand-written backward pass against autodiff of its reference forward."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from primitives.mlp import swiglu, swiglu_reference


def _inputs(shape, f, seed):
    ks = jax.random.split(jax.random.key(seed), 5)
    d = shape[-1]
    return (jax.random.normal(ks[0], shape), jax.random.normal(ks[1], (d, f)) * 0.3,
            jax.random.normal(ks[2], (d, f)) * 0.3, jax.random.normal(ks[3], (f, d)) * 0.3,
            jax.random.normal(ks[4], shape))


def _loss(fn, cot):
    return lambda *a: jnp.sum(fn(*a).astype(jnp.float32) * cot)  # a random cotangent probes every output


@pytest.mark.parametrize("shape,f", [((2, 13, 24), 40), ((5, 7), 11), ((1, 1, 3, 6), 9), ((3, 1, 5), 1)])
def test_forward_and_gradients_match_autodiff(shape, f):
    x, wg, wu, wd, cot = _inputs(shape, f, seed=len(shape) * 7 + f)
    np.testing.assert_allclose(np.asarray(swiglu(x, wg, wu, wd)), np.asarray(swiglu_reference(x, wg, wu, wd)))
    got = jax.jit(jax.grad(_loss(swiglu, cot), (0, 1, 2, 3)))(x, wg, wu, wd)
    want = jax.grad(_loss(swiglu_reference, cot), (0, 1, 2, 3))(x, wg, wu, wd)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=1e-5, rtol=1e-5)


def test_bfloat16_gradients_keep_dtypes_and_stay_close_to_float32():
    x, wg, wu, wd, cot = _inputs((2, 9, 16), 24, seed=3)
    bf = lambda a: a.astype(jnp.bfloat16)  # noqa: E731
    got = jax.grad(_loss(swiglu, cot), (0, 1, 2, 3))(bf(x), bf(wg), bf(wu), bf(wd))
    want = jax.grad(_loss(swiglu_reference, cot), (0, 1, 2, 3))(x, wg, wu, wd)
    for g, w in zip(got, want):
        assert g.dtype == jnp.bfloat16
        scale = float(jnp.abs(w).max())
        assert float(jnp.abs(g.astype(jnp.float32) - w).max()) < 0.03 * scale
