"""Exhaustive enumeration: the first feasible layout, in lexicographic order, not yet tried."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler

from search.study_attrs import interrupted_numbers

__all__ = ["ExhaustiveSampler", "exhaustive", "taken_blocks"]


def taken_blocks(study: optuna.Study, space, exclude_number: int | None = None) -> set[str]:
    """Blocks of every trial that holds a full layout, except interrupted ones (they are re-queued)."""
    names = set(space.param_names)
    out = set()
    trials = study.get_trials(deepcopy=False)
    interrupted = interrupted_numbers(trials)
    for t in trials:
        if t.number != exclude_number and names <= set(t.params) and t.number not in interrupted:
            out.add(space.block(t.params))
    return out


class ExhaustiveSampler(BaseSampler):
    """Proposes each feasible layout once; the order does not depend on the seed.

    When every layout has been tried it proposes a random one, which the loop sees as a duplicate
    and, with nothing left to fall back on, stops the stage.
    """

    def __init__(self, space, seed: int = 0):
        self._space = space
        self._rng = np.random.default_rng(seed)

    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        return self._space.distributions()

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        if not search_space:
            return {}
        taken = taken_blocks(study, self._space, exclude_number=trial.number)
        for block in self._space.enumerate():
            if block not in taken:
                return self._space.params(block)
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution) -> Any:
        choices = param_distribution.choices
        return choices[int(self._rng.integers(len(choices)))]


def exhaustive(space, *, seed: int, budget: int, n_objectives: int = 1) -> ExhaustiveSampler:
    return ExhaustiveSampler(space, seed=seed)
