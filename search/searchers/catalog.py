"""The searcher registry: names, what each one runs, and whether it handles several objectives."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable

from composer.errors import lookup

__all__ = ["Searcher", "SEARCHERS", "get_searcher"]


@dataclasses.dataclass(frozen=True)
class Searcher:
    """A named way to propose layouts."""

    name: str
    """CLI name (``--sampler``)."""
    factory: str
    """``module:function`` returning ``(space, seed, budget, n_objectives) -> optuna sampler``."""
    description: str

    def make(self, space, seed: int, budget: int, n_objectives: int = 1) -> Any:
        module, func = self.factory.split(":")
        build: Callable = getattr(importlib.import_module(module), func)
        return build(space, seed=seed, budget=budget, n_objectives=n_objectives)

    @property
    def impl(self) -> str:
        """What really runs, recorded in ``summary.json``."""
        return self.description


SEARCHERS: dict[str, Searcher] = {s.name: s for s in [
    Searcher("gp", "search.searchers.optuna_samplers:gp", "optuna.GPSampler (Gaussian-process BO)"),
    Searcher("tpe", "search.searchers.optuna_samplers:tpe", "optuna.TPESampler (multivariate)"),
    Searcher("random", "search.searchers.optuna_samplers:random", "optuna.RandomSampler"),
    Searcher("nsga2", "search.searchers.optuna_samplers:nsga2", "optuna.NSGAIISampler"),
    Searcher("exhaustive", "search.searchers.exhaustive:exhaustive",
             "every feasible layout in lexicographic order"),
]}


def get_searcher(name: str) -> Searcher:
    return lookup(SEARCHERS, name, field="sampler", what="sampler", error=ValueError)
