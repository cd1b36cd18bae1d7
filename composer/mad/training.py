"""One task's whole training run as a single jitted function: ``lax.scan`` over steps and a test curve.

The initial parameters and the data arrive as arrays (``train_x/y`` and a ``[steps, batch]`` index
array), the layout as the int array ``types`` and the learning rate and weight decay as scalars, so
every candidate and every point of an (lr, wd) sweep reuses one executable per (task shapes, depth,
primitive space).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from composer.mad.metrics import cross_entropy, macro_accuracy, micro_counts
from composer.mad.proxy_model import ProxyModel

__all__ = ["Plan", "make_run", "pad_rows"]


@dataclasses.dataclass(frozen=True)
class Plan:
    """The static facts of one compiled run (everything else is a runtime argument)."""

    steps: int
    eval_interval: int
    """Steps between test evaluations; divides ``steps``."""
    eval_batch: int
    metric: str
    schedule: str
    betas: tuple[float, float]
    eps: float
    warmup_frac: float = 0.1
    final_lr_frac: float = 0.1
    min_lr: float = 1e-6
    steps_per_epoch: int = 1

    @property
    def n_evals(self) -> int:
        return self.steps // self.eval_interval


def _lr_fn(plan: Plan, peak: jax.Array):
    """Learning rate at optimiser count ``t`` (0-based) with a runtime peak."""
    if plan.schedule == "epoch_cosine":
        epochs = max(plan.steps // plan.steps_per_epoch, 1)

        def lr(t):
            e = jnp.minimum(t // plan.steps_per_epoch, epochs)
            return plan.min_lr + (peak - plan.min_lr) * 0.5 * (1 + jnp.cos(jnp.pi * e / epochs))
        return lr
    warm = max(1, round(plan.warmup_frac * plan.steps))
    decay = max(plan.steps - warm, 1)
    final = plan.final_lr_frac * peak

    def lr(t):
        frac = jnp.clip((t - warm) / decay, 0.0, 1.0)
        cosine = final + (peak - final) * 0.5 * (1 + jnp.cos(jnp.pi * frac))
        return jnp.where(t < warm, peak * (t + 1) / warm, cosine)
    return lr


def _optimizer(plan: Plan, lr: jax.Array, wd: jax.Array) -> optax.GradientTransformation:
    """AdamW (decoupled decay on every parameter, as MAD/torch) with runtime lr and wd."""
    return optax.chain(optax.scale_by_adam(b1=plan.betas[0], b2=plan.betas[1], eps=plan.eps),
                       optax.add_decayed_weights(wd), optax.scale_by_learning_rate(_lr_fn(plan, lr)))


def pad_rows(x: np.ndarray, multiple: int, fill: int) -> np.ndarray:
    """Pad axis 0 of a numpy array to a multiple of ``multiple`` with ``fill``."""
    extra = -x.shape[0] % multiple
    if not extra:
        return x
    return np.concatenate([x, np.full((extra,) + x.shape[1:], fill, x.dtype)])


def _evaluate(model: ProxyModel, plan: Plan, params, types, test_x, test_y):
    """Test loss, micro accuracy and (if asked) MAD's per-batch macro accuracy."""
    xs = test_x.reshape(-1, plan.eval_batch, test_x.shape[-1])
    ys = test_y.reshape(-1, plan.eval_batch, test_y.shape[-1])

    def one(batch):
        logits = model.logits(params, types, batch[0])
        loss, count = cross_entropy(logits, batch[1])
        correct, _ = micro_counts(logits, batch[1])
        macro = macro_accuracy(logits, batch[1]) if plan.metric == "macro" else jnp.float32(0)
        return loss, count, correct, macro

    loss, count, correct, macro = jax.lax.map(one, (xs, ys))
    n = jnp.maximum(jnp.sum(count), 1)
    acc = jnp.sum(correct) / n
    if plan.metric == "macro":
        acc = jnp.nanmean(jnp.where(count > 0, macro, jnp.nan))
    return jnp.sum(loss) / n, acc


def make_run(model: ProxyModel, plan: Plan, on_trace=None):
    """``run(params, types, train_x, train_y, batch_idx, test_x, test_y, lr, wd) -> curves`` (un-jitted).

    ``batch_idx`` ``[steps, batch]`` indexes rows of ``train_x/y``; ``test_*`` rows are a multiple of
    ``plan.eval_batch`` (pad targets with ``IGNORE``). Returns per evaluation point the mean training
    loss since the previous point, the test loss and the test accuracy.
    """

    def loss_fn(params, types, x, y):
        total, count = cross_entropy(model.logits(params, types, x), y)
        return total / jnp.maximum(count, 1)

    def run(params, types, train_x, train_y, batch_idx, test_x, test_y, lr, wd):
        if on_trace is not None:
            on_trace()
        opt = _optimizer(plan, lr, wd)

        def step(carry, idx):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, types, train_x[idx], train_y[idx])
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        def chunk(carry, idx_chunk):
            carry, losses = jax.lax.scan(step, carry, idx_chunk)
            test_loss, acc = _evaluate(model, plan, carry[0], types, test_x, test_y)
            return carry, (jnp.mean(losses), test_loss, acc)

        chunks = batch_idx.reshape(plan.n_evals, plan.eval_interval, batch_idx.shape[-1])
        _, (train_loss, test_loss, acc) = jax.lax.scan(chunk, (params, opt.init(params)), chunks)
        return {"train_loss": train_loss, "test_loss": test_loss, "acc": acc}

    return run

