"""The MAD trainer's optax schedule and AdamW against the hand-written formulas they replaced.

The reference functions below are the trainer's former implementation, kept here as the definition:
a linear warmup that starts at ``peak / warmup`` (MAD's ``LambdaLR`` convention, the rate of update
``t`` being ``peak * (t + 1) / warmup``) then a cosine to ``final_lr_frac * peak``, or MAD's
per-epoch ``CosineAnnealingLR``; and AdamW with decoupled decay on every parameter (Loshchilov &
Hutter 2019, Algorithm 2; torch's ``AdamW`` with the decay applied before the rate is scaled in).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from composer.mad.training import Plan, optimizer, schedule


def _plan(**kw) -> Plan:
    base = dict(steps=40, eval_interval=10, eval_batch=8, metric="micro", schedule="warmup_cosine",
                betas=(0.9, 0.98), eps=1e-8)
    return Plan(**{**base, **kw})


def reference_lr(plan: Plan, peak: float, t: int) -> float:
    """The former ``_lr_fn``, in float64 Python."""
    if plan.schedule == "epoch_cosine":
        epochs = max(plan.steps // plan.steps_per_epoch, 1)
        e = min(t // plan.steps_per_epoch, epochs)
        return plan.min_lr + (peak - plan.min_lr) * 0.5 * (1 + math.cos(math.pi * e / epochs))
    warm = max(1, round(plan.warmup_frac * plan.steps))
    decay = max(plan.steps - warm, 1)
    final = plan.final_lr_frac * peak
    if t < warm:
        return peak * (t + 1) / warm
    frac = min(max((t - warm) / decay, 0.0), 1.0)
    return final + (peak - final) * 0.5 * (1 + math.cos(math.pi * frac))


def reference_adamw(plan: Plan, peak: float, wd: float, params, grads_seq):
    """The former optimiser: Adam moments with bias correction, ``+ wd * p``, times ``-lr(t)``."""
    b1, b2 = plan.betas
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    for t, grads in enumerate(grads_seq):
        lr = reference_lr(plan, peak, t)
        for k in p:
            g = np.asarray(grads[k], np.float64)
            m[k] = b1 * m[k] + (1 - b1) * g
            v2[k] = b2 * v2[k] + (1 - b2) * g * g
            m_hat, v_hat = m[k] / (1 - b1 ** (t + 1)), v2[k] / (1 - b2 ** (t + 1))
            p[k] = p[k] - lr * (m_hat / (np.sqrt(v_hat) + plan.eps) + wd * p[k])
    return p


PLANS = [
    _plan(),                                                     # warmup 4 of 40
    _plan(steps=7),                                              # warmup rounds to 1 step
    _plan(steps=33, warmup_frac=0.25, final_lr_frac=0.0),        # odd lengths, decay to zero
    _plan(steps=10, warmup_frac=1.0),                            # all warmup: decay clamps to 1 step
    _plan(schedule="epoch_cosine", steps=30, steps_per_epoch=7),  # 4 epochs, a partial fifth
    _plan(schedule="epoch_cosine", steps=12, steps_per_epoch=1, min_lr=1e-5),
    _plan(schedule="epoch_cosine", steps=5, steps_per_epoch=10),  # fewer steps than one epoch
]


@pytest.mark.parametrize("plan", PLANS, ids=lambda p: f"{p.schedule}-{p.steps}-{p.steps_per_epoch}")
def test_schedule_matches_the_former_formula_at_every_step(plan):
    peak = 3e-3
    # the peak is a runtime argument of the compiled run: trace it, as make_run does
    lrs = jax.jit(lambda pk: jax.vmap(schedule(plan, pk))(jnp.arange(plan.steps + 3)))(jnp.float32(peak))
    expected = [reference_lr(plan, peak, t) for t in range(plan.steps + 3)]
    # float32 cos near pi loses relative precision as the rate nears zero: an absolute floor too
    np.testing.assert_allclose(np.asarray(lrs), expected, rtol=2e-6, atol=1e-7 * peak)


def test_warmup_starts_at_peak_over_warmup_and_reaches_peak_on_its_last_step():
    plan, peak = _plan(steps=50, warmup_frac=0.2), 1.0  # warmup 10
    lr = schedule(plan, jnp.float32(peak))
    assert float(lr(0)) == pytest.approx(peak / 10, rel=1e-6)
    assert float(lr(9)) == pytest.approx(peak, rel=1e-6) and float(lr(10)) == pytest.approx(peak, rel=1e-6)
    assert float(lr(50)) == pytest.approx(0.1 * peak, rel=1e-6)


@pytest.mark.parametrize("plan", [PLANS[0], PLANS[1], PLANS[4]], ids=["warmup", "warm1", "epoch"])
def test_adamw_updates_match_the_former_optimiser(plan):
    peak, wd, n = 1e-2, 0.1, 6
    keys = jax.random.split(jax.random.key(0), 3)
    params = {"w": jax.random.normal(keys[0], (5, 3)), "b": jax.random.normal(keys[1], (3,))}
    grads_seq = [jax.tree.map(lambda p, i=i: jnp.sin(p * (i + 1)) + 0.1 * i, params) for i in range(n)]
    opt = optimizer(plan, jnp.float32(peak), jnp.float32(wd))
    state, p = opt.init(params), params
    for grads in grads_seq:
        updates, state = opt.update(grads, state, p)
        p = optax.apply_updates(p, updates)
    expected = reference_adamw(plan, peak, wd, params, grads_seq)
    for k in params:
        np.testing.assert_allclose(np.asarray(p[k]), expected[k], rtol=1e-5, atol=1e-6)
