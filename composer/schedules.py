"""Learning-rate schedules built from optax pieces (imported by the config and the optimiser alike)."""

from __future__ import annotations

import optax

__all__ = ["wsd_schedule"]


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
