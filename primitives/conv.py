"""Short causal depthwise convolution (Mamba, Gated DeltaNet): ``y_t = b + sum_i w_i * x_{t-w+1+i}``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["CausalConv1d"]


class CausalConv1d(nnx.Module):
    """Depthwise causal conv over time with ``width`` taps per channel and a bias.

    Init follows PyTorch's Conv1d default used by Mamba: ``U(+-1/sqrt(width))`` (fan-in of one
    depthwise channel is ``width``).
    """

    def __init__(self, channels: int, width: int, *, rngs: nnx.Rngs, param_dtype=jnp.float32):
        bound = width ** -0.5
        self.width = width
        self.weight = nnx.Param(jax.random.uniform(rngs.params(), (width, channels), param_dtype, -bound, bound))
        self.bias = nnx.Param(jax.random.uniform(rngs.params(), (channels,), param_dtype, -bound, bound))

    def __call__(self, x: jax.Array) -> jax.Array:  # [b, t, c]
        t = x.shape[1]
        w = self.weight[...].astype(x.dtype)
        xp = jnp.pad(x, ((0, 0), (self.width - 1, 0), (0, 0)))
        # width is tiny (4): a sum of shifted products beats a general conv on CPU and is exact.
        y = sum(xp[:, i : i + t] * w[i] for i in range(self.width))
        return y + self.bias[...].astype(x.dtype)

    def init_state(self, batch: int, channels: int, dtype) -> jax.Array:
        return jnp.zeros((batch, self.width - 1, channels), dtype)

    def step(self, x: jax.Array, buf: jax.Array):
        """x ``[b, 1, c]``; ``buf`` holds the previous ``width - 1`` inputs."""
        window = jnp.concatenate([buf.astype(x.dtype), x], axis=1)  # [b, width, c]
        y = jnp.einsum("bwc,wc->bc", window, self.weight[...].astype(x.dtype))[:, None]
        return y + self.bias[...].astype(x.dtype), window[:, 1:].astype(buf.dtype)

    @staticmethod
    def param_count(channels: int, width: int) -> int:
        return channels * width + channels
