"""experiments/recall_composite.py: the ``text-recall`` candidate built from stored ``text`` and ``cpu`` rows."""

import json
import math

import numpy as np
import pytest

from search.published.judge_records import JudgeRow
from tests.scripts import load_script

rc = load_script("recall_composite.py")

TASKS = {"in_context_recall": 0.9, "noisy_in_context_recall": 0.6, "fuzzy_in_context_recall": 0.3,
         "selective_copying": 0.0, "compression": 0.0, "memorization": 0.0}


def test_recall_is_the_mean_of_the_three_recall_tasks_only():
    assert rc.recall(TASKS) == pytest.approx(0.6)
    assert math.isnan(rc.recall({"in_context_recall": 1.0}))


def test_combine_weighs_the_standardised_parts_equally():
    assert rc.combine(rc.TEXT_CENTER, rc.RECALL_CENTER) == pytest.approx(0.0)
    up_text = rc.combine(rc.TEXT_CENTER + rc.TEXT_SCALE, rc.RECALL_CENTER)
    up_recall = rc.combine(rc.TEXT_CENTER, rc.RECALL_CENTER + rc.RECALL_SCALE)
    assert up_text == pytest.approx(0.5) and up_recall == pytest.approx(0.5)


def test_constants_are_the_fair_panels_layout_mean_statistics():
    """The fixed centres and scales are the mean and sample SD of the panel's 13 layout means."""
    def layout_means(name, value):
        by = {}
        for line in (rc.RESULTS / name).read_text().splitlines():
            r = json.loads(line)
            by.setdefault(r["pattern"], []).append(value(r))
        return np.array([np.mean(v) for v in by.values()])

    text = layout_means("proxy_text.jsonl", lambda r: r["score"])
    recall = layout_means("proxy_cpu.jsonl", lambda r: rc.recall(r["tasks"]))
    assert len(text) == len(recall) == 13
    assert rc.TEXT_CENTER == pytest.approx(text.mean(), abs=5e-4)
    assert rc.TEXT_SCALE == pytest.approx(text.std(ddof=1), abs=5e-4)
    assert rc.RECALL_CENTER == pytest.approx(recall.mean(), abs=5e-4)
    assert rc.RECALL_SCALE == pytest.approx(recall.std(ddof=1), abs=5e-4)


def test_a_composite_row_needs_both_parts_of_the_same_layout_and_seed():
    rows = [JudgeRow("AMAM", 0, "text", score=0.6), JudgeRow("AMAM", 0, "cpu", score=0.5, tasks_json=json.dumps(TASKS)),
            JudgeRow("AMAM", 1, "text", score=0.6),  # no cpu at seed 1
            JudgeRow("SMSM", 0, "cpu", score=0.5, tasks_json=json.dumps(TASKS)),  # no text
            JudgeRow("GMGM", 0, "text", score=0.6), JudgeRow("GMGM", 0, "cpu", status="error", error="boom")]
    made = [r for r in rc.published_rows(rows) if r.protocol == rc.NAME]
    assert [(r.layout, r.seed) for r in made] == [("AMAM", 0)]
    assert made[0].score == pytest.approx(rc.combine(0.6, 0.6))
