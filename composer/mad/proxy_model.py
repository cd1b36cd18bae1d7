"""The proxy model of one task: embedding -> switch stack -> LM head, or MAD's autoencoder.

Mirrors ``composer.model.LM`` (embedding N(0, 0.02), pre-norm residual layers, final RMSNorm, tied or
untied head) with the layer stack replaced by ``SwitchStack``; for the compression task the head is
the decoder of ``composer.mad.autoencoder`` applied to the encoder output at the last position.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from composer.mad import autoencoder
from composer.mad.switch_model import SwitchStack
from primitives import rms_norm

__all__ = ["ProxyModel"]


class ProxyModel:
    """``init(key, types)`` (eager) and the pure ``logits(params, types, tokens)`` for one task."""

    def __init__(self, stack: SwitchStack, vocab_size: int, *, autoencoder: bool = False,
                 tie_embeddings: bool = True, embed_std: float = 0.02):
        self.stack = stack
        self.vocab_size = vocab_size
        self.autoencoder = autoencoder
        self.tie_embeddings = tie_embeddings
        self.embed_std = embed_std

    @property
    def d_model(self) -> int:
        return self.stack.dims.d_model

    def init(self, key: jax.Array, types: np.ndarray, stack_key: jax.Array | None = None) -> dict[str, jax.Array]:
        """Fresh parameters (eager). ``stack_key`` (default: from ``key``) seeds the layers, so tasks
        can share one layer init while their embeddings and heads differ."""
        k_embed, k_stack, k_head = jax.random.split(key, 3)
        k_stack = k_stack if stack_key is None else stack_key
        d, v = self.d_model, self.vocab_size
        params = {"embed": self.embed_std * jax.random.normal(k_embed, (v, d), jnp.float32),
                  **self.stack.init(k_stack, types)}
        if self.autoencoder:
            params["decoder"] = autoencoder.init_decoder(k_head, d, v)
            return params
        params["final_norm"] = jnp.ones((d,), jnp.float32)
        if not self.tie_embeddings:
            params["lm_head"] = jax.random.normal(k_head, (d, v), jnp.float32) / np.sqrt(d)
        return params

    def logits(self, params: dict[str, jax.Array], types: jax.Array, tokens: jax.Array) -> jax.Array:
        """Float32 logits ``[b, t, V]`` for int tokens ``[b, t]``."""
        h = self.stack(params, types, jnp.take(params["embed"], tokens, axis=0))
        if self.autoencoder:
            return autoencoder.decode(params["decoder"], h[:, -1], tokens.shape[1])
        h = rms_norm(h, params["final_norm"], self.stack.norm_eps)
        if self.tie_embeddings:
            return jnp.einsum("btd,vd->btv", h, params["embed"])
        return jnp.einsum("btd,dv->btv", h, params["lm_head"])
