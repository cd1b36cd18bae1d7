"""SwiGLU MLP (Shazeer 2020, "GLU Variants Improve Transformer"): ``W2 (silu(W1 x) * W3 x)``.

Training runs through ``swiglu``, whose backward pass is written out (``jax.custom_vjp``) as
matrix products over the flattened ``[tokens, width]`` activations. Autodiff of the same forward
leaves XLA's CPU compiler free to lay the gate and up gradients out transposed for the weight
gradients, and it then fuses silu's derivative into single-threaded transposing copies: about
15 % of a d256 training step on 2 cores. ``swiglu_reference`` is the plain forward, the
readable definition the custom gradient is tested against.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from primitives.base import Dims, Primitive, dense_init, register

__all__ = ["SwiGLU", "swiglu", "swiglu_reference"]


def swiglu_reference(x, w_gate, w_up, w_down):
    """``(silu(x W_gate) * (x W_up)) W_down`` over the last axis of ``x``; autodiff gradients."""
    return (jax.nn.silu(x @ w_gate) * (x @ w_up)) @ w_down


@jax.custom_vjp
def swiglu(x, w_gate, w_up, w_down):
    """``swiglu_reference`` with a hand-written backward pass (same values, same dtypes)."""
    return swiglu_reference(x, w_gate, w_up, w_down)


def _forward(x, w_gate, w_up, w_down):
    gate, up = x @ w_gate, x @ w_up
    # Only the two projections are kept: silu and the product are recomputed in the backward pass,
    # elementwise, so the residuals cost what autodiff's would.
    return (jax.nn.silu(gate) * up) @ w_down, (x, gate, up, w_gate, w_up, w_down)


def _backward(residuals, dy):
    x, gate, up, w_gate, w_up, w_down = residuals
    flat = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731
    x2, g, u, dy2 = flat(x), flat(gate).astype(jnp.float32), flat(up).astype(jnp.float32), flat(dy)
    sig = jax.nn.sigmoid(g)
    act = g * sig  # silu(gate)
    dh = (dy2 @ w_down.T).astype(jnp.float32)  # d loss / d (silu(gate) * up)
    d_gate = (dh * u * sig * (1.0 + g * (1.0 - sig))).astype(x.dtype)  # silu' = sig (1 + g (1 - sig))
    d_up = (dh * act).astype(x.dtype)
    h = (act * u).astype(x.dtype)
    dx = d_gate @ w_gate.T + d_up @ w_up.T
    return (dx.reshape(x.shape).astype(x.dtype), (x2.T @ d_gate).astype(w_gate.dtype),
            (x2.T @ d_up).astype(w_up.dtype), (h.T @ dy2).astype(w_down.dtype))


swiglu.defvjp(_forward, _backward)


@register
class SwiGLU(Primitive):
    """Position-wise SwiGLU channel mixer with inner width ``d_ffn``; no bias, no state.

    Option ``d_ffn`` gives this layer its own inner width (default: the spec's); parameter matching
    (``scaling.matching``) uses it to bring layouts of different primitives to equal size.
    """

    name = "swiglu"
    shorthand = "M"
    OPTIONS: dict = {"d_ffn": None}
    POSITIVE_INT_OPTIONS = ("d_ffn",)

    @staticmethod
    def width(dims: Dims, opts: dict) -> int:
        return opts["d_ffn"] or dims.d_ffn

    def __init__(self, dims: Dims, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32, **options):
        opts = self.check_options(options)
        d, f = dims.d_model, self.width(dims, opts)
        self.dtype = dtype
        init = dense_init()
        self.w_gate = nnx.Param(init(rngs.params(), (d, f), param_dtype))
        self.w_up = nnx.Param(init(rngs.params(), (d, f), param_dtype))
        self.w_down = nnx.Param(init(rngs.params(), (f, d), param_dtype))

    def __call__(self, x: jax.Array) -> jax.Array:
        cast = lambda w: w[...].astype(self.dtype)  # noqa: E731
        return swiglu(x.astype(self.dtype), cast(self.w_gate), cast(self.w_up), cast(self.w_down))

    def init_state(self, batch: int, max_len: int, dtype=jnp.float32):
        return {}

    def step(self, x, state, pos):
        return self(x), state

    @classmethod
    def param_count(cls, dims: Dims, **options) -> int:
        return 3 * dims.d_model * cls.width(dims, cls.check_options(options))

    @classmethod
    def flops_per_token(cls, dims: Dims, seq_len: int, **options) -> int:
        return 2 * cls.param_count(dims, **options)

    @classmethod
    def state_bytes(cls, dims: Dims, seq_len: int, dtype_bytes: int, **options) -> int:
        return 0
