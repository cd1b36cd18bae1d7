"""The evaluator contract, for every registered protocol that runs on a CPU: the same (layout, seed)
gives the same score, another seed gives another run, the score is in the protocol's range, and the
cost (steps, tokens, wall and compile seconds) is recorded. ``paper`` and ``paper-full`` are
accelerator-sized and are checked through the same code paths by ``tests/mad``."""

import math

import pytest

from search.protocols import PROTOCOLS, evaluator_config

ON_CPU = [name for name in PROTOCOLS if name not in ("paper", "paper-full")]
RANGE = {"mix": (-math.inf, math.inf)}  # a sum of standardised parts; the others are shares in [0, 1]


def test_every_cpu_protocol_is_covered():
    assert {"capacity", "cpu", "capacity-lr", "text", "text-lr", "text-short", "text-noconv", "text-long",
            "mix"} <= set(ON_CPU)


@pytest.mark.parametrize("protocol", ON_CPU)
def test_evaluator_contract(protocol):
    tasks = ("memorization",) if protocol == "cpu" else None
    ev = evaluator_config(protocol, seed=0, steps_scale=0.03, tasks=tasks).build()
    first, again, other = ev("AM", seed=0), ev("AM", seed=0), ev("AM", seed=1)
    assert first.score == again.score and first.tasks == again.tasks  # deterministic per seed
    assert other.seed == 1 and other.tasks != first.tasks               # the seed is a real input
    lo, hi = RANGE.get(protocol, (0.0, 1.0))
    assert lo <= first.score <= hi and math.isfinite(first.score)
    assert first.steps > 0 and first.tokens > 0 and first.wall_s > 0 and first.compile_s is not None
    assert first.protocol.startswith(protocol) and first.protocol.endswith("@steps*0.03")
