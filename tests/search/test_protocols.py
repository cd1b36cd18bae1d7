"""The protocol registry: one set of names and one default for every command, and ``composer evaluate``
reproducing the score a search stored for a layout."""

import json

import pandas as pd
import pytest

from cli.main import main
from search import protocols
from search.evaluators import EvaluatorConfig
from search.settings import SearchSettings


def test_one_default_everywhere():
    from search.fidelity.truth_study import DEFAULT_PROXY

    assert protocols.DEFAULT_PROTOCOL == SearchSettings().protocol == EvaluatorConfig().protocol == DEFAULT_PROXY


def test_every_registered_protocol_builds_its_registered_kind():
    from search.evaluators import kind_for_protocol

    names = protocols.protocol_names()
    assert {"capacity", "cpu", "paper", "paper-full", "text", "text-lr", "mix"} <= set(names)
    for name in names:
        spec = protocols.get_protocol_spec(name)
        config = protocols.evaluator_config(name, seed=3, steps_scale=0.5)
        assert kind_for_protocol(config.protocol, config.kind) == spec.kind
        assert config.seed == 3 and config.label.startswith(name)


@pytest.mark.parametrize("argv", [
    ["evaluate", "--pattern", "AM", "--protocol", "nope"],
    ["search", "--protocol", "nope", "--budget", "1", "--quiet"],
    ["fidelity", "--patterns", "AM", "--proxy-protocol", "nope", "--no-progress"],
    ["fidelity", "--published", "kimi2025_ratio", "--protocol", "nope", "--no-progress"],
])
def test_every_command_refuses_an_unknown_protocol_listing_the_same_names(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown protocol 'nope'" in err
    assert ", ".join(protocols.protocol_names()) in err


def test_composer_protocols_lists_the_registry(capsys):
    assert main(["protocols", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["default"] == protocols.DEFAULT_PROTOCOL
    assert [p["name"] for p in out["protocols"]] == list(protocols.protocol_names())
    assert all(p["kind"] and p["measures"] and p["cost"] for p in out["protocols"])


def test_the_default_is_the_protocol_the_selection_rule_chose():
    """The default is not a matter of taste: it is what ``experiments/choose_default.py`` picked from the
    committed judges and costs, and the committed choice is what the rule gives on them today."""
    from tests.scripts import load_script

    choose_default = load_script("choose_default.py")
    committed = json.loads((choose_default.RESULTS / "default_choice.json").read_text())
    assert committed["selection"]["protocol"] == protocols.DEFAULT_PROTOCOL
    again = choose_default.choose_now()
    assert again.protocol == protocols.DEFAULT_PROTOCOL
    assert [c.protocol for c in again.candidates] == [c["protocol"] for c in committed["selection"]["candidates"]]


@pytest.mark.parametrize("protocol", ["capacity", "cpu", "mix"])
def test_evaluate_reproduces_a_leaderboard_score(protocol, tmp_path, monkeypatch, capsys):
    """A search row and ``composer evaluate`` with the same layout, protocol, seed and steps scale agree
    exactly: one way to build an evaluator."""
    monkeypatch.chdir(tmp_path)
    assert main(["search", "--protocol", protocol, "--depth", "2", "--budget", "2", "--steps-scale", "0.05",
                 "--final-seeds", "0", "--quiet", "--name", "r"]) == 0
    capsys.readouterr()
    df = pd.read_parquet(tmp_path / "runs" / "r" / "leaderboard.parquet")
    row = df[df["status"] == "ok"].iloc[0]
    assert main(["evaluate", "--pattern", row["pattern"], "--protocol", protocol, "--seed", str(int(row["seed"])),
                 "--steps-scale", "0.05", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["protocol"] == row["protocol"] == f"{protocol}@steps*0.05"
    assert out["score"] == row["score"]
