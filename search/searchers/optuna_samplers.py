"""Optuna samplers behind the searcher names (imported only when a search runs).

Every factory takes the per-ask ``seed`` (``search.loop`` derives it), so samplers are cheap to
rebuild: all their state lives in the study storage.
"""

from __future__ import annotations

import importlib.util
import warnings

import optuna

__all__ = ["gp", "tpe", "random", "nsga2", "has_torch"]

_STARTUP = 10
"""Random layouts before a model-based sampler starts (Optuna's default, capped at a quarter of the budget)."""

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _startup(budget: int) -> int:
    return max(2, min(_STARTUP, budget // 4))


def has_torch() -> bool:
    return importlib.util.find_spec("torch") is not None


def gp(space, *, seed: int, budget: int, n_objectives: int = 1) -> optuna.samplers.BaseSampler:
    """Optuna's GP sampler (Matern-5/2 ARD, logEI / logEHVI for several objectives).

    The paper used a GP with qLogNEI (BoTorch); Optuna's GPSampler is the closest maintained option.
    It needs PyTorch (``make install`` brings the CPU build; ``pip install 'composer-hybrid[gp]'``).
    """
    if not has_torch():
        from composer.errors import UsageError

        raise UsageError("sampler: 'gp' uses optuna.GPSampler, which needs PyTorch; install it with "
                         "pip install 'composer-hybrid[gp]' (or `make install`), or pick --sampler tpe")
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=_startup(budget))


def tpe(space, *, seed: int, budget: int, n_objectives: int = 1) -> optuna.samplers.BaseSampler:
    # Multivariate TPE models interactions between positions (attention early *and* MLP late).
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=_startup(budget), multivariate=True)


def random(space, *, seed: int, budget: int, n_objectives: int = 1) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


def nsga2(space, *, seed: int, budget: int, n_objectives: int = 1) -> optuna.samplers.BaseSampler:
    # At least four generations within the budget; Optuna's default of 50 needs budgets of 200+.
    population = max(4, min(50, budget // 4))
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
