"""Packed training: one spec at several (seed, peak learning rate) members in one compiled program.

The members of a pack share the spec, the recipe and the shapes; only their initialisation (seed),
their data stream (the same seed) and their peak learning rate differ. They stack along a leading
axis and train under ``jax.vmap`` of the solo step of ``composer.train``. The learning rate is not
rebuilt per member: the warmup-stable-decay schedule is linear in its peak and decoupled AdamW scales
its whole update (the weight decay term included) by the scheduled rate, so a member at peak ``lr_k``
takes the reference update times ``lr_k / config.lr``, which is its own run's update (to float
rounding; ``tests/test_packed_train.py`` checks every member against ``composer.train.train``).
Gradient clipping comes before the learning rate and is per member.

No evaluation while training: a packed run is short (the ``text`` proxy, a learning-rate grid) and is
scored once at the end on the fixed windows of ``config.eval_split``. With ``out_dirs`` (one per
member) every member leaves the run folder its solo run would (``composer.checkpoint``: its config,
spec, per-step metrics, the final evaluation and an Orbax checkpoint of the last step), so
``composer.train.evaluate_run`` scores it on another split and ``train(..., resume=True)`` finds it
finished; there are no intermediate checkpoints, so a pack killed mid-way trains again from step 0.
A member whose loss turns non-finite keeps training on NaNs beside the others and comes back as the
``DivergenceError`` its solo run would raise (its folder keeps the metrics, no checkpoint).
"""

from __future__ import annotations

import functools
import math
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from composer.errors import DivergenceError, UsageError
from composer.optim import make_optimizer
from composer.spec import ArchSpec
from composer.steps import loss_and_accuracy, row_loss_and_accuracy
from composer.train import _check_inputs, init_params, padded_batches, validation_windows
from composer.train_config import TrainConfig, TrainResult

__all__ = ["train_packed"]


def _stack(trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def train_packed(spec: ArchSpec, source, config: TrainConfig, members: Sequence[tuple[int, float]], *,
                 out_dirs: Sequence[str] | None = None) -> list[TrainResult | DivergenceError]:
    """Train ``spec`` at every ``(seed, lr)`` of ``members`` under ``config`` (its own seed, lr and
    out_dir are ignored); per member its ``TrainResult`` (scored on ``config.eval_split``) or its
    divergence. ``out_dirs``: one new run folder per member (see the module docstring)."""
    members = list(members)
    if not members or len(set(members)) != len(members) or any(lr <= 0 for _, lr in members):
        raise UsageError(f"members: need distinct (seed, lr) pairs with lr > 0, got {members}")
    if config.eval_batches < 1:
        raise UsageError("eval_batches: a packed run is scored at its end; give eval_batches >= 1")
    if out_dirs is not None and len(out_dirs) != len(members):
        raise UsageError(f"out_dirs: one run folder per member, got {len(out_dirs)} for {len(members)}")
    _check_inputs(spec, source, config)
    folders = _open_folders(spec, source, config, members, out_dirs)
    ref = config.replace(seed=0, out_dir=None)
    graphdef = None
    inits = []
    for seed, _ in members:
        graphdef, params = init_params(spec, config.replace(seed=seed))
        inits.append(params)
    params = _stack(inits)
    try:  # a graph holding a dict attribute (some recurrent layers) is not hashable: no shared cache
        hash(graphdef)
        tx, vstep = _packed_step(graphdef, ref.optimizer_view())
    except TypeError:
        tx, vstep = _packed_step.__wrapped__(graphdef, ref.optimizer_view())
    opt_state = jax.vmap(tx.init)(params)
    ratio = jnp.asarray([lr / ref.lr for _, lr in members], jnp.float32)
    b, t = config.batch_size, config.seq_len
    batch = lambda s: np.stack([source.batch("train", s, b, t, seed=seed) for seed, _ in members])  # noqa: E731
    losses, pending, t0, compile_s = [], [], time.perf_counter(), 0.0
    for s in range(config.steps):
        params, opt_state, metrics = vstep(params, opt_state, batch(s), ratio)
        if s == 0:  # the first call compiles (or loads) the packed step: timed apart
            jax.block_until_ready(metrics)
            compile_s, t0 = time.perf_counter() - t0, time.perf_counter()
        pending.append(metrics)
        if (s + 1) % config.log_every == 0 or s + 1 == config.steps:
            losses += [np.stack([np.asarray(x) for x in m]) for m in jax.device_get(pending)]
            pending = []
    train_s = time.perf_counter() - t0
    curve = np.stack(losses)  # [steps, 3 (loss, accuracy, gradient norm), K]
    windows = validation_windows(source, config)
    eval_loss, eval_acc, eval_se = _evaluate(graphdef, params, windows, b)
    out: list[TrainResult | DivergenceError] = []
    for k, (seed, lr) in enumerate(members):
        bad = np.nonzero(~np.isfinite(curve[:, 0, k]) | ~np.isfinite(curve[:, 2, k]))[0]
        if folders:
            _write_member(folders[k], config.replace(seed=seed, lr=lr), curve[:, :, k],
                          None if bad.size else (eval_loss[k], eval_acc[k], eval_se[k], len(windows)),
                          jax.tree.map(lambda x: x[k], (params, opt_state)))  # noqa: B023
        if bad.size:
            out.append(DivergenceError(f"training diverged at step {bad[0] + 1}: loss {curve[bad[0], 0, k]} "
                                       f"(seed {seed}, lr {lr:.3g}); lower the learning rate"))
            continue
        out.append(TrainResult(steps=config.steps, start_step=0, final_train_loss=float(curve[-1, 0, k]),
                               eval_loss=eval_loss[k], eval_accuracy=eval_acc[k], eval_loss_se=eval_se[k],
                               tokens_per_second=config.steps * b * t / max(train_s, 1e-9),
                               compile_seconds=compile_s / len(members), first_step_seconds=0.0,
                               train_seconds=train_s / len(members),
                               train_losses=tuple(float(x) for x in curve[:, 0, k]),
                               out_dir=str(folders[k].dir) if folders else None))
    return out


def _open_folders(spec, source, config: TrainConfig, members, out_dirs) -> list:
    """One ``RunFolder`` per member (each refuses a folder that already holds a run), or ``[]``."""
    from composer.checkpoint import RunFolder

    if out_dirs is None:
        return []
    opened = []
    try:
        for (seed, lr), d in zip(members, out_dirs):
            opened.append(RunFolder(spec, source, config.replace(seed=seed, lr=lr, out_dir=str(d)), resume=False))
            opened[-1].metrics.truncate_after(0)  # a diverged member's records of an earlier try
    except Exception:
        for f in opened:
            f.close()
        raise
    return opened


def _write_member(folder, config: TrainConfig, curve: np.ndarray, evaluation, state) -> None:
    """What the member's solo run writes: every step's metrics, the final evaluation, the last checkpoint."""
    lrs = np.asarray(config.schedule()(jnp.arange(config.steps)))
    try:
        for s, (loss, acc, norm) in enumerate(curve):
            folder.metrics.write({"step": s + 1, "split": "train", "loss": float(loss), "accuracy": float(acc),
                                  "grad_norm": float(norm), "lr": float(lrs[s])})
        if evaluation is not None:
            loss, acc, se, n = evaluation
            folder.metrics.write({"step": config.steps, "split": "validation", "loss": loss, "accuracy": acc,
                                  "loss_se": se, "windows": n, "tokens": int(n * config.seq_len)})
            folder.ckpts.save(config.steps, *state)
    finally:
        folder.close()


@functools.lru_cache(maxsize=8)
def _packed_step(graphdef, opt_config: TrainConfig):
    """``(tx, step)``: the vmapped solo step, one per (graph, optimiser), so packs of a spec share it."""
    tx = make_optimizer(opt_config)

    def step(params, opt_state, tokens, ratio):
        (loss, acc), grads = jax.value_and_grad(loss_and_accuracy, has_aux=True)(params, graphdef, tokens)
        updates, opt_state = tx.update(grads, opt_state, params)
        updates = jax.tree.map(lambda u: u * ratio, updates)
        return optax.apply_updates(params, updates), opt_state, (loss, acc, optax.tree.norm(grads))

    return tx, jax.jit(jax.vmap(step), donate_argnums=(0, 1))


@functools.lru_cache(maxsize=8)
def _packed_eval(graphdef):
    return jax.jit(jax.vmap(lambda p, tok: row_loss_and_accuracy(p, graphdef, tok), in_axes=(0, None)))


def _evaluate(graphdef, params, windows: np.ndarray, batch_size: int):
    """Per member: mean loss, mean accuracy and the loss's standard error over ``windows`` (batches of one
    shape, the last padded with copies of the first window, as ``composer.train`` scores)."""
    try:
        fn = _packed_eval(graphdef)
    except TypeError:
        fn = _packed_eval.__wrapped__(graphdef)
    losses, accs = [], []
    for chunk, keep in padded_batches(windows, batch_size):
        loss, acc = jax.device_get(fn(params, chunk))
        losses.append(loss[:, :keep])
        accs.append(acc[:, :keep])
    loss, acc = np.concatenate(losses, axis=1), np.concatenate(accs, axis=1)
    n = loss.shape[1]
    se = loss.std(axis=1, ddof=1) / math.sqrt(n) if n > 1 else np.full(loss.shape[0], math.nan)
    return [float(x) for x in loss.mean(1)], [float(x) for x in acc.mean(1)], [float(x) for x in se]
