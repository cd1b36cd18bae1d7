"""The jitted training and evaluation steps, as pure functions of a parameter pytree.

The model is split once (``nnx.split``) into a static graph and a plain nested dict of arrays;
the steps merge them inside ``jax.jit``, so NNX costs nothing per step, and the train step
donates the parameter and optimiser buffers so XLA updates them in place. Pure dicts flatten
in C++ (an ``nnx.State`` flattens in Python, about 20x slower), which matters for tiny models
whose steps take milliseconds.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from composer.optim import make_optimizer

if TYPE_CHECKING:
    from composer.train_config import TrainConfig

__all__ = ["loss_and_accuracy", "row_loss_and_accuracy", "train_step_fn", "eval_step_fn"]


def loss_and_accuracy(params, graphdef: nnx.GraphDef, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean next-token cross-entropy (nats) and top-1 accuracy of ``tokens`` ``[b, t+1]``."""
    model = nnx.merge(graphdef, params)
    logits = model(tokens[:, :-1])  # [b, t, v] float32
    targets = tokens[:, 1:]
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    accuracy = jnp.mean((jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32))
    return jnp.mean(nll), accuracy


@functools.lru_cache(maxsize=8)
def train_step_fn(graphdef: nnx.GraphDef, config: TrainConfig):
    """``step(params, opt_state, tokens, index) -> (params, opt_state, metrics)``, jitted with donation.

    ``index`` (the update's 0-based number) only labels the metrics with its learning rate.
    Cached on ``(graphdef, config)`` so runs of one model and optimiser in a process share the
    compiled step; callers pass ``config.optimizer_view()`` to keep unrelated fields out of the key.
    """
    tx, schedule = make_optimizer(config), config.schedule()

    def step(params, opt_state, tokens, index):
        (loss, acc), grads = jax.value_and_grad(loss_and_accuracy, has_aux=True)(params, graphdef, tokens)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        metrics = {"loss": loss, "accuracy": acc, "grad_norm": optax.tree.norm(grads), "lr": schedule(index)}
        return params, opt_state, metrics

    return jax.jit(step, donate_argnums=(0, 1))


def row_loss_and_accuracy(params, graphdef: nnx.GraphDef, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per row of ``tokens`` ``[b, t+1]``: mean next-token cross-entropy (nats) and accuracy, ``[b]`` each."""
    model = nnx.merge(graphdef, params)
    logits = model(tokens[:, :-1])
    targets = tokens[:, 1:]
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
    return jnp.mean(nll, axis=-1), jnp.mean(correct, axis=-1)


@functools.lru_cache(maxsize=8)
def eval_step_fn(graphdef: nnx.GraphDef):
    """``eval(params, tokens) -> (loss[b], accuracy[b])`` per window, jitted."""
    def evaluate(params, tokens):
        return row_loss_and_accuracy(params, graphdef, tokens)

    return jax.jit(evaluate)
