"""Causal grouped-query attention with RoPE (``A``) and its sliding-window variant (``W``).

GQA: Ainslie et al. 2023; RoPE: Su et al. 2021; sliding window: Beltagy et al. 2020 (Longformer),
as used by Mistral, Samba and Griffin's local attention. A token at position ``t`` attends to
keys at ``s <= t`` (and ``s > t - window`` for ``W``). On accelerators training runs through the
library op ``jax.nn.dot_product_attention`` (cuDNN flash attention on GPU in 16-bit); on CPU through
the head-major einsum cores of ``primitives.attention_core``, whose reference both are tested against.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

import primitives.attention_core as attention_core
from primitives.attention_core import attend, attend_causal_blocks
from primitives.base import Dims, Primitive, dense_init, register
from primitives.rope import apply_rope

__all__ = ["Attention", "SlidingWindowAttention"]

LIBRARY_ON_CPU = False
"""Route CPU training through ``jax.nn.dot_product_attention`` too (slower there; see ``_attend_causal``)."""


def _implementation(dtype) -> str | None:
    """cuDNN on a GPU in fp16/bf16 (its flash kernel takes no float32); otherwise ``None`` (XLA).

    ``implementation=None`` still means XLA on every backend in this JAX, so cuDNN is asked for.
    """
    return "cudnn" if jax.default_backend() == "gpu" and dtype in (jnp.bfloat16, jnp.float16) else None


def _attend_causal(q, k, v, window: int | None, dtype):
    """Causal (sliding-window) attention of the parallel forward: the library op, except on CPU.

    On CPU the library's implementation is the reference's einsums in the ``[b, t, heads, k]`` layout,
    whose layout copies cost ~12 % of a d256 training step (profiled per op: copy fusions 218 -> 357
    ms/step, plus 52 ms of transposes), so CPU keeps the head-major cores, over causal query blocks;
    ``LIBRARY_ON_CPU`` switches it over. The block size is read when the step is traced
    (``attention_core.QUERY_BLOCK``), so a benchmark can trace steps at other sizes.
    """
    if jax.default_backend() == "cpu" and not LIBRARY_ON_CPU:
        return attend_causal_blocks(q, k, v, window, dtype, attention_core.QUERY_BLOCK)
    return _attend_library(q, k, v, window, dtype)


def _attend_library(q, k, v, window: int | None, dtype):
    """Causal (sliding-window) attention via ``jax.nn.dot_product_attention``.

    Same head-major layouts in and out; the library takes ``[b, t, heads, k]`` with query head
    ``n * g_per_kv + g`` served by kv head ``n`` (its GQA grouping is ours). Our window keeps keys with
    ``t - s < window``, the library's left window keeps ``t - s <= left``: hence ``window - 1``.
    """
    b, n, g, t, kd = q.shape
    qt = q.reshape(b, n * g, t, kd).transpose(0, 2, 1, 3)
    kt, vt = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)
    kwargs = dict(is_causal=True, local_window_size=None if window is None else (window - 1, 0))
    impl = _implementation(q.dtype)
    if impl is None:
        o = jax.nn.dot_product_attention(qt, kt, vt, **kwargs)
    else:
        try:
            o = jax.nn.dot_product_attention(qt, kt, vt, implementation=impl, **kwargs)
        except (NotImplementedError, ValueError, RuntimeError):  # a shape or GPU cuDNN cannot serve
            o = jax.nn.dot_product_attention(qt, kt, vt, **kwargs)
    return o.astype(dtype).transpose(0, 2, 1, 3).reshape(b, n, g, t, kd)


def _mean_context(seq_len: int, window: int | None) -> float:
    """Average number of keys a query attends to over a causal sequence of ``seq_len`` tokens."""
    if window is None or window >= seq_len:
        return (seq_len + 1) / 2
    # positions 0..w-1 see t+1 keys, the rest see w keys
    return (window * (window + 1) / 2 + (seq_len - window) * window) / seq_len


@register
class Attention(Primitive):
    """Causal grouped-query attention with RoPE; Llama-style projections without bias.

    Option ``n_heads`` gives this layer its own number of query heads (a multiple of the spec's
    ``n_kv_heads``; default: the spec's); parameter matching (``scaling.matching``) uses it for layouts
    without an MLP layer to resize.
    """

    name = "attention"
    shorthand = "A"
    OPTIONS: dict = {"n_heads": None}
    POSITIVE_INT_OPTIONS = ("n_heads",)

    @classmethod
    def heads(cls, dims: Dims, opts: dict) -> int:
        h = opts.get("n_heads") or dims.n_heads
        if h % dims.n_kv_heads:
            raise ValueError(f"primitive {cls.name!r}: n_heads={h} must be a multiple of n_kv_heads={dims.n_kv_heads}")
        return h

    def __init__(self, dims: Dims, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32, **options):
        opts = self.check_options(options)
        self.window: int | None = opts.get("window")
        d, h, n, k = dims.d_model, self.heads(dims, opts), dims.n_kv_heads, dims.head_dim
        self.n_heads, self.n_kv, self.head_dim, self.theta = h, n, k, dims.rope_theta
        self.dtype = dtype
        init = dense_init()
        self.wq = nnx.Param(init(rngs.params(), (d, h, k), param_dtype))
        self.wk = nnx.Param(init(rngs.params(), (d, n, k), param_dtype))
        self.wv = nnx.Param(init(rngs.params(), (d, n, k), param_dtype))
        self.wo = nnx.Param(init(rngs.params(), (h, k, d), param_dtype))

    def _qkv(self, x, positions):
        """Head-major projections: q ``[b, n, g, t, k]`` (g query heads per kv head), k/v ``[b, n, t, k]``."""
        d, n, k = x.shape[-1], self.n_kv, self.head_dim
        x = x.astype(self.dtype)
        wq = self.wq[...].astype(self.dtype).reshape(d, n, self.n_heads // n, k)
        q = jnp.einsum("btd,dngk->bngtk", x, wq)
        kk = jnp.einsum("btd,dnk->bntk", x, self.wk[...].astype(self.dtype))
        v = jnp.einsum("btd,dnk->bntk", x, self.wv[...].astype(self.dtype))
        return apply_rope(q, positions, self.theta), apply_rope(kk, positions, self.theta), v

    def _out(self, o):
        n, k, d = self.n_kv, self.head_dim, self.wo.shape[-1]
        wo = self.wo[...].astype(self.dtype).reshape(n, self.n_heads // n, k, d)
        return jnp.einsum("bngtk,ngkd->btd", o, wo)

    def __call__(self, x: jax.Array) -> jax.Array:
        t = x.shape[1]
        pos = jnp.arange(t)
        q, k, v = self._qkv(x, pos)
        return self._out(_attend_causal(q, k, v, self.window, self.dtype))

    def _cache_len(self, max_len: int) -> int:
        return max_len if self.window is None else min(self.window, max_len)

    def init_state(self, batch: int, max_len: int, dtype=jnp.float32):
        size = self._cache_len(max_len)
        shape = (batch, self.n_kv, size, self.head_dim)
        # slot_pos: absolute position held by each cache slot (-1 = empty); makes the window ring
        # buffer and the full cache share one masking rule.
        return {"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype),
                "slot_pos": jnp.full((size,), -1, jnp.int32)}

    def step(self, x, state, pos):
        q, k, v = self._qkv(x, jnp.reshape(pos, (1,)))
        size = state["k"].shape[2]
        slot = pos % size
        kc = jax.lax.dynamic_update_slice_in_dim(state["k"], k.astype(state["k"].dtype), slot, axis=2)
        vc = jax.lax.dynamic_update_slice_in_dim(state["v"], v.astype(state["v"].dtype), slot, axis=2)
        slot_pos = state["slot_pos"].at[slot].set(pos)
        valid = slot_pos >= 0
        if self.window is not None:
            valid &= slot_pos > pos - self.window
        o = attend(q, kc.astype(self.dtype), vc.astype(self.dtype), valid[None, :], self.dtype)
        return self._out(o), {"k": kc, "v": vc, "slot_pos": slot_pos}

    @classmethod
    def param_count(cls, dims: Dims, **options) -> int:
        h = cls.heads(dims, cls.check_options(options))
        d, n, k = dims.d_model, dims.n_kv_heads, dims.head_dim
        return 2 * d * h * k + 2 * d * n * k

    @classmethod
    def flops_per_token(cls, dims: Dims, seq_len: int, **options) -> int:
        opts = cls.check_options(options)
        proj = 2 * cls.param_count(dims, **options)
        # QK^T and PV: 2 matmuls x 2 FLOPs per multiply-add x heads x head_dim x attended keys
        ctx = _mean_context(seq_len, opts.get("window"))
        return int(round(proj + 4 * cls.heads(dims, opts) * dims.head_dim * ctx))

    @classmethod
    def state_bytes(cls, dims: Dims, seq_len: int, dtype_bytes: int, **options) -> int:
        opts = cls.check_options(options)
        window = opts.get("window")
        kept = seq_len if window is None else min(window, seq_len)
        return 2 * kept * dims.n_kv_heads * dims.head_dim * dtype_bytes


@register
class SlidingWindowAttention(Attention):
    """Grouped-query attention restricted to the last ``window`` tokens; cache bounded by the window."""

    name = "sliding_window_attention"
    shorthand = "W"
    OPTIONS = {"window": 512, "n_heads": None}
    POSITIVE_INT_OPTIONS = ("window", *Attention.POSITIVE_INT_OPTIONS)
