"""The optimiser of ``composer train``: AdamW under a warmup-stable-decay learning-rate schedule.

WSD (warmup-stable-decay; Hu et al. 2024, MiniCPM §4) keeps the peak rate for most of the run and
decays linearly at the end; decaying to zero by default follows Bergsma et al. 2025 ("Straight to
Zero: why linearly decaying the learning rate to zero works best").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import optax

from composer.schedules import wsd_schedule  # re-exported: the schedule lives with the optimiser's users

if TYPE_CHECKING:
    from composer.train_config import TrainConfig

__all__ = ["wsd_schedule", "make_optimizer", "decay_mask"]


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
