"""Depth mapping: structure kept (share, first, last, period), parameters matched."""

import pytest

from search.published.mapping import block_size, map_layout, reference_layout, structural_map

WEIGHTS = {"A": 16, "M": 34, "S": 35, "G": 22, "W": 16, "L": 18}


def params(pattern):
    return sum(WEIGHTS[c] for c in pattern)


def test_periodic_layouts_repeat_their_period():
    assert structural_map("SMAM" * 7, 4) == "SMAM" * 2
    assert structural_map("SMWM" * 6, 4) == "SMWM" * 2  # 4 mixer + MLP blocks
    assert structural_map("SWM" * 8, 12) == "SWM" * 4  # 12 single layers


def test_front_stays_front_and_only_front():
    front = "AM" + "SM" * 12
    assert structural_map(front, 5) == "AMSMSMSMSM"
    for k in range(1, 13):  # an attention block anywhere else never lands in front
        lay = "SM" * k + "AM" + "SM" * (12 - k)
        for n in (2, 3, 5, 7):
            assert not structural_map(lay, n).startswith("A"), (k, n)
    assert structural_map("SM" * 12 + "AM", 5).endswith("AM")


def test_share_of_a_minority_block_is_kept():
    lay = "".join("AM" if b % 4 == 3 else "SM" for b in range(24))  # 6 of 24 blocks
    out = structural_map(lay, 8)
    assert out.count("A") == 2 and len(out) == 16
    assert structural_map("S" * 47 + "A", 9).count("A") == 1  # at least one is kept


def test_relative_position_is_kept():
    out = structural_map("SM" * 6 + "AM" + "SM" * 6, 5)
    assert out.index("A") == 4  # the middle block of 5


def test_parameters_matched_to_the_llama_layout():
    target = params(reference_layout(12))
    pure_mamba = map_layout("SM" * 13, 12, params)
    assert set(pure_mamba) == {"S", "M"} and abs(params(pure_mamba) - target) <= WEIGHTS["S"] + WEIGHTS["M"]
    assert map_layout("AM" * 16, 12, params) == "AM" * 6
    assert len(map_layout("S" * 60, 12, params)) == round(target / WEIGHTS["S"])


def test_reference_depth_must_be_even():
    with pytest.raises(ValueError):
        reference_layout(7)


def test_short_periods_stay_whole():
    for lay in ("AMSM" * 7, "SMAM" * 7):
        out = map_layout(lay, 12, params)
        assert out == lay[:len(out)] and len(out) % 4 == 0 and out.count("A") * 2 == out.count("S") * 2


@pytest.mark.parametrize("protocol", ["capacity", "cpu"])
def test_every_shipped_set_maps_and_builds(protocol):
    """The committed study's plan: every layout of every set, mapped to 12 layers with its parameters
    within 25 % of the 12-layer Llama layout's, builds under the protocol (no training)."""
    from search.evaluators import EvaluatorConfig
    from search.published.judge import _params_fn, plan_layouts
    from search.published.sets import resolve_sets

    ev = EvaluatorConfig(protocol=protocol).build()
    count = _params_fn(ev)
    target = count(reference_layout(12))
    for s in resolve_sets("all"):
        layouts = plan_layouts(s, 12, ev, count)
        assert len(layouts) == len(s.layouts)
        if s.mapping == "none":
            assert layouts == tuple(r.layout for r in s.layouts)
            continue
        for row, lay in zip(s.layouts, layouts):
            assert abs(count(lay) / target - 1) < 0.25, (s.name, row.label, lay)
            assert lay.startswith("A") == row.layout.startswith("A"), (s.name, row.label)
            assert set(lay) <= set(row.layout)


def test_blocks_are_mixer_and_mlp_pairs_only_when_the_whole_layout_is():
    assert block_size("SMAMSM") == 2 and block_size("SSAS") == 1 and block_size("MMWM") == 1
    assert block_size("SMSMAMS") == 1
    mixed = "".join("AM" if b in (4, 12, 20, 28) else "SM" for b in range(32))  # Mamba-2-MLP-Attention
    out = map_layout(mixed, 12, params)
    assert block_size(out) == 2 and out.count("A") == 1  # no two MLPs in a row, no mixer without its MLP
