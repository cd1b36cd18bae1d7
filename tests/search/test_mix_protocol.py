"""The ``mix`` protocol: capacity and text evaluated at one seed, combined by fixed standardisation."""

import pytest

from search.evaluators import EvaluatorConfig, normalize_result
from search.evaluators.mix import MIX_PARTS, MixPart, combine


def test_combine_is_a_fixed_affine_map_of_the_parts():
    parts = (MixPart("a", 0.5, center=1.0, scale=2.0), MixPart("b", 0.5, center=0.0, scale=0.5))
    assert combine({"a": 1.0, "b": 0.0}, parts) == 0.0
    assert combine({"a": 3.0, "b": 0.0}, parts) == pytest.approx(0.5)   # one SD up in a, half weight
    assert combine({"a": 1.0, "b": -0.5}, parts) == pytest.approx(-0.5)
    with pytest.raises(ValueError, match=r"missing part score\(s\) \['b'\]"):
        combine({"a": 1.0}, parts)


def test_a_panel_mean_layout_scores_zero_and_parts_are_equal_weight():
    at_center = {p.protocol: p.center for p in MIX_PARTS}
    assert combine(at_center) == pytest.approx(0.0)
    assert {p.protocol for p in MIX_PARTS} == {"capacity", "text"}
    assert sum(p.weight for p in MIX_PARTS) == pytest.approx(1.0)


def test_mix_protocol_evaluates_both_parts_at_the_same_seed():
    """``--protocol mix`` picks the mix evaluator; its score is exactly the combination of a capacity and
    a text evaluation of the same layout and seed (shortened with steps_scale)."""
    from search.evaluators.mix import MixEvaluator

    config = EvaluatorConfig(protocol="mix", seed=3, steps_scale=0.05)
    ev = config.build()
    assert isinstance(ev, MixEvaluator) and ev.protocol == "mix@steps*0.05"
    r = ev("AMAM")
    assert r.seed == 3 and r.protocol == "mix@steps*0.05"
    assert r.score == pytest.approx(combine({"capacity": r.tasks["capacity"], "text": r.tasks["text"]}))
    assert 0.0 <= r.tasks["memorization"] <= 1.0 and 1.0 < r.tasks["text_bpb"] < 8.0
    parts = r.details["part_results"]
    assert parts["capacity"]["seed"] == parts["text"]["seed"] == 3
    assert r.wall_s == pytest.approx(parts["capacity"]["wall_s"] + parts["text"]["wall_s"])
    # the text part alone, built the usual way, gives the same number: the mix adds nothing of its own
    alone = EvaluatorConfig(protocol="text", seed=3, steps_scale=0.05).build()("AMAM")
    assert alone.score == pytest.approx(r.tasks["text"], abs=1e-6)


def test_mix_refuses_a_task_subset(tmp_path, monkeypatch, capsys):
    from cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["search", "--protocol", "mix", "--tasks", "memorization", "--budget", "2", "--depth", "1",
                 "--scale", "350M", "--quiet", "--name", "m"]) == 2
    err = capsys.readouterr().err
    assert "--tasks: protocol 'mix' has no MAD tasks; drop --tasks" in err and "Traceback" not in err


def test_search_runs_on_the_mix_protocol_from_the_cli(tmp_path, monkeypatch):
    import pandas as pd

    from cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["search", "--protocol", "mix", "--steps-scale", "0.03", "--budget", "2", "--depth", "1",
                 "--final-seeds", "0", "--scale", "350M", "--quiet", "--name", "m"]) == 0
    board = pd.read_parquet(tmp_path / "runs/m/leaderboard.parquet")
    assert set(board["protocol"]) == {"mix@steps*0.03"} and set(board["pattern"]) == {"A", "M"}
    assert (board["status"] == "ok").all()


def test_mix_from_stored_parts_equals_the_mix_evaluated():
    """``from_parts`` (what the published judge uses when both parts are stored) gives the number
    ``__call__`` computes, from the parts' own evaluations."""
    ev = EvaluatorConfig(protocol="mix", steps_scale=0.05).build()
    direct = ev("SMAM", seed=1)
    labels = ev.part_labels()
    assert labels == {"capacity": "capacity@steps*0.05", "text": "text@steps*0.05"}
    parts = {}
    for name in labels:
        part = EvaluatorConfig(protocol=name, steps_scale=0.05).build()
        r = normalize_result(part("SMAM", seed=1), part.protocol)
        parts[name] = (r.score, r.tasks)
    rebuilt = ev.from_parts("SMAM", 1, parts)
    assert rebuilt.score == pytest.approx(direct.score, abs=1e-6) and rebuilt.protocol == direct.protocol
    assert rebuilt.tasks.keys() == direct.tasks.keys()


def test_mix_packs_a_layouts_seeds_like_solo_runs():
    """``evaluate_many``: each part packs the seeds, each seed's parts combine; equal to solo runs."""
    from search.evaluators.packing import can_pack

    ev = EvaluatorConfig(protocol="mix", seed=0, steps_scale=0.05).build()
    assert can_pack(ev)
    packed = ev.evaluate_many("AM", [1, 2])
    for seed, got in zip((1, 2), packed):
        solo = ev("AM", seed=seed)
        assert got.seed == seed and got.details["pack"] == 2
        assert got.score == pytest.approx(solo.score, abs=1e-4)
        for part in ("capacity", "text"):
            assert got.tasks[part] == pytest.approx(solo.tasks[part], abs=1e-5)
    assert packed[0].score != packed[1].score
