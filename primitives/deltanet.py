"""Gated DeltaNet layer (``G``), Yang, Kautz & Hatamizadeh, ICLR 2025, "Gated Delta Networks".

``q, k, v`` projections each through a short causal conv + SiLU; ``q, k`` L2-normalised per head;
``beta = sigmoid(W_b x)``; decay ``g = -exp(A_log) * softplus(W_a x + dt_bias)`` (Mamba-2 style);
the gated delta rule ``S_t = exp(g_t)(I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T``,
``o_t = S_t^T q_t``; a gated RMSNorm ``norm(o) * silu(W_z x)``; the output projection.
``A`` and ``dt`` are initialised as in Mamba (``A ~ U[1, 16]``, ``dt`` log-uniform in [1e-3, 0.1]).
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
from primitives.ops.delta import gated_delta, gated_delta_step
from primitives.ssm import inverse_softplus

__all__ = ["GatedDeltaNet"]


def _sizes(dims: Dims, opts: dict) -> dict[str, int]:
    h, dk = dims.n_heads, dims.head_dim
    dv = int(opts["expand_v"] * dk)
    return {"h": h, "dk": dk, "dv": dv, "dk_tot": h * dk, "dv_tot": h * dv}


def _l2norm(x):
    x32 = x.astype(jnp.float32)
    return (x32 * jax.lax.rsqrt(jnp.sum(x32 * x32, -1, keepdims=True) + 1e-6)).astype(x.dtype)


@register
class GatedDeltaNet(Primitive):
    """Gated DeltaNet mixer; constant-size decode state (conv buffers + ``[h, dk, dv]``)."""

    name = "gated_deltanet"
    shorthand = "G"
    OPTIONS = {"expand_v": 1.0, "d_conv": 4, "chunk_size": 64}

    def __init__(self, dims: Dims, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32, **options):
        opts = self.check_options(options)
        s = _sizes(dims, opts)
        self.s, self.opts, self.dtype = s, opts, dtype
        d, init = dims.d_model, dense_init()
        self.w_qkv = nnx.Param(init(rngs.params(), (d, 2 * s["dk_tot"] + s["dv_tot"]), param_dtype))
        self.conv = CausalConv1d(2 * s["dk_tot"] + s["dv_tot"], opts["d_conv"], rngs=rngs, param_dtype=param_dtype)
        self.w_ab = nnx.Param(init(rngs.params(), (d, 2 * s["h"]), param_dtype))
        dt = jnp.exp(jax.random.uniform(rngs.params(), (s["h"],), jnp.float32, math.log(1e-3), math.log(0.1)))
        self.dt_bias = nnx.Param(inverse_softplus(dt).astype(param_dtype))
        self.A_log = nnx.Param(jnp.log(jax.random.uniform(rngs.params(), (s["h"],), jnp.float32, 1.0, 16.0))
                               .astype(param_dtype))
        self.w_z = nnx.Param(init(rngs.params(), (d, s["dv_tot"]), param_dtype))
        self.norm_scale = nnx.Param(jnp.ones((s["dv"],), param_dtype))
        self.wo = nnx.Param(init(rngs.params(), (s["dv_tot"], d), param_dtype))

    def _gates(self, x):
        s = self.s
        ab = (x @ self.w_ab[...].astype(self.dtype)).astype(jnp.float32)
        a, b = ab[..., : s["h"]], ab[..., s["h"] :]
        g = -jnp.exp(self.A_log[...].astype(jnp.float32)) * jax.nn.softplus(a + self.dt_bias[...].astype(jnp.float32))
        return jax.nn.sigmoid(b), g

    def _split(self, qkv):
        s, (b, t) = self.s, qkv.shape[:2]
        q, k, v = jnp.split(jax.nn.silu(qkv), [s["dk_tot"], 2 * s["dk_tot"]], axis=-1)
        q = _l2norm(q.reshape(b, t, s["h"], s["dk"]))
        k = _l2norm(k.reshape(b, t, s["h"], s["dk"]))
        return q, k, v.reshape(b, t, s["h"], s["dv"])

    def _finish(self, o, x):
        b, t = o.shape[:2]
        o = rms_norm(o.astype(jnp.float32), self.norm_scale[...], 1e-5).reshape(b, t, self.s["dv_tot"])
        z = jax.nn.silu((x @ self.w_z[...].astype(self.dtype)).astype(jnp.float32))
        return (o * z).astype(self.dtype) @ self.wo[...].astype(self.dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(self.dtype)
        q, k, v = self._split(self.conv(x @ self.w_qkv[...].astype(self.dtype)))
        beta, g = self._gates(x)
        o, _ = gated_delta(q, k, v, beta, g, impl=ops.default_impl(), chunk_size=self.opts["chunk_size"])
        return self._finish(o, x)

    def init_state(self, batch: int, max_len: int, dtype=jnp.float32):
        s = self.s
        return {"conv": self.conv.init_state(batch, 2 * s["dk_tot"] + s["dv_tot"], dtype),
                "S": jnp.zeros((batch, s["h"], s["dk"], s["dv"]), jnp.float32)}

    def step(self, x, state, pos):
        x = x.astype(self.dtype)
        qkv, conv = self.conv.step(x @ self.w_qkv[...].astype(self.dtype), state["conv"])
        q, k, v = self._split(qkv)
        beta, g = self._gates(x)
        o, S = gated_delta_step(q[:, 0], k[:, 0], v[:, 0], beta[:, 0], g[:, 0], state["S"])
        return self._finish(o[:, None], x), {"conv": conv, "S": S}

    @classmethod
    def param_count(cls, dims: Dims, **options) -> int:
        opts = cls.check_options(options)
        s, d = _sizes(dims, opts), dims.d_model
        ch = 2 * s["dk_tot"] + s["dv_tot"]
        return (d * ch + CausalConv1d.param_count(ch, opts["d_conv"]) + d * 2 * s["h"] + 2 * s["h"]
                + d * s["dv_tot"] + s["dv"] + s["dv_tot"] * d)

    @classmethod
    def flops_per_token(cls, dims: Dims, seq_len: int, **options) -> int:
        """Projections + conv + the delta-rule update and readout (~6 h dk dv), constant in ``seq_len``."""
        opts = cls.check_options(options)
        s, d = _sizes(dims, opts), dims.d_model
        ch = 2 * s["dk_tot"] + s["dv_tot"]
        proj = 2 * d * (ch + 2 * s["h"] + 2 * s["dv_tot"])
        return proj + 2 * ch * opts["d_conv"] + 6 * s["h"] * s["dk"] * s["dv"]

    @classmethod
    def state_bytes(cls, dims: Dims, seq_len: int, dtype_bytes: int, **options) -> int:
        opts = cls.check_options(options)
        s = _sizes(dims, opts)
        conv = (opts["d_conv"] - 1) * (2 * s["dk_tot"] + s["dv_tot"])
        return (conv + s["h"] * s["dk"] * s["dv"]) * dtype_bytes
