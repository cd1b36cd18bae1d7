import numpy as np
import pytest

from search.space import Constraints, SearchSpace


def test_encoding_round_trip_and_size():
    space = SearchSpace(("A", "M"), depth=3)
    assert space.size == 8 and space.n_feasible == 8
    assert space.param_names == ("layer_0", "layer_1", "layer_2")
    assert space.block(space.params("AMM")) == "AMM"
    assert list(space.enumerate())[:3] == ["AAA", "AAM", "AMA"]
    assert set(space.distributions()["layer_1"].choices) == {"A", "M"}


def test_shares_fixed_positions_and_frozen_context():
    c = Constraints(min_share=(("A", 0.25),), max_share=(("A", 0.5),), fixed=((0, "A"), (-1, "M")))
    space = SearchSpace(("A", "M"), depth=4, constraints=c)
    blocks = list(space.enumerate())
    assert blocks and all(b[0] == "A" and b[-1] == "M" and 1 <= b.count("A") <= 2 for b in blocks)
    assert space.violation("MAAM") == "position 0 is 'M', allowed ['A']"
    # Shares count the frozen prefix/suffix of incremental stages too.
    inc = SearchSpace(("A", "M"), depth=2, prefix="AA", constraints=Constraints(max_share=(("A", 0.5),)))
    assert list(inc.enumerate()) == ["MM"] and inc.full("MM") == "AAMM"


def test_caps_at_target_scale():
    from scaling.counting import state_bytes_per_sequence
    from scaling.extrapolate import extrapolate

    kv_llama = state_bytes_per_sequence(extrapolate("AMAM", "350M", "auto").spec)
    space = SearchSpace(("A", "M"), depth=4, scale="350M", constraints=Constraints(max_kv_bytes=kv_llama - 1))
    feasible = list(space.enumerate())
    assert "AMAM" not in feasible and "AMMM" in feasible and "AAAA" not in feasible
    width = SearchSpace(("A", "M"), depth=4, scale="350M",
                        constraints=Constraints(max_params=10**12, cap_basis="width"))
    assert width.n_feasible == 16


@pytest.mark.parametrize("kwargs, match", [
    (dict(depth=0), "depth"), (dict(primitives=("A", "A")), "distinct"),
    (dict(constraints=Constraints(fixed=((5, "A"),))), "position 5"),
    (dict(constraints=Constraints(max_params=5)), "target scale"),
])
def test_bad_spaces_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SearchSpace(**{"depth": 3, **kwargs})


def test_sample_skips_taken_and_reports_exhaustion():
    space = SearchSpace(("A", "M"), depth=2)
    rng = np.random.default_rng(0)
    assert space.sample(rng, {"AA", "AM", "MA"}) == "MM"
    assert space.sample(rng, {"AA", "AM", "MA", "MM"}) is None
