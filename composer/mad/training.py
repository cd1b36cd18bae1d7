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

__all__ = ["Plan", "make_run", "optimizer", "pad_rows", "schedule"]


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
    stop_at: float | None = None
    """Stop training after the first evaluation whose test accuracy reaches this (MAD's 0.999 rule):
    the rest of the curve is never computed, which is where early stopping saves its time."""

    @property
    def n_evals(self) -> int:
        return self.steps // self.eval_interval


def schedule(plan: Plan, peak: jax.Array) -> optax.Schedule:
    """Learning rate of update ``t`` (0-based) with a runtime ``peak``, from optax pieces.

    ``warmup_cosine``: a linear warmup starting at ``peak / warm`` (MAD's ``LambdaLR`` convention,
    ``lr(t) = peak * (t + 1) / warm``, so update ``warm - 1`` runs at the peak) joined at ``warm`` to
    a cosine (Loshchilov & Hutter 2017, SGDR eq. 5) from ``peak`` to ``final_lr_frac * peak``.
    ``epoch_cosine``: MAD's ``CosineAnnealingLR(T_max=epochs, eta_min=min_lr)`` stepped per epoch.
    ``tests/mad/test_optim_parity.py`` holds the closed forms these equal.
    """
    if plan.schedule == "epoch_cosine":
        epochs = max(plan.steps // plan.steps_per_epoch, 1)
        # the cosine spans peak - min_lr and sits on min_lr (alpha = min_lr / peak would divide by
        # a traced peak); the epoch count clamps at ``epochs`` inside cosine_decay_schedule
        cosine = optax.cosine_decay_schedule(peak - plan.min_lr, epochs)
        return lambda t: plan.min_lr + cosine(t // plan.steps_per_epoch)
    warm = max(1, round(plan.warmup_frac * plan.steps))
    # over max(warm - 1, 1) steps: with warm == 1 only count 0 is used, where it gives peak / 1
    warmup = optax.linear_schedule(peak / warm, peak, max(warm - 1, 1))
    cosine = optax.cosine_decay_schedule(peak, max(plan.steps - warm, 1), alpha=plan.final_lr_frac)
    return optax.join_schedules([warmup, cosine], [warm])


def optimizer(plan: Plan, lr: jax.Array, wd: jax.Array) -> optax.GradientTransformation:
    """``optax.adamw`` (decoupled decay on every parameter, as MAD/torch) with runtime lr and wd."""
    return optax.adamw(schedule(plan, lr), b1=plan.betas[0], b2=plan.betas[1], eps=plan.eps, weight_decay=wd)


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
        opt = optimizer(plan, lr, wd)

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
        if plan.stop_at is None:
            _, (train_loss, test_loss, acc) = jax.lax.scan(chunk, (params, opt.init(params)), chunks)
            return {"train_loss": train_loss, "test_loss": test_loss, "acc": acc}
        return _run_until(chunk, chunks, (params, opt.init(params)), plan.stop_at)

    return run


def _run_until(chunk, chunks, carry, stop_at: float):
    """``chunk`` over ``chunks`` in a ``lax.while_loop`` that ends after the first evaluation with
    accuracy >= ``stop_at``; unrun points of the curves stay NaN and ``evals_done`` counts the run ones."""
    n = chunks.shape[0]
    empty = jnp.full((n,), jnp.nan, jnp.float32)

    def cond(state):
        i, _, curves = state
        return (i < n) & ~((i > 0) & (curves[2][jnp.maximum(i - 1, 0)] >= stop_at))

    def body(state):
        i, carry, curves = state
        carry, point = chunk(carry, chunks[i])
        return i + 1, carry, tuple(c.at[i].set(v.astype(c.dtype)) for c, v in zip(curves, point))

    done, _, (train_loss, test_loss, acc) = jax.lax.while_loop(cond, body, (jnp.int32(0), carry, (empty,) * 3))
    return {"train_loss": train_loss, "test_loss": test_loss, "acc": acc, "evals_done": done}

