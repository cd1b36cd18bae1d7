"""``--pack``: a layout's seeds in a rung (and the fresh seeds of the final check) go to the evaluator
as one packed job; the budget, the rows and the results are those of the unpacked run, each row
records its pack size, and bad values are one-line errors."""

import pytest

from search.evaluators import EvaluatorConfig
from search.evaluators.fake import FakeEvaluator
from search.evaluators.packing import pack_units, run_jobs
from search.results.leaderboard import read_leaderboard
from tests.search.helpers import same_leaderboard

ARGS = ("--budget", "16", "--depth", "3", "--seed", "2", "--final-seeds", "2")


def test_pack_units_group_a_layouts_seeds_in_order():
    jobs = [("AM", 1), ("MA", 1), ("AM", 2), ("AM", 3), ("MA", 2)]
    fake = FakeEvaluator(EvaluatorConfig(kind="fake", protocol="cpu"))
    assert pack_units(jobs, 2, fake) == [[0, 2], [3], [1, 4]]
    assert pack_units(jobs, 1, fake) == [[i] for i in range(5)]
    assert pack_units(jobs, 4, object()) == [[i] for i in range(5)]  # an evaluator that cannot pack
    out = run_jobs(fake, jobs, 2)
    assert [o.pattern for o in out] == [p for p, _ in jobs] and [o.pack for o in out] == [2, 2, 2, 1, 2]
    assert [o.result.seed for o in out] == [s for _, s in jobs]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_packed_search_equals_the_unpacked_one_and_records_pack_sizes(cli, tmp_path, workers):
    assert cli(*ARGS, "--name", "one") == 0
    assert cli(*ARGS, "--name", "four", "--pack", "2", "--workers", workers) == 0
    one, four = (read_leaderboard(tmp_path / "runs" / n) for n in ("one", "four"))
    same_leaderboard(one, four)
    assert (one["pack"] == 1).all()
    rung2 = four[four["rung"] == 2]
    assert len(rung2) and (rung2["pack"] == 2).all()  # two new seeds per surviving layout
    fresh = four[(four["phase"] == "final") & (four["seed"] >= 10000)]
    assert len(fresh) >= 2 and (fresh["pack"] == 2).all()  # two fresh seeds of each of winner and Llama


@pytest.mark.parametrize("args, message", [
    (("--pack", "-1"), "--pack: must be an integer >= 0"),
    (("--pack", "2", "--backend", "ray"), "--pack: packed evaluation runs on the local backend"),
    # 8 layouts and a budget of 3: no seed rung, the final rescoring trains 3 fresh seeds of a layout
    (("--pack", "4"), "--pack 4: this search never trains more than 3 seeds of one layout together"),
])
def test_bad_pack_is_a_one_line_error_and_leaves_nothing(cli, tmp_path, capsys, args, message):
    assert cli("--budget", "3", "--depth", "3", "--name", "bad", *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "runs" / "bad").exists()


@pytest.mark.parametrize("budget, n, most", [(200, 64, 8), (16, 8, 2), (8, 8, 1), (3, 8, 1), (40, None, 2)])
def test_the_largest_rung_unit_follows_the_halving_schedule(budget, n, most):
    """``make search``: 64 layouts at one seed, then rungs adding 1, 2, 4, 8 and (budget cut) 4 seeds."""
    from search.halving import largest_rung_unit

    assert largest_rung_unit(budget, n, 0.5) == most


def test_a_real_packed_search_scores_like_the_unpacked_one(tmp_path, monkeypatch):
    """The MAD evaluator's own packed program (``composer.mad.packed``) inside a search: same layouts,
    scores equal to float tolerance. Two of ``cpu``'s six tasks, one scored on its curve and one at the
    end: a pack runs task by task through the same code, so the other four would add compile time, not
    paths."""
    from cli.main import main

    monkeypatch.chdir(tmp_path)
    args = ["search", "--quiet", "--depth", "3", "--budget", "4", "--steps-scale", "0.02", "--sampler", "random",
            "--seed", "5", "--final-seeds", "2", "--protocol", "cpu", "--tasks", "in_context_recall,memorization"]
    assert main([*args, "--name", "solo"]) == 0
    assert main([*args, "--name", "packed", "--pack", "2"]) == 0
    solo, packed = (read_leaderboard(tmp_path / "runs" / n) for n in ("solo", "packed"))
    assert list(solo["pattern"]) == list(packed["pattern"]) and list(solo["seed"]) == list(packed["seed"])
    assert packed["score"].to_numpy() == pytest.approx(solo["score"].to_numpy(), abs=1e-5)
    assert (packed[packed["seed"] >= 10000]["pack"] == 2).all()


def test_text_protocol_packs_seeds_like_solo_runs():
    """``text`` packs a layout's seeds (``composer.packed_train``); ``text-lr`` (a grid per layout) does not."""
    from search.evaluators.packing import can_pack

    ev = EvaluatorConfig(protocol="text", seed=0, steps_scale=0.02).build()
    packed = ev.evaluate_many("AM", [0, 1])
    for seed, got in zip((0, 1), packed):
        solo = ev("AM", seed=seed)
        assert got.seed == seed and got.score == pytest.approx(solo.score, abs=1e-5)
        assert got.details["pack"] == 2
    assert packed[0].score != packed[1].score
    assert not can_pack(EvaluatorConfig(protocol="text-lr", seed=0, steps_scale=0.02).build())


def test_text_lr_trains_its_grid_packed_like_one_rate_at_a_time():
    """``text-lr``'s grid (``TextProtocol.pack_lrs``): every rate's dev loss, the choice and the score
    equal those of the rates trained one at a time."""
    import dataclasses

    from search.evaluators.text import TEXT_PROTOCOLS, TextEvaluator

    config = EvaluatorConfig(protocol="text-lr", seed=0, steps_scale=0.02)
    recipe = TEXT_PROTOCOLS["text-lr"]()
    assert recipe.pack_lrs and recipe.to_dict()["pack_lrs"]
    packed = TextEvaluator(config, recipe)("AM")
    solo = TextEvaluator(config, dataclasses.replace(recipe, pack_lrs=False))("AM")
    assert packed.details["dev_loss"].keys() == solo.details["dev_loss"].keys()
    for k, v in solo.details["dev_loss"].items():
        assert packed.details["dev_loss"][k] == pytest.approx(v, rel=1e-4)
    assert packed.details["lr"] == solo.details["lr"] and packed.score == pytest.approx(solo.score, abs=1e-5)


def test_rungs_are_evaluated_in_chunks_of_whole_layouts_numbered_alike_by_any_backend():
    """``layout_chunks``: a layout's jobs stay in one chunk (its pack whole), and the chunks joined are
    the same list for one worker or four, so every backend numbers the rows alike."""
    from types import SimpleNamespace

    from search.batches import layout_chunks

    batch = [SimpleNamespace(full=p, seed=s) for s in (1, 2) for p in ("AM", "MA", "AA")]
    one, four = layout_chunks(batch, 1), layout_chunks(batch, 4)
    assert [[p.full for p in c] for c in one] == [["AM", "AM"], ["MA", "MA"], ["AA", "AA"]]
    assert [p for c in one for p in c] == [p for c in four for p in c] and len(four) == 1
