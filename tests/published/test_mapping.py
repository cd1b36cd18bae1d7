"""Depth mapping: structure kept (share, first, last, period), parameters matched."""

import pytest

from search.published.mapping import map_layout, reference_layout, structural_map

WEIGHTS = {"A": 16, "M": 34, "S": 35, "G": 22, "W": 16, "L": 18}


def params(pattern):
    return sum(WEIGHTS[c] for c in pattern)


def test_periodic_layouts_repeat_their_period():
    assert structural_map("SMAM" * 7, 2, 4) == "SMAM" * 2
    assert structural_map("SMWM" * 6, 1, 8) == "SMWM" * 2


def test_front_stays_front_and_only_front():
    front = "AM" + "SM" * 12
    assert structural_map(front, 2, 5) == "AMSMSMSMSM"
    for k in range(1, 13):  # an attention block anywhere else never lands in front
        lay = "SM" * k + "AM" + "SM" * (12 - k)
        for n in (2, 3, 5, 7):
            assert not structural_map(lay, 2, n).startswith("A"), (k, n)
    assert structural_map("SM" * 12 + "AM", 2, 5).endswith("AM")


def test_share_of_a_minority_block_is_kept():
    lay = "".join("AM" if b % 4 == 3 else "SM" for b in range(24))  # 6 of 24 blocks
    out = structural_map(lay, 2, 8)
    assert out.count("A") == 2 and len(out) == 16
    assert structural_map("S" * 47 + "A", 1, 9).count("A") == 1  # at least one is kept


def test_relative_position_is_kept():
    out = structural_map("SM" * 6 + "AM" + "SM" * 6, 2, 5)
    assert out.index("A") == 4  # the middle block of 5


def test_parameters_matched_to_the_llama_layout():
    target = params(reference_layout(12))
    pure_mamba = map_layout("SM" * 13, 2, 12, params)
    assert set(pure_mamba) == {"S", "M"} and abs(params(pure_mamba) - target) <= WEIGHTS["S"] + WEIGHTS["M"]
    assert map_layout("AM" * 16, 2, 12, params) == "AM" * 6
    assert len(map_layout("S" * 60, 1, 12, params)) == round(target / WEIGHTS["S"])


def test_reference_depth_must_be_even():
    with pytest.raises(ValueError):
        reference_layout(7)


def test_short_periods_stay_whole():
    for lay in ("AMSM" * 7, "SMAM" * 7):
        out = map_layout(lay, 2, 12, params)
        assert out == lay[:len(out)] and len(out) % 4 == 0 and out.count("A") * 2 == out.count("S") * 2
