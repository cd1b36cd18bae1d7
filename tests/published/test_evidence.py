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


def _study(path, losses: dict[str, list[float]], tokens: int = 1_000_000):
    import pandas as pd

    rows = [{"key": f"{lay}/s{seed}/t{tokens}", "layout": lay, "seed": seed, "tokens": tokens, "val_loss": v,
             "status": "ok", "scale": "small"}
            for lay, vs in losses.items() for seed, v in enumerate(vs)]
    pd.DataFrame(rows).to_parquet(path)
    return path


def test_real_text_evidence_pools_the_seed_variance_of_every_layout(tmp_path):
    """The winner minus Llama with the seed SD pooled over all layouts of the budget (df = sum of
    (seeds - 1)), not over the pair alone; a layout the study never trained gets nothing."""
    import math

    from scipy import stats

    from search.published.real_text import real_text_evidence

    losses = {"MMMMMA": [2.0, 2.1], "AMAMAM": [1.8, 1.8], "SMSMAM": [1.5, 1.7], "MAMAMA": [1.9, 1.9]}
    (v,) = real_text_evidence("MMMMMA", _study(tmp_path / "s.parquet", losses))
    ss = sum((x - sum(vs) / 2) ** 2 for vs in losses.values() for x in vs)
    sd = math.sqrt(ss / 4)
    half = stats.t.ppf(0.975, 4) * sd * math.sqrt(1 / 2 + 1 / 2)
    assert v.df == 4 and v.n_layouts == 4 and v.llama == "AMAMAM"
    assert v.difference == pytest.approx(0.25, abs=1e-4)
    assert (v.lo, v.hi) == (pytest.approx(0.25 - half, abs=1e-4), pytest.approx(0.25 + half, abs=1e-4))
    assert v.verdict == ("llama better" if 0.25 - half > 0 else "no difference")
    assert real_text_evidence("GMGMAM", tmp_path / "s.parquet") == []
    assert real_text_evidence("AMAMAM", tmp_path / "s.parquet") == []  # Llama against itself says nothing
    assert real_text_evidence("MMMMMA", tmp_path / "missing.parquet") == []


def test_real_text_evidence_without_a_second_seed_has_no_interval(tmp_path):
    from search.published.real_text import real_text_evidence, real_text_lines

    (v,) = real_text_evidence("MMMMMA", _study(tmp_path / "s.parquet", {"MMMMMA": [2.0], "AMAMAM": [1.9]}))
    assert v.lo is None and v.hi is None and v.verdict.startswith("one seed")
    assert "no interval" in real_text_lines([v])[0]


def test_real_text_evidence_of_the_committed_study_for_the_default_winner():
    """The committed fair study trained the default search's winner MMMMMA and Llama on two seeds at 1M
    tokens: the statement reads the table, whose pooled interval lies above zero (Llama better)."""
    import pandas as pd

    from search.published.real_text import STUDY, real_text_evidence

    first = real_text_evidence("MMMMMA")[0]
    rows = pd.read_parquet(STUDY)
    at = rows[rows["tokens"] == first.tokens]
    mean = lambda lay: at[at["layout"] == lay]["val_loss"].mean()
    assert first.difference == pytest.approx(mean("MMMMMA") - mean("AMAMAM"), abs=1e-4)
    assert first.winner_seeds == (0, 1) and first.verdict == "llama better" and first.lo > 0
