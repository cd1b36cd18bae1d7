"""The early-stop rule (MAD's 0.999) and the selection of a run's score from its curves."""

import dataclasses
import types

import numpy as np

from composer.mad.curves import summarise
from composer.mad.protocol import CPU, PAPER

PLAN = types.SimpleNamespace(eval_interval=10)


def _curves(acc, loss=None):
    acc = np.array(acc, dtype=float)
    loss = np.array(loss if loss is not None else 1 - acc, dtype=float)
    return {"acc": acc, "test_loss": loss, "train_loss": loss}


def test_early_stop_cuts_the_curve_at_the_first_saturated_evaluation():
    final = dataclasses.replace(PAPER, selection={}, early_stop=0.999)
    out = summarise(final, "memorization", PLAN, _curves([0.5, 0.9995, 0.30]), 1e-3, 0.0)
    assert out["acc"] == 0.9995 and out["acc_final"] == 0.30
    no_stop = dataclasses.replace(final, early_stop=None)
    assert summarise(no_stop, "memorization", PLAN, _curves([0.5, 0.9995, 0.30]), 1e-3, 0.0)["acc"] == 0.30


def test_min_test_loss_selection_looks_only_before_the_stop():
    out = summarise(PAPER, "memorization", PLAN, _curves([0.6, 0.9991, 0.95], loss=[0.9, 0.5, 0.1]), 1e-3, 0.0)
    assert out["acc"] == 0.9991  # the lowest loss after the stop (0.1) is not considered


def test_auc_selection_and_divergence_step():
    auc = summarise(CPU, "in_context_recall", PLAN, _curves([0.2, 0.4, 0.6]), 1e-3, 0.0)
    assert auc["selection"] == "auc" and np.isclose(auc["acc"], 0.4) and auc["diverged_by_step"] is None
    bad = summarise(CPU, "memorization", PLAN, _curves([0.2, 0.4], loss=[1.0, np.nan]), 1e-3, 0.0)
    assert bad["diverged_by_step"] == 20


def test_early_stop_stops_training_and_keeps_the_score():
    """A real MAD run with a reachable threshold: the ``while_loop`` stops after the first evaluation
    at or above it (fewer steps trained and paid for), and that evaluation equals the same point of
    the run that trains to the end, so stopping changes the cost, not the score."""
    from composer.mad.evaluate import Evaluator
    from composer.mad.tasks import CPU_SETTINGS

    base = dataclasses.replace(CPU, name="stop-test", settings={"memorization": CPU_SETTINGS["memorization"]},
                               steps={"memorization": 120}, eval_every={"memorization": 10}, selection={},
                               num_test=256)
    full = Evaluator(dataclasses.replace(base, early_stop=None)).evaluate("AM", seed=0)
    curve = full.details["memorization"][0]["curve_acc"]
    threshold = 0.5 * (min(curve) + max(curve))  # crossed part-way, whatever the machine's numerics
    stopped = Evaluator(dataclasses.replace(base, early_stop=threshold)).evaluate("AM", seed=0)
    run = stopped.details["memorization"][0]
    first_hit = next(i for i, a in enumerate(curve) if a >= threshold)
    assert run["stopped_early"] and len(run["curve_acc"]) == first_hit + 1 < len(curve)
    assert run["steps_trained"] == (first_hit + 1) * 10 == stopped.total_steps < full.total_steps == 120
    assert np.allclose(run["curve_acc"], curve[:first_hit + 1], atol=2e-3)
    assert abs(stopped.score - run["curve_acc"][-1]) < 1e-5 and stopped.score >= threshold
    assert not full.details["memorization"][0]["stopped_early"]
