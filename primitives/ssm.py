"""Mamba-2 selective state-space layer (``S``): SSD scan with short conv and gating.

Dao & Gu 2024, "Transformers are SSMs" (Mamba-2), §7 block design: one input projection to
``[z, x, B, C, dt]``; a causal depthwise conv + SiLU over ``[x, B, C]``; the SSD recurrence
``S_t = exp(dt_t A) S_{t-1} + dt_t x_t B_t^T``, ``y_t = S_t C_t + D x_t``; a gated RMSNorm
``norm(y * silu(z))``; an output projection. Initialisation as in Mamba: ``dt`` log-uniform in
``[dt_min, dt_max]`` through an inverse-softplus bias, ``A = -U[1, 16]`` stored as ``A_log``, ``D = 1``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from primitives import ops
from primitives.base import Dims, Primitive, dense_init, register
from primitives.conv import CausalConv1d
from primitives.norm import rms_norm
from primitives.ops.ssd import ssd, ssd_step

__all__ = ["Mamba2", "inverse_softplus"]


def inverse_softplus(y: jax.Array) -> jax.Array:
    """``x`` with ``softplus(x) = y`` (Mamba's dt bias init)."""
    return y + jnp.log(-jnp.expm1(-y))


def _sizes(dims: Dims, opts: dict) -> dict[str, int]:
    d_inner = opts["expand"] * dims.d_model
    p = opts["head_dim"] or dims.head_dim
    if d_inner % p:
        raise ValueError(f"primitive 'mamba2': expand*d_model={d_inner} must be a multiple of head_dim={p}")
    h, gn = d_inner // p, opts["n_groups"] * opts["d_state"]
    if h % opts["n_groups"]:
        raise ValueError(f"primitive 'mamba2': n_groups={opts['n_groups']} must divide the {h} heads")
    return {"d_inner": d_inner, "p": p, "h": h, "n": opts["d_state"], "gn": gn, "conv_ch": d_inner + 2 * gn}


@register
class Mamba2(Primitive):
    """Mamba-2 (SSD) mixer; constant-size decode state (conv buffer + ``[h, p, n]`` SSM state)."""

    name = "mamba2"
    shorthand = "S"
    OPTIONS = {"d_state": 64, "expand": 2, "head_dim": None, "n_groups": 1, "d_conv": 4,
               "dt_min": 1e-3, "dt_max": 0.1, "chunk_size": 64}

    def __init__(self, dims: Dims, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32, **options):
        opts = self.check_options(options)
        s = _sizes(dims, opts)
        self.s, self.opts, self.dtype = s, opts, dtype
        d, init = dims.d_model, dense_init()
        self.in_proj = nnx.Param(init(rngs.params(), (d, 2 * s["d_inner"] + 2 * s["gn"] + s["h"]), param_dtype))
        self.conv = CausalConv1d(s["conv_ch"], opts["d_conv"], rngs=rngs, param_dtype=param_dtype)
        lo, hi = math.log(opts["dt_min"]), math.log(opts["dt_max"])
        dt = jnp.exp(jax.random.uniform(rngs.params(), (s["h"],), jnp.float32, lo, hi))
        self.dt_bias = nnx.Param(inverse_softplus(jnp.maximum(dt, 1e-4)).astype(param_dtype))
        self.A_log = nnx.Param(jnp.log(jax.random.uniform(rngs.params(), (s["h"],), jnp.float32, 1.0, 16.0))
                               .astype(param_dtype))
        self.D = nnx.Param(jnp.ones((s["h"],), param_dtype))
        self.norm_scale = nnx.Param(jnp.ones((s["d_inner"],), param_dtype))
        self.out_proj = nnx.Param(init(rngs.params(), (s["d_inner"], d), param_dtype))

    def _project(self, x):
        s = self.s
        zxbcdt = x.astype(self.dtype) @ self.in_proj[...].astype(self.dtype)
        z, xbc, dt = jnp.split(zxbcdt, [s["d_inner"], 2 * s["d_inner"] + 2 * s["gn"]], axis=-1)
        return z, xbc, dt

    def _heads(self, xbc, dt):
        s, (b, t) = self.s, xbc.shape[:2]
        xs, B, C = jnp.split(jax.nn.silu(xbc), [s["d_inner"], s["d_inner"] + s["gn"]], axis=-1)
        rep = s["h"] // self.opts["n_groups"]
        B = jnp.repeat(B.reshape(b, t, self.opts["n_groups"], s["n"]), rep, axis=2)
        C = jnp.repeat(C.reshape(b, t, self.opts["n_groups"], s["n"]), rep, axis=2)
        dt = jax.nn.softplus(dt.astype(jnp.float32) + self.dt_bias[...].astype(jnp.float32))
        A = -jnp.exp(self.A_log[...].astype(jnp.float32))
        return xs.reshape(b, t, s["h"], s["p"]), dt, A, B, C

    def _finish(self, y, xs, z):
        b, t = y.shape[:2]
        y = y.astype(jnp.float32) + xs.astype(jnp.float32) * self.D[...].astype(jnp.float32)[:, None]
        y = y.reshape(b, t, self.s["d_inner"]) * jax.nn.silu(z.astype(jnp.float32))
        y = rms_norm(y, self.norm_scale[...], 1e-5).astype(self.dtype)
        return y @ self.out_proj[...].astype(self.dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        z, xbc, dt = self._project(x)
        xs, dt, A, B, C = self._heads(self.conv(xbc), dt)
        y, _ = ssd(xs, dt, A, B, C, impl=ops.default_impl(), chunk_size=self.opts["chunk_size"])
        return self._finish(y, xs, z)

    def init_state(self, batch: int, max_len: int, dtype=jnp.float32):
        s = self.s
        return {"conv": self.conv.init_state(batch, s["conv_ch"], dtype),
                "ssm": jnp.zeros((batch, s["h"], s["p"], s["n"]), jnp.float32)}

    def step(self, x, state, pos):
        z, xbc, dt = self._project(x)
        xbc, conv = self.conv.step(xbc, state["conv"])
        xs, dt, A, B, C = self._heads(xbc, dt)
        y, ssm = ssd_step(xs[:, 0], dt[:, 0], A, B[:, 0], C[:, 0], state["ssm"])
        return self._finish(y[:, None], xs, z), {"conv": conv, "ssm": ssm}

    @classmethod
    def param_count(cls, dims: Dims, **options) -> int:
        opts = cls.check_options(options)
        s = _sizes(dims, opts)
        in_proj = dims.d_model * (2 * s["d_inner"] + 2 * s["gn"] + s["h"])
        conv = CausalConv1d.param_count(s["conv_ch"], opts["d_conv"])
        return in_proj + conv + 3 * s["h"] + s["d_inner"] + s["d_inner"] * dims.d_model

    @classmethod
    def flops_per_token(cls, dims: Dims, seq_len: int, **options) -> int:
        """Projections + conv + the recurrent SSD cost (decay, input and output: ~6 h p n).

        The recurrence cost is independent of ``seq_len``: that is the point of the primitive.
        """
        opts = cls.check_options(options)
        s = _sizes(dims, opts)
        proj = 2 * dims.d_model * (3 * s["d_inner"] + 2 * s["gn"] + s["h"])
        return proj + 2 * s["conv_ch"] * opts["d_conv"] + 6 * s["h"] * s["p"] * s["n"]

    @classmethod
    def state_bytes(cls, dims: Dims, seq_len: int, dtype_bytes: int, **options) -> int:
        opts = cls.check_options(options)
        s = _sizes(dims, opts)
        return ((opts["d_conv"] - 1) * s["conv_ch"] + s["h"] * s["p"] * s["n"]) * dtype_bytes
