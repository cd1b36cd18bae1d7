"""Reference implementations for ``train_throughput.py``: the same Llama-style model and optimiser as
Composer's ``AM``-pattern LM, written once in plain JAX (a functional params dict) and once in PyTorch.

Each ``*_reference(spec, config, tokens)`` returns ``(step, setup_seconds, sync)``: ``step()`` runs one
training update on the fixed batch and returns the loss, ``setup_seconds`` is the JAX compile time or
PyTorch's first step, and ``sync(loss)`` waits for the result.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax


def _check_llama(spec) -> int:
    if spec.pattern != "AM" * (spec.n_layers // 2):
        raise ValueError(f"references implement Llama blocks (pattern AM...AM), got {spec.pattern}")
    return spec.n_layers // 2


def _jax_init(spec, key):
    d, h, n, k, f = spec.d_model, spec.n_heads, spec.n_kv_heads, spec.head_dim, spec.d_ffn
    keys = iter(jax.random.split(key, 1 + 7 * _check_llama(spec)))
    normal = lambda *shape: jax.random.normal(next(keys), shape, jnp.float32) * shape[0] ** -0.5  # noqa: E731
    blocks = [{"attn_norm": jnp.ones(d), "wq": normal(d, h, k), "wk": normal(d, n, k), "wv": normal(d, n, k),
               "wo": normal(h, k, d), "mlp_norm": jnp.ones(d), "w_gate": normal(d, f), "w_up": normal(d, f),
               "w_down": normal(f, d)} for _ in range(spec.n_layers // 2)]
    embed = jax.random.normal(next(keys), (spec.vocab_size, d)) * 0.02
    return {"embed": embed, "blocks": blocks, "final_norm": jnp.ones(d)}


def _rms(x, g, eps):
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + eps) * g


def _rope(x, cos, sin):
    x1, x2 = jnp.split(x, 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def _jax_forward(params, tokens, spec):
    t, k = tokens.shape[1], spec.head_dim
    angles = jnp.arange(t)[:, None] * spec.rope_theta ** (-jnp.arange(0, k, 2) / k)
    cos, sin = jnp.cos(angles)[:, None, :], jnp.sin(angles)[:, None, :]  # [t, 1, k/2]
    x = params["embed"][tokens]
    for blk in params["blocks"]:
        y = _rms(x, blk["attn_norm"], spec.norm_eps)
        q = _rope(jnp.einsum("btd,dhk->bthk", y, blk["wq"]), cos, sin)
        kk = _rope(jnp.einsum("btd,dnk->btnk", y, blk["wk"]), cos, sin)
        v = jnp.einsum("btd,dnk->btnk", y, blk["wv"])
        o = jax.nn.dot_product_attention(q, kk, v, is_causal=True)  # GQA: h is a multiple of n
        x = x + jnp.einsum("bthk,hkd->btd", o, blk["wo"])
        y = _rms(x, blk["mlp_norm"], spec.norm_eps)
        x = x + (jax.nn.silu(y @ blk["w_gate"]) * (y @ blk["w_up"])) @ blk["w_down"]
    return _rms(x, params["final_norm"], spec.norm_eps) @ params["embed"].T


def jax_reference(spec, config, tokens):
    params = _jax_init(spec, jax.random.key(0))
    tx = optax.chain(optax.clip_by_global_norm(config.grad_clip),
                     optax.adamw(config.schedule(), b1=config.b1, b2=config.b2, eps=config.eps,
                                 weight_decay=config.weight_decay,
                                 mask=lambda p: jax.tree.map(lambda a: a.ndim >= 2, p)))
    opt_state = tx.init(params)

    def loss_fn(params, tokens):
        logits = _jax_forward(params, tokens[:, :-1], spec)
        return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()

    def step(params, opt_state, tokens):
        loss, grads = jax.value_and_grad(loss_fn)(params, tokens)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    t0 = time.perf_counter()
    jitted = jax.jit(step, donate_argnums=(0, 1))
    jitted.lower(params, opt_state, tokens).compile()
    compile_s = time.perf_counter() - t0
    state = [params, opt_state]

    def run():
        state[0], state[1], loss = jitted(state[0], state[1], tokens)
        return loss

    return run, compile_s, lambda loss: loss.block_until_ready()


def _torch_modules():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Block(nn.Module):
        def __init__(self, spec):
            super().__init__()
            d, h, n, k, f = spec.d_model, spec.n_heads, spec.n_kv_heads, spec.head_dim, spec.d_ffn
            self.h, self.n, self.k, self.eps = h, n, k, spec.norm_eps
            self.attn_norm, self.mlp_norm = nn.Parameter(torch.ones(d)), nn.Parameter(torch.ones(d))
            self.wq, self.wk, self.wv = nn.Linear(d, h * k, bias=False), nn.Linear(d, n * k, bias=False), \
                nn.Linear(d, n * k, bias=False)
            self.wo = nn.Linear(h * k, d, bias=False)
            self.w_gate, self.w_up, self.w_down = nn.Linear(d, f, bias=False), nn.Linear(d, f, bias=False), \
                nn.Linear(f, d, bias=False)

        def forward(self, x, cos, sin):
            b, t, d = x.shape
            y = F.rms_norm(x, (d,), self.attn_norm, self.eps)
            q = _rope(self.wq(y).view(b, t, self.h, self.k), cos, sin).transpose(1, 2)
            kk = _rope(self.wk(y).view(b, t, self.n, self.k), cos, sin).transpose(1, 2)
            v = self.wv(y).view(b, t, self.n, self.k).transpose(1, 2)
            o = F.scaled_dot_product_attention(q, kk, v, is_causal=True, enable_gqa=True)
            x = x + self.wo(o.transpose(1, 2).reshape(b, t, self.h * self.k))
            y = F.rms_norm(x, (d,), self.mlp_norm, self.eps)
            return x + self.w_down(F.silu(self.w_gate(y)) * self.w_up(y))

    def _rope(x, cos, sin):
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)

    class LM(nn.Module):
        def __init__(self, spec):
            super().__init__()
            self.spec = spec
            self.embed = nn.Embedding(spec.vocab_size, spec.d_model)
            nn.init.normal_(self.embed.weight, std=0.02)
            self.blocks = nn.ModuleList(Block(spec) for _ in range(_check_llama(spec)))
            self.final_norm = nn.Parameter(torch.ones(spec.d_model))

        def forward(self, tokens):
            t, k = tokens.shape[1], self.spec.head_dim
            freqs = self.spec.rope_theta ** (-torch.arange(0, k, 2, dtype=torch.float32) / k)
            angles = torch.arange(t, dtype=torch.float32)[:, None] * freqs
            cos, sin = angles.cos()[:, None, :], angles.sin()[:, None, :]
            x = self.embed(tokens)
            for blk in self.blocks:
                x = blk(x, cos, sin)
            x = F.rms_norm(x, (self.spec.d_model,), self.final_norm, self.spec.norm_eps)
            return F.linear(x, self.embed.weight)

    return LM


def torch_reference(spec, config, tokens: np.ndarray):
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = _torch_modules()(spec)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=config.lr, betas=(config.b1, config.b2), eps=config.eps)
    lrs = np.asarray(jax.vmap(config.schedule())(jnp.arange(config.steps)))
    batch = torch.from_numpy(tokens.astype(np.int64))
    count = [0]

    def run():
        for group in opt.param_groups:
            group["lr"] = float(lrs[count[0] % len(lrs)])
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        count[0] += 1
        return loss

    t0 = time.perf_counter()
    run()
    return run, time.perf_counter() - t0, lambda loss: loss.item()
