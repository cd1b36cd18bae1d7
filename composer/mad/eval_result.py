"""What one MAD evaluation returns (``EvalResult``) and the check of the task names it is asked for."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from composer.errors import UsageError
from composer.jsontypes import Record
from composer.mad.protocol import Protocol

__all__ = ["EvalResult", "check_tasks"]


@dataclasses.dataclass(frozen=True)
class EvalResult(Record):
    """One candidate's proxy evaluation; ``to_dict()`` is JSON-ready."""

    arch_id: str
    """Id of the candidate: of the ``ArchSpec`` passed in, or for a pattern of ``Evaluator.proxy_spec``
    (for ``cpu`` the id ``composer inspect --pattern P --scale proxy`` prints)."""
    pattern: str
    protocol: str
    seed: int
    score: float
    """Mean task accuracy: the search objective."""
    tasks: dict[str, float]
    """Task -> accuracy used in ``score`` (per the protocol's selection)."""
    steps: dict[str, int]
    """Task -> optimiser steps (summed over sweep runs and settings)."""
    tokens: dict[str, int]
    """Task -> training tokens."""
    total_steps: int
    total_tokens: int
    wall_s: float
    compile_s: float
    details: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    """Task -> per setting: final and curve accuracies, losses, chosen (lr, wd), timings."""


def check_tasks(tasks: Iterable[str] | str | None, protocol: Protocol) -> tuple[str, ...]:
    """Validate task names (a list or a comma-separated string) against the protocol."""
    if tasks is None:
        return protocol.task_names
    names = [t.strip() for t in tasks.split(",")] if isinstance(tasks, str) else list(tasks)
    bad = [t for t in names if t not in protocol.settings]
    if bad or not names:
        raise UsageError(f"tasks: unknown task(s) {bad or names}; valid tasks: {', '.join(protocol.task_names)}")
    return tuple(dict.fromkeys(names))
