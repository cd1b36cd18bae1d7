"""Packed evaluation: several seeds (and every run of the protocol's learning-rate x weight-decay sweep)
of one layout trained in one compiled program.

The members of a pack share the layout, the task shapes and the compiled program; only parameters,
data streams and hyperparameters differ, so they stack along a leading axis: ``jax.vmap`` over the
parameters, optimiser state, data, learning rate and weight decay of ``composer.mad.training.make_run``
(the learning rate and weight decay are runtime arguments there already, so the packed program is the
solo one with a batch axis). Each member keeps its own initialisation (its seed), its own data stream
(generated from its seed), its own hyperparameters and its own early stop: under ``vmap`` the
``lax.while_loop`` of an early-stopping protocol runs until every member has stopped, and a member
that stopped keeps its state and curves unchanged while the others train
(``tests/mad/test_packed.py`` checks every member against the same run trained alone).

What packing buys is utilisation: a 6-layer d = 64 proxy leaves a CPU's cores and most of an
accelerator idle between small matmuls; K members make every matmul K times larger
(``experiments/bench/packing.py`` measures it).
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Sequence

from composer.errors import UsageError
from composer.mad.evaluate import EvalResult, Evaluator, check_tasks
from composer.mad.packed_setting import pack_setting
from composer.spec import ArchSpec

__all__ = ["evaluate_packed", "check_seeds"]


def check_seeds(seeds: Sequence[int]) -> tuple[int, ...]:
    seeds = tuple(seeds)
    bad = [s for s in seeds if not isinstance(s, int) or isinstance(s, bool) or s < 0]
    if not seeds or bad or len(set(seeds)) != len(seeds):
        raise UsageError(f"seeds: need distinct integers >= 0 for a pack, got {list(seeds)}")
    return seeds


def evaluate_packed(ev: Evaluator, candidate: str | ArchSpec, seeds: Sequence[int], *,
                    tasks: Iterable[str] | str | None = None) -> list[EvalResult | Exception]:
    """``candidate`` at every seed of ``seeds`` in one packed program per task setting.

    Returns one entry per seed, in order: its ``EvalResult`` (equal to ``ev.evaluate(candidate, seed=s)``
    to float tolerance), or the ``DivergenceError`` that a solo evaluation at that seed would raise (a
    member whose whole sweep diverged on a task stops there; the others go on). Wall and compile
    seconds are shared equally among the members that trained.
    """
    seeds = check_seeds(seeds)
    names = check_tasks(tasks, ev.protocol)
    spec = ev.proxy_spec(candidate)
    start = time.perf_counter()
    details: dict[int, dict[str, list[dict[str, Any]]]] = {s: {} for s in seeds}
    errors: dict[int, Exception] = {}
    for task in names:
        for index, config in enumerate(ev.protocol.configs(task)):
            active = [s for s in seeds if s not in errors]
            if not active:
                break
            for seed, out in zip(active, pack_setting(ev, task, index, config, spec, active)):
                if isinstance(out, Exception):
                    errors[seed] = out
                else:
                    details[seed].setdefault(task, []).append(out)
    share = (time.perf_counter() - start) / len(seeds)
    return [errors[s] if s in errors else ev.result(candidate, spec, s, details[s], wall_s=share) for s in seeds]


