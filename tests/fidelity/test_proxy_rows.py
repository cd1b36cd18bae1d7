"""Proxy rows of a fidelity study from a registered (non-MAD) protocol: one evaluator, called per seed."""

import pytest

from search import evaluators as ev


@pytest.fixture
def counting_protocol():
    built = []

    class Counting:
        def __init__(self, config):
            built.append(config)
            self.protocol = config.label

        def spec(self, pattern):
            return None

        def __call__(self, pattern, seed=None):
            return {"score": pattern.count("A") + 0.01 * seed, "tasks": {"a_share": pattern.count("A") / len(pattern)}}

    ev.register_evaluator("counting-kind", Counting, protocols=("counting",))
    yield built
    ev.EVALUATORS.pop("counting-kind")
    ev._PROTOCOL_KINDS.pop("counting")


def test_a_registered_protocol_is_built_once_and_called_with_each_seed(counting_protocol):
    from search.fidelity.proxy import compute_rows

    cache: dict = {}
    rows = compute_rows("AMAM", [0, 3], "counting", cache) + compute_rows("AAAM", [1], "counting", cache)
    assert [(r.layout, r.seed, r.score) for r in rows] == [("AMAM", 0, 2.0), ("AMAM", 3, 2.03), ("AAAM", 1, 3.01)]
    assert {r.protocol for r in rows} == {"counting"} and len(counting_protocol) == 1
