"""The hybrid language model built from an ``ArchSpec`` (Flax NNX).

token embedding -> layers (``x = x + prim(RMSNorm(x))``) -> final RMSNorm -> LM head (docs/method.md §1).
Parameters are kept in ``param_dtype``; activations run in ``dtype`` (bf16 mixed precision when
``dtype=jnp.bfloat16``); logits are returned in float32.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

import primitives
from composer.spec import ArchSpec
from primitives import RMSNorm

__all__ = ["Layer", "LM", "generate"]


class Layer(nnx.Module):
    """One pre-norm residual layer around a primitive."""

    def __init__(self, spec: ArchSpec, index: int, *, rngs: nnx.Rngs, dtype, param_dtype):
        layer = spec.layers[index]
        self.norm = RMSNorm(spec.d_model, eps=spec.norm_eps, param_dtype=param_dtype)
        cls = primitives.get(layer.primitive)
        self.prim = cls(spec.dims, rngs=rngs, dtype=dtype, param_dtype=param_dtype, **layer.option_dict)

    def __call__(self, x: jax.Array) -> jax.Array:
        return x + self.prim(self.norm(x)).astype(x.dtype)

    def step(self, x, state, pos):
        y, state = self.prim.step(self.norm(x), state, pos)
        return x + y.astype(x.dtype), state


class LM(nnx.Module):
    """Causal language model over a hybrid stack of primitives."""

    def __init__(self, spec: ArchSpec, *, rngs: nnx.Rngs, dtype=jnp.float32, param_dtype=jnp.float32):
        self.spec = spec
        self.dtype = dtype
        embed_init = nnx.initializers.normal(stddev=0.02)
        self.embed = nnx.Param(embed_init(rngs.params(), (spec.vocab_size, spec.d_model), param_dtype))
        self.layers = nnx.List([Layer(spec, i, rngs=rngs, dtype=dtype, param_dtype=param_dtype)
                                for i in range(spec.n_layers)])
        self.final_norm = RMSNorm(spec.d_model, eps=spec.norm_eps, param_dtype=param_dtype)
        if not spec.tie_embeddings:
            self.lm_head = nnx.Param(embed_init(rngs.params(), (spec.d_model, spec.vocab_size), param_dtype))

    def _logits(self, h: jax.Array) -> jax.Array:
        h = self.final_norm(h)
        if self.spec.tie_embeddings:
            w = self.embed[...].astype(self.dtype)
            return jnp.einsum("btd,vd->btv", h, w, preferred_element_type=jnp.float32)
        return jnp.einsum("btd,dv->btv", h, self.lm_head[...].astype(self.dtype),
                          preferred_element_type=jnp.float32)

    def embed_tokens(self, tokens: jax.Array) -> jax.Array:
        return jnp.take(self.embed[...], tokens, axis=0).astype(self.dtype)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        """Logits ``[b, t, vocab]`` (float32) for int tokens ``[b, t]``."""
        h = self.embed_tokens(tokens)
        for layer in self.layers:
            h = layer(h)
        return self._logits(h)

    def init_state(self, batch: int, max_len: int) -> list[Any]:
        """Per-layer decode caches/states for ``batch`` sequences of up to ``max_len`` tokens."""
        return [layer.prim.init_state(batch, max_len, self.dtype) for layer in self.layers]

    def step(self, tokens: jax.Array, state: list[Any], pos: jax.Array):
        """One decode step: tokens ``[b, 1]`` at position ``pos`` -> logits ``[b, 1, vocab]``."""
        h = self.embed_tokens(tokens)
        new_state = []
        for layer, s in zip(self.layers, state):
            h, s = layer.step(h, s, pos)
            new_state.append(s)
        return self._logits(h), new_state


def _sample(logits: jax.Array, key: jax.Array, temperature: float) -> jax.Array:
    if temperature <= 0.0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return jax.random.categorical(key, logits / temperature, axis=-1).astype(jnp.int32)


def generate(model: LM, prompt: jax.Array, max_new_tokens: int, *, temperature: float = 0.0,
             key: jax.Array | None = None) -> jax.Array:
    """Greedy (``temperature=0``) or sampled continuation of ``prompt`` ``[b, t0]`` using the caches.

    The prompt is fed one token at a time through ``step`` (the same path as decoding), all inside
    one jitted ``lax.scan``. Returns the ``[b, max_new_tokens]`` new tokens.
    """
    b, t0 = prompt.shape
    total = t0 + max_new_tokens
    key = jax.random.key(0) if key is None else key
    graphdef, params = nnx.split(model)

    @jax.jit
    def run(params, prompt, key):
        m = nnx.merge(graphdef, params)
        buf = jnp.zeros((b, total), jnp.int32).at[:, :t0].set(prompt.astype(jnp.int32))

        def body(carry, i):
            buf, state, key = carry
            key, sub = jax.random.split(key)
            tok = jax.lax.dynamic_slice_in_dim(buf, i, 1, axis=1)
            logits, state = m.step(tok, state, i)
            nxt = _sample(logits[:, 0], sub, temperature)
            keep = jax.lax.dynamic_slice_in_dim(buf, i + 1, 1, axis=1)[:, 0]
            nxt = jnp.where(i + 1 >= t0, nxt, keep)
            buf = jax.lax.dynamic_update_slice_in_dim(buf, nxt[:, None], i + 1, axis=1)
            return (buf, state, key), None

        (buf, _, _), _ = jax.lax.scan(body, (buf, m.init_state(b, total), key), jnp.arange(total - 1))
        return buf[:, t0:]

    return run(params, prompt, key)
