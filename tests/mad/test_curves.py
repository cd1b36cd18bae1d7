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
