"""The claims strategy the search engine asks before and after it evaluates a layout: ``SoloClaims`` for
one driver on a private storage (the default: every claim goes, nothing is in flight elsewhere), and
``search.shared_claims.SharedClaims`` for several drivers sharing one storage (docs/distributed.md).
"""

from __future__ import annotations

import dataclasses
import os
import socket
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from search.dedup import Evaluated, EvaluatedIndex

__all__ = ["GO", "KNOWN", "YIELD", "OVER", "Pending", "Claims", "SoloClaims", "driver_id"]

GO, KNOWN, YIELD, OVER = "go", "known", "yield", "over"
"""Verdicts of a claim: evaluate; already evaluated (answer from its row); another trial evaluates it; past
the budget."""


def driver_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclasses.dataclass
class Pending:
    """A trial about to be evaluated: its block, the full layout, its dedup key and seed."""

    trial: optuna.Trial
    block: str
    full: str
    key: str
    seed: int | None = None


class Claims:
    """The claims strategy the engine asks before and after evaluating (``SoloClaims`` for one driver,
    ``SharedClaims`` for several on one storage)."""

    shared = False

    def claim_attrs(self, key: str) -> dict[str, str]:
        """User attributes a queued trial carries so other drivers see its claim at once."""
        return {}

    def take(self, trial: optuna.Trial) -> bool:
        """Mark a trial this driver just created or popped as its own; ``False``: another driver already
        closed it (the caller takes another)."""
        return True

    def claim(self, study: optuna.Study, trial: optuna.Trial, key: str,
              budget: int | None = None) -> tuple[str, FrozenTrial | None]:
        return GO, None

    def resolve(self, study, trial, verdict, other, index) -> Evaluated | None:  # pragma: no cover - GO only
        raise AssertionError("one driver's claims always go")

    def in_flight(self, study: optuna.Study) -> int:
        return 0

    def queued(self, study: optuna.Study) -> bool:
        return False

    def settle(self, study: optuna.Study) -> bool:
        return False

    def sync(self, study: optuna.Study, index: EvaluatedIndex) -> None:
        return None

    def evaluate_jobs(self, engine: Any, study: optuna.Study, jobs: list[tuple[str, int | None]], stage) -> None:
        engine.evaluate_jobs_alone(study, jobs, stage)


class SoloClaims(Claims):
    """One driver on its own storage: nothing to share."""
