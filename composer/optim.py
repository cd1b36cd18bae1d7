"""The optimiser of ``composer train``: AdamW under a warmup-stable-decay learning-rate schedule.

WSD (warmup-stable-decay; Hu et al. 2024, MiniCPM §4) keeps the peak rate for most of the run and
decays linearly at the end; decaying to zero by default follows Bergsma et al. 2025 ("Straight to
Zero: why linearly decaying the learning rate to zero works best").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import optax

if TYPE_CHECKING:
    from composer.train import TrainConfig

__all__ = ["wsd_schedule", "make_optimizer", "decay_mask"]


def wsd_schedule(lr: float, steps: int, warmup_steps: int, decay_steps: int,
                 final_lr: float = 0.0) -> optax.Schedule:
    """Linear warmup ``0 -> lr`` over ``warmup_steps``, flat ``lr``, linear decay to ``final_lr``.

    The rate of update ``s`` (counted from 0) is ``schedule(s)``, so the first update runs at 0
    when there is a warmup (the optax convention), and with a decay ``schedule(steps) == final_lr``:
    the last update runs at ``final_lr + (lr - final_lr) / decay_steps``. Pieces of length zero are
    left out (``optax.linear_schedule`` over zero steps would hold its start value).
    """
    if warmup_steps + decay_steps > steps:
        raise ValueError(f"warmup_steps + decay_steps = {warmup_steps + decay_steps} exceeds steps = {steps}")
    stable_steps = steps - warmup_steps - decay_steps
    pieces = [(warmup_steps, optax.linear_schedule(0.0, lr, warmup_steps)),
              (stable_steps, optax.constant_schedule(lr)),
              (decay_steps, optax.linear_schedule(lr, final_lr, decay_steps))]
    kept = [(n, s) for n, s in pieces if n > 0]
    boundaries, total = [], 0
    for n, _ in kept[:-1]:
        total += n
        boundaries.append(total)
    return optax.join_schedules([s for _, s in kept], boundaries)


def decay_mask(params):
    """Weight decay on matrices only; norm gains (1-D) are not decayed, as in Llama and GPT-3."""
    return jax.tree.map(lambda p: p.ndim >= 2, params)


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """Global-norm clipping (skipped when ``grad_clip == 0``), then AdamW on ``config.schedule()``."""
    adamw = optax.adamw(config.schedule(), b1=config.b1, b2=config.b2, eps=config.eps,
                        weight_decay=config.weight_decay, mask=decay_mask)
    if config.grad_clip > 0:
        return optax.chain(optax.clip_by_global_norm(config.grad_clip), adamw)
    return adamw
