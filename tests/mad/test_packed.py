"""Packed evaluation: every member of a pack equals the same (layout, seed) evaluated alone, with and
without early stop, with a learning-rate x weight-decay sweep, and a member that diverges does not
take the others down."""

import dataclasses

import numpy as np
import pytest

from composer.errors import DivergenceError, UsageError
from composer.mad.evaluate import Evaluator
from composer.mad.packed import evaluate_packed
from tests.mad.test_evaluate import TINY

TASKS = ("in_context_recall", "memorization")


def _same(packed, solo):
    assert packed.seed == solo.seed and packed.arch_id == solo.arch_id and packed.steps == solo.steps
    assert packed.score == pytest.approx(solo.score, abs=1e-5)
    for task in solo.tasks:
        assert packed.tasks[task] == pytest.approx(solo.tasks[task], abs=1e-5)
        for p, s in zip(packed.details[task], solo.details[task]):
            assert (p["lr"], p["wd"], p["steps_trained"], p["stopped_early"]) == \
                (s["lr"], s["wd"], s["steps_trained"], s["stopped_early"])
            np.testing.assert_allclose(p["curve_acc"], s["curve_acc"], atol=1e-4)
            assert p["train_loss"] == pytest.approx(s["train_loss"], rel=1e-4)
            assert p.get("chosen_on") == s.get("chosen_on") and p["runs"] == s["runs"]


@pytest.mark.parametrize("protocol", [
    TINY,
    dataclasses.replace(TINY, name="tiny-sweep", lrs=(1e-3, 3e-3), weight_decays=(0.0, 0.1)),
    dataclasses.replace(TINY, name="tiny-stop", early_stop=0.3, steps={t: 8 for t in TINY.steps}),
    dataclasses.replace(TINY, name="tiny-dev", lrs=(1e-3, 3e-3), choose_on="dev"),
], ids=["plain", "lr-wd-sweep", "early-stop", "lr-grid-chosen-on-dev"])
def test_every_member_equals_its_solo_run(protocol):
    ev = Evaluator(protocol)
    seeds = (0, 3, 7)
    packed = evaluate_packed(ev, "AMMA", seeds, tasks=TASKS)
    for seed, result in zip(seeds, packed):
        solo = Evaluator(protocol).evaluate("AMMA", seed=seed, tasks=TASKS)
        _same(result, solo)
        assert all(d["pack"] == len(seeds) * len(ev.sweep) for d in result.details["memorization"])
    if protocol.early_stop is not None:  # the threshold must make members stop at different points
        stops = {r.details[t][0]["steps_trained"] for r in packed for t in TASKS}
        assert len(stops) > 1, stops


def test_a_diverging_member_is_an_error_and_the_others_are_kept(monkeypatch):
    """Seed 1 starts from NaN parameters (its loss is NaN from the first step); seeds 0 and 2 train."""
    import jax

    ev = Evaluator(TINY)
    real = ev.init_member

    def poisoned(task, config, spec, seed):
        model, types, params = real(task, config, spec, seed)
        return model, types, (jax.tree.map(lambda a: a * np.nan, params) if seed == 1 else params)

    monkeypatch.setattr(ev, "init_member", poisoned)
    out = evaluate_packed(ev, "AM", (0, 1, 2), tasks=("memorization",))
    assert isinstance(out[1], DivergenceError) and "diverged" in str(out[1])
    solo = Evaluator(TINY)
    for i in (0, 2):
        assert out[i].score == pytest.approx(solo.evaluate("AM", seed=i, tasks=("memorization",)).score, abs=1e-5)


@pytest.mark.parametrize("seeds", [(), (1, 1), (-1,)])
def test_bad_seeds_are_refused(seeds):
    with pytest.raises(UsageError, match="seeds"):
        evaluate_packed(Evaluator(TINY), "AM", seeds)


def test_a_grid_chosen_on_dev_reports_the_chosen_rate_on_test():
    """``choose_on="dev"``: the sweep is scored on the dev split, the best dev rate is trained again and
    scored on test; the score is that rate's solo test accuracy, not the best of the test accuracies."""
    grid = dataclasses.replace(TINY, name="tiny-dev", lrs=(1e-3, 3e-3, 1e-2), choose_on="dev")
    out = Evaluator(grid).evaluate("AM", seed=0, tasks=("memorization",))
    d = out.details["memorization"][0]
    dev = {r["lr"]: r["acc"] for r in d["sweep"]}
    assert d["chosen_on"] == "dev" and d["lr"] == max(dev, key=dev.get) and d["dev_acc"] == max(dev.values())
    alone = Evaluator(dataclasses.replace(TINY, name="tiny-one", lrs=(d["lr"],))).evaluate(
        "AM", seed=0, tasks=("memorization",))
    assert out.tasks["memorization"] == pytest.approx(alone.tasks["memorization"], abs=1e-6)
    assert d["runs"] == 4 and d["steps"] == 4 * alone.details["memorization"][0]["steps"]
    on_test = Evaluator(dataclasses.replace(grid, choose_on="test")).evaluate("AM", seed=0, tasks=("memorization",))
    test_accs = {r["lr"]: r["acc"] for r in on_test.details["memorization"][0]["sweep"]}
    assert test_accs != dev  # the dev split is another sample of queries


def test_a_protocol_that_packs_its_sweep_scores_like_the_sweep_one_run_at_a_time():
    """``pack_sweep``: one seed's (lr, wd) runs in one program, chosen on dev like the sequential sweep."""
    grid = dataclasses.replace(TINY, name="tiny-dev", lrs=(1e-3, 3e-3), choose_on="dev")
    seq = Evaluator(grid).evaluate("AMMA", seed=2, tasks=TASKS)
    packed = Evaluator(dataclasses.replace(grid, pack_sweep=True)).evaluate("AMMA", seed=2, tasks=TASKS)
    _same(packed, seq)
    assert all(d["pack"] == 2 for t in TASKS for d in packed.details[t])


def test_capacity_lr_is_capacity_at_a_grid_chosen_on_dev():
    from composer.mad.protocol import CAPACITY, PROTOCOLS

    p = PROTOCOLS["capacity-lr"]
    assert p.settings == CAPACITY.settings and p.steps == CAPACITY.steps and len(p.lrs) == 3
    assert p.choose_on == "dev" and p.pack_sweep and CAPACITY.choose_on == "test" and not CAPACITY.pack_sweep
