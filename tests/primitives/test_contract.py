"""One contract suite over the whole primitive registry (docs/conventions.md §4).

Every registered primitive must: keep shapes and finite outputs, be causal (the gradient of the
output at t w.r.t. inputs after t is exactly zero), decode step by step to the parallel forward,
count its parameters analytically, and give the same result under jit as eagerly.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import primitives
from primitives import Dims

# Awkward widths on purpose: head_dim and d_ffn not powers of two, GQA with 2 query heads per kv head.
DIMS = Dims(d_model=24, n_heads=4, n_kv_heads=2, head_dim=6, d_ffn=40, rope_theta=10_000.0, max_seq_len=64)
T = 13
# Options that make a primitive's interesting path reachable at T=13 (e.g. a window shorter than T).
OPTIONS = {"sliding_window_attention": {"window": 5}}


def _build(name, seed=0):
    cls = primitives.get(name)
    return cls(DIMS, rngs=nnx.Rngs(seed), **OPTIONS.get(name, {}))


def _x(seed=1, t=T, b=2):
    return jax.random.normal(jax.random.key(seed), (b, t, DIMS.d_model), jnp.float32)


ALL = primitives.names()


def test_registry_has_paper_primitives():
    assert {"A", "M"} <= set(primitives.shorthands())
    assert primitives.get("A") is primitives.get("attention")


@pytest.mark.parametrize("name", ALL)
def test_shape_and_finite(name):
    y = _build(name)(_x())
    assert y.shape == (2, T, DIMS.d_model)
    assert y.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(y)))
    assert float(jnp.abs(y).max()) > 0.0


@pytest.mark.parametrize("name", ALL)
def test_causality(name):
    m = _build(name)
    x = _x()
    t_probe = 6
    # d y[:, t_probe] / d x  must vanish at every position after t_probe, exactly.
    g = jax.grad(lambda x: jnp.sum(m(x)[:, t_probe] ** 2))(x)
    assert float(jnp.abs(g[:, t_probe + 1 :]).max()) == 0.0
    assert float(jnp.abs(g[:, : t_probe + 1]).max()) > 0.0


@pytest.mark.parametrize("name", ALL)
def test_decode_matches_parallel(name):
    m = _build(name)
    x = _x()
    y = m(x)
    state = m.init_state(2, T)
    step = jax.jit(lambda x, s, p: m.step(x, s, p))
    outs = []
    for t in range(T):
        o, state = step(x[:, t : t + 1], state, jnp.int32(t))
        outs.append(o)
    np.testing.assert_allclose(np.asarray(jnp.concatenate(outs, 1)), np.asarray(y), atol=2e-5, rtol=2e-5)


@pytest.mark.parametrize("name", ALL)
def test_state_size_is_bounded(name):
    """Decode state either grows with max_len (full attention) or is independent of it."""
    m = _build(name)
    cls = primitives.get(name)
    opts = OPTIONS.get(name, {})
    size = lambda n: sum(int(np.prod(a.shape)) for a in jax.tree.leaves(m.init_state(1, n)) if a.ndim > 1)
    grows = cls.state_bytes(DIMS, 64, 4, **opts) > cls.state_bytes(DIMS, 32, 4, **opts)
    assert (size(64) > size(32)) == grows


@pytest.mark.parametrize("name", ALL)
def test_param_count_matches_leaves(name):
    m = _build(name)
    counted = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(nnx.state(m, nnx.Param)))
    assert primitives.get(name).param_count(DIMS, **OPTIONS.get(name, {})) == counted


@pytest.mark.parametrize("name", ALL)
def test_jit_equals_eager(name):
    m = _build(name)
    x = _x()
    graphdef, state = nnx.split(m)
    jitted = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, x)
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(m(x)), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_bf16_compute_is_finite_and_close(name):
    cls = primitives.get(name)
    m32 = _build(name)
    m16 = cls(DIMS, rngs=nnx.Rngs(0), dtype=jnp.bfloat16, **OPTIONS.get(name, {}))
    x = _x()
    y32, y16 = m32(x), m16(x)
    assert bool(jnp.all(jnp.isfinite(y16)))
    scale = float(jnp.abs(y32).max())
    assert float(jnp.abs(y16.astype(jnp.float32) - y32).max()) < 0.1 * scale + 1e-3


@pytest.mark.parametrize("name", ALL)
def test_costs_are_positive_and_monotone(name):
    cls = primitives.get(name)
    opts = OPTIONS.get(name, {})
    assert cls.param_count(DIMS, **opts) > 0
    assert cls.flops_per_token(DIMS, 128, **opts) >= cls.flops_per_token(DIMS, 16, **opts) > 0
    assert cls.state_bytes(DIMS, 128, 2, **opts) >= cls.state_bytes(DIMS, 16, 2, **opts) >= 0


@pytest.mark.parametrize("name", ALL)
def test_unknown_option_is_rejected(name):
    with pytest.raises(ValueError, match="unknown option"):
        primitives.get(name).check_options({"no_such_option": 1})


_INT_OPTIONS = [(name, key) for name in ALL for key in primitives.get(name).POSITIVE_INT_OPTIONS]


@pytest.mark.parametrize("name,key", _INT_OPTIONS)
@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8"])
def test_positive_integer_option_refuses_bad_values(name, key, bad):
    """Every option a primitive declares a positive integer refuses zero, negatives, floats, bools and
    strings, naming the primitive and the option; a positive integer passes unchanged."""
    cls = primitives.get(name)
    with pytest.raises(ValueError, match=f"primitive {cls.name!r}: option {key!r} must be a positive integer"):
        cls.check_options({key: bad})
    assert cls.check_options({key: 4})[key] == 4


def test_positive_integer_options_are_declared():
    """The width and head options of attention, sliding-window attention and SwiGLU are checked."""
    declared = {(primitives.get(n).name, k) for n, k in _INT_OPTIONS}
    assert {("attention", "n_heads"), ("swiglu", "d_ffn"), ("sliding_window_attention", "window")} <= declared


def test_register_refuses_an_incomplete_primitive():
    class Half(primitives.Primitive):
        name, shorthand = "half", "H"

        def __call__(self, x):
            return x

    with pytest.raises(TypeError, match="must implement init_state"):
        primitives.register(Half)
    assert "half" not in primitives.REGISTRY
