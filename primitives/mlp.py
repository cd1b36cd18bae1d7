"""SwiGLU MLP (Shazeer 2020, "GLU Variants Improve Transformer"): ``W2 (silu(W1 x) * W3 x)``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from primitives.base import Dims, Primitive, dense_init, register

__all__ = ["SwiGLU"]


@register
class SwiGLU(Primitive):
    """Position-wise SwiGLU channel mixer with inner width ``d_ffn``; no bias, no state."""

    name = "swiglu"
    shorthand = "M"
    OPTIONS: dict = {}

    def __init__(self, dims: Dims, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32, **options):
        self.check_options(options)
        d, f = dims.d_model, dims.d_ffn
        self.dtype = dtype
        init = dense_init()
        self.w_gate = nnx.Param(init(rngs.params(), (d, f), param_dtype))
        self.w_up = nnx.Param(init(rngs.params(), (d, f), param_dtype))
        self.w_down = nnx.Param(init(rngs.params(), (f, d), param_dtype))

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(self.dtype)
        gate = x @ self.w_gate[...].astype(self.dtype)
        up = x @ self.w_up[...].astype(self.dtype)
        return (jax.nn.silu(gate) * up) @ self.w_down[...].astype(self.dtype)

    def init_state(self, batch: int, max_len: int, dtype=jnp.float32):
        return {}

    def step(self, x, state, pos):
        return self(x), state

    @classmethod
    def param_count(cls, dims: Dims, **options) -> int:
        return 3 * dims.d_model * dims.d_ffn

    @classmethod
    def flops_per_token(cls, dims: Dims, seq_len: int, **options) -> int:
        return 2 * cls.param_count(dims)

    @classmethod
    def state_bytes(cls, dims: Dims, seq_len: int, dtype_bytes: int, **options) -> int:
        return 0
