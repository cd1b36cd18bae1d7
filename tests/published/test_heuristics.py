"""The rules of thumb on hand-made layouts."""

import pytest

from search.published.heuristics import HEURISTICS, heuristic_score


def test_attention_not_first():
    assert heuristic_score("attention_not_first", "AMSM") == -1 and heuristic_score("attention_not_first", "SMAM") == 0
    assert heuristic_score("attention_not_first", "WMSM") == -1


@pytest.mark.parametrize("layout,expected", [
    ("S" * 9 + "A", 0.0),         # 10 %: inside
    ("SSSA", 0.0),                 # 25 %: inside
    ("S" * 20, -0.10),             # 0 %
    ("SA", -0.25),                 # 50 %
    ("SMSMSMAM", 0.0),             # MLPs do not count: 1 of 4 mixers
    ("MMMM", -1.0),                # no mixer at all
])
def test_attention_share(layout, expected):
    assert heuristic_score("attention_share_10_25", layout) == pytest.approx(expected)


def test_recurrent_and_attention():
    f = HEURISTICS["recurrent_and_attention"]
    assert f("SMWM") == 1 and f("GMAM") == 1 and f("AMAM") == 0 and f("SSSS") == 0 and f("MMWM") == 0


def test_attention_bottom_heavy():
    f = HEURISTICS["attention_bottom_heavy"]
    assert f("AAMM") > 0 > f("MMAA")
    assert f("AMAM") == pytest.approx(f("MAMA") + 2 / 3)  # shifting every attention layer up by one
    assert f("SSSS") == 0
