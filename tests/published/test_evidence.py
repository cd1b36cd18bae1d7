"""What the published sets' heuristics say of a winner against the Llama layout of its depth."""

import json

import pytest

from search.published.evidence import evidence_lines, published_evidence


def test_an_attention_last_ordering_goes_against_the_sandwich_finding():
    verdicts = {v.set: v for v in published_evidence("MMMMMA")}
    # only the sets that compare attention/MLP orderings among themselves speak about an A/M layout
    assert set(verdicts) == {"press2020_orderings", "press2020_param_matched"}
    v = verdicts["press2020_orderings"]
    assert v.heuristic == "attention_bottom_heavy" and v.prefers == "llama" and v.winner < v.llama
    assert v.direction == "lower" and v.best_value < v.reference_value  # the best ordering beat the baseline


def test_a_mamba_hybrid_with_attention_not_first_goes_with_bae_et_al():
    verdicts = {v.set: v for v in published_evidence("SMSMAM")}
    assert {"bae2025_350m", "bae2025_1b"} <= set(verdicts)
    assert all(verdicts[s].prefers == "winner" for s in ("bae2025_350m", "bae2025_1b"))
    assert verdicts["bae2025_350m"].reference_label is not None


def test_the_llama_layout_itself_is_preferred_by_no_set():
    assert {v.prefers for v in published_evidence("AMAMAM")} == {"neither"}


def test_a_layout_no_set_compares_gets_no_verdict():
    assert published_evidence("LMLMLM") == []  # GLA layouts: no published set here compares them


def test_lines_name_the_set_the_rule_and_its_side():
    lines = evidence_lines("MMMMMA", published_evidence("MMMMMA", "press2020_orderings"))
    assert len(lines) == 1
    assert lines[0].startswith("press2020_orderings: attention_bottom_heavy prefers the Llama layout (-0.60 vs +0.20)")


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_search_prints_and_stores_the_published_evidence(tmp_path, monkeypatch, capsys):
    from cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["search", "--evaluator", "fake", "--quiet", "--depth", "2", "--budget", "3", "--final-seeds", "0",
                 "--name", "e"]) == 0
    out = capsys.readouterr().out
    stored = json.loads((tmp_path / "runs" / "e" / "evidence.json").read_text())
    winner = stored["winner"]
    assert stored["sets"] == [v.to_dict() for v in published_evidence(winner)]
    for line in evidence_lines(winner, published_evidence(winner)):
        assert line in out
