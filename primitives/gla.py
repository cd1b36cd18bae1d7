"""Gated linear attention layer (``L``), Yang et al. 2024 (GLA Transformer, §4).

``q = W_q x``, ``k = W_k x`` (key width ``expand_k * d``), ``v = W_v x``; a low-rank data-dependent
forget gate ``log_g = logsigmoid(W_g2 W_g1 x + b) / normalizer`` per key channel; the recurrence
``S_t = diag(g_t) S_{t-1} + k_t^T v_t``, ``o_t = q_t S_t``; a per-head RMSNorm, an output gate
``swish(W_r x)`` and the output projection. Gate normaliser 16 and rank 16 follow the paper.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from primitives import ops
from primitives.base import Dims, Primitive, dense_init, register
from primitives.norm import rms_norm
from primitives.ops.gla import gla, gla_step

__all__ = ["GatedLinearAttention"]


def _sizes(dims: Dims, opts: dict) -> dict[str, int]:
    h = dims.n_heads
    dk_tot, dv_tot = int(opts["expand_k"] * dims.d_model), int(opts["expand_v"] * dims.d_model)
    if dk_tot % h or dv_tot % h or dk_tot < h:
        raise ValueError(f"primitive 'gla': key width {dk_tot} and value width {dv_tot} must be multiples "
                         f"of n_heads={h}; adjust expand_k/expand_v")
    return {"h": h, "dk": dk_tot // h, "dv": dv_tot // h, "dk_tot": dk_tot, "dv_tot": dv_tot,
            "r": opts["gate_rank"]}


@register
class GatedLinearAttention(Primitive):
    """GLA mixer; constant-size decode state ``[h, dk, dv]``."""

    name = "gla"
    shorthand = "L"
    OPTIONS = {"expand_k": 0.5, "expand_v": 1.0, "gate_rank": 16, "gate_normalizer": 16.0, "chunk_size": 64}

    def __init__(self, dims: Dims, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32, **options):
        opts = self.check_options(options)
        s = _sizes(dims, opts)
        self.s, self.opts, self.dtype = s, opts, dtype
        d, init = dims.d_model, dense_init()
        self.wq = nnx.Param(init(rngs.params(), (d, s["dk_tot"]), param_dtype))
        self.wk = nnx.Param(init(rngs.params(), (d, s["dk_tot"]), param_dtype))
        self.wv = nnx.Param(init(rngs.params(), (d, s["dv_tot"]), param_dtype))
        self.wg1 = nnx.Param(init(rngs.params(), (d, s["r"]), param_dtype))
        self.wg2 = nnx.Param(init(rngs.params(), (s["r"], s["dk_tot"]), param_dtype))
        self.bg = nnx.Param(jnp.zeros((s["dk_tot"],), param_dtype))
        self.wr = nnx.Param(init(rngs.params(), (d, s["dv_tot"]), param_dtype))
        self.norm_scale = nnx.Param(jnp.ones((s["dv"],), param_dtype))
        self.wo = nnx.Param(init(rngs.params(), (s["dv_tot"], d), param_dtype))

    def _inputs(self, x):
        s, (b, t) = self.s, x.shape[:2]
        x = x.astype(self.dtype)
        w = lambda p: p[...].astype(self.dtype)
        q = (x @ w(self.wq)).reshape(b, t, s["h"], s["dk"])
        k = (x @ w(self.wk)).reshape(b, t, s["h"], s["dk"])
        v = (x @ w(self.wv)).reshape(b, t, s["h"], s["dv"])
        gate = (x @ w(self.wg1) @ w(self.wg2)).astype(jnp.float32) + self.bg[...].astype(jnp.float32)
        log_g = (jax.nn.log_sigmoid(gate) / self.opts["gate_normalizer"]).reshape(b, t, s["h"], s["dk"])
        return q, k, v, log_g

    def _finish(self, o, x):
        b, t = o.shape[:2]
        o = rms_norm(o.astype(jnp.float32), self.norm_scale[...], 1e-5).reshape(b, t, self.s["dv_tot"])
        r = jax.nn.silu((x.astype(self.dtype) @ self.wr[...].astype(self.dtype)).astype(jnp.float32))
        return (o * r).astype(self.dtype) @ self.wo[...].astype(self.dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        q, k, v, log_g = self._inputs(x)
        o, _ = gla(q, k, v, log_g, impl=ops.default_impl(), chunk_size=self.opts["chunk_size"])
        return self._finish(o, x)

    def init_state(self, batch: int, max_len: int, dtype=jnp.float32):
        return jnp.zeros((batch, self.s["h"], self.s["dk"], self.s["dv"]), jnp.float32)

    def step(self, x, state, pos):
        q, k, v, log_g = self._inputs(x)
        o, state = gla_step(q[:, 0], k[:, 0], v[:, 0], log_g[:, 0], state)
        return self._finish(o[:, None], x), state

    @classmethod
    def param_count(cls, dims: Dims, **options) -> int:
        s = _sizes(dims, cls.check_options(options))
        d = dims.d_model
        return (2 * d * s["dk_tot"] + 2 * d * s["dv_tot"] + d * s["r"] + s["r"] * s["dk_tot"] + s["dk_tot"]
                + s["dv"] + s["dv_tot"] * d)

    @classmethod
    def flops_per_token(cls, dims: Dims, seq_len: int, **options) -> int:
        """Projections + recurrent cost (decay, ``k^T v`` update, ``q S`` readout: ~5 h dk dv)."""
        s = _sizes(dims, cls.check_options(options))
        proj = 2 * (cls.param_count(dims, **options) - s["dk_tot"] - s["dv"])
        return proj + 5 * s["h"] * s["dk"] * s["dv"]

    @classmethod
    def state_bytes(cls, dims: Dims, seq_len: int, dtype_bytes: int, **options) -> int:
        s = _sizes(dims, cls.check_options(options))
        return s["h"] * s["dk"] * s["dv"] * dtype_bytes
