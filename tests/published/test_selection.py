"""The default-proxy selection rule on synthetic judges: it reads the selection half only, refuses
candidates that are too slow or not judged everywhere, breaks ties by heuristic wins then cost, and the
held-out report states the target honestly."""

import json
from pathlib import Path

import pytest

from search.published import selection as sel
from search.published.selection import FAIR_TEXT, HELDOUT_JUDGES, SELECTION_JUDGES, JudgeScore, choose, held_out

ROOT = Path(__file__).resolve().parents[2]


def _judged(protocol, selection, heldout=(0.0, 0.0, 0.0, 0.0), heuristic=0.5):
    out = [JudgeScore(j, protocol, rho, None if j == FAIR_TEXT else heuristic)
           for j, rho in zip(SELECTION_JUDGES, selection)]
    out += [JudgeScore(j, protocol, rho, heuristic) for j, rho in zip(HELDOUT_JUDGES, heldout)]
    return out


def test_the_best_mean_over_the_selection_half_wins_and_held_out_scores_change_nothing():
    scores = _judged("a", (0.6, 0.6, 0.6, 0.6), heldout=(-1, -1, -1, -1)) + _judged("b", (0.3, 0.3, 0.3, 0.9),
                                                                                     heldout=(1, 1, 1, 1))
    picked = choose(scores, {"a": 10.0, "b": 10.0})
    assert picked.protocol == "a" and picked.candidates[0].selection_score == pytest.approx(0.6)
    assert picked.candidates[1].selection_score == pytest.approx(0.45)
    flipped = [JudgeScore(s.judge, s.protocol, -s.spearman, s.heuristic_spearman) if s.judge in HELDOUT_JUDGES else s
               for s in scores]
    assert choose(flipped, {"a": 10.0, "b": 10.0}).protocol == "a"  # the held-out half is never read
    report = held_out(scores, "a")
    assert report.beats == 0 and report.mean_spearman == -1 and not report.meets_target
    good = held_out(scores, "b")
    assert good.beats == 4 and good.meets_target


def test_too_slow_or_partly_judged_candidates_are_not_eligible():
    scores = _judged("fast", (0.2, 0.2, 0.2, 0.2)) + _judged("slow", (0.9, 0.9, 0.9, 0.9))
    scores += _judged("partial", (0.9, 0.9, 0.9, 0.9))[:3]  # no real-text score
    picked = choose(scores, {"fast": 5.0, "slow": 60.0, "partial": 5.0, "unmeasured": None})
    assert picked.protocol == "fast"
    why = {c.protocol: c.reason for c in picked.candidates}
    assert why["slow"].startswith("60.0 s per evaluation") and why["partial"] == f"not judged by {FAIR_TEXT}"
    assert why["unmeasured"].startswith("not judged")
    assert choose(_judged("x", (0.5,) * 4), {"x": None}).protocol is None  # cost never measured


def test_a_directly_timed_search_replaces_the_per_evaluation_line():
    scores = _judged("cheap", (0.3,) * 4) + _judged("timed", (0.8,) * 4) + _judged("slow_search", (0.9,) * 4)
    costs = {"cheap": 10.0, "timed": 18.0, "slow_search": 12.0}
    assert choose(scores, costs).protocol == "slow_search"  # the line alone: 18 s is over, 12 s under
    picked = choose(scores, costs, search_minutes={"timed": 41.0, "slow_search": 75.0})
    assert picked.protocol == "timed"  # 41 min fits the hour although 18 s is over the line
    why = {c.protocol: c.reason for c in picked.candidates}
    assert why["slow_search"] == "make search took 75.0 min > 60" and why["cheap"] == "eligible"
    assert choose(scores, costs, sel.SelectionRule(max_search_min=30.0),
                  search_minutes={"timed": 41.0, "slow_search": 75.0}).protocol == "cheap"


def test_a_tie_goes_to_more_heuristic_wins_then_the_cheaper():
    a = _judged("a", (0.70, 0.70, 0.70, 0.70), heuristic=0.65)   # beats the heuristic on all three sets
    b = _judged("b", (0.71, 0.71, 0.71, 0.71), heuristic=0.75)   # higher mean, inside the tie, beats none
    c = _judged("c", (0.70, 0.70, 0.70, 0.70), heuristic=0.65)   # like a, cheaper
    picked = choose(a + b + c, {"a": 10.0, "b": 10.0, "c": 4.0})
    assert [x.protocol for x in picked.candidates] == ["c", "a", "b"]
    assert choose(a + b, {"a": 10.0, "b": 10.0}, sel.SelectionRule(tie=0.0)).protocol == "b"


def test_the_halves_are_disjoint_and_named_once():
    assert not set(SELECTION_JUDGES) & set(HELDOUT_JUDGES) and not set(sel.EXTRA_JUDGES) & set(HELDOUT_JUDGES)
    with pytest.raises(ValueError, match="both halves"):
        sel.SelectionRule(selection=("x",), heldout=("x",))
    assert sel.DEFAULT_RULE.max_eval_s * 206 <= 3600


def test_the_committed_reports_read_as_judge_scores():
    summary = json.loads((ROOT / "experiments/results/published_summary.json").read_text())
    fair = json.loads((ROOT / "experiments/results/fidelity_fair_proxies.json").read_text())
    scores = sel.scores_from_reports(summary, fair)
    judged = {(s.protocol, s.judge) for s in scores}
    assert ("capacity", "bae2025_350m") in judged and ("capacity", FAIR_TEXT) in judged
    assert all(-1.0 <= s.spearman <= 1.0 for s in scores)
    assert {s.judge for s in scores} <= set(SELECTION_JUDGES) | set(HELDOUT_JUDGES) | set(sel.EXTRA_JUDGES)
