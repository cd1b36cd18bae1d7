"""The one unit of ``--budget``: a finished evaluation of a new layout.

An *evaluation* is one evaluator call on a (layout, seed) whose dedup key (``arch_id``, protocol and
seed) had not been evaluated before in this run, that ran to its end (the seed rungs of successive
halving count like the search's own proposals): it returned a score (status ``ok``) or raised
(status ``error``; the layout is not retried, as the failure is usually deterministic).
Not counted: duplicates the sampler proposed (answered from the stored value without evaluating),
infeasible proposals (rejected before evaluating), and interrupted evaluations (re-queued, counted
once they finish). The final-phase checks of the aggregated layout and the Llama baseline are not part
of the search budget.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from search.study_attrs import ERROR, OK, ROW, STATUS

__all__ = ["UNIT", "COUNTED", "is_evaluation", "count_evaluations"]

UNIT = ("one finished evaluator call (score or error) on a (layout, seed) whose arch_id, protocol and seed were "
        "not evaluated before in this run; duplicates, infeasible proposals and interrupted calls do not count")

COUNTED = (OK, ERROR)


def is_evaluation(user_attrs: Mapping[str, Any]) -> bool:
    """Does a trial with these user attributes use one unit of budget? (Its row is stored last.)"""
    return user_attrs.get(STATUS) in COUNTED and ROW in user_attrs


def count_evaluations(trials: Iterable[Any]) -> int:
    """Budget used by ``trials`` (Optuna ``FrozenTrial``s)."""
    return sum(1 for t in trials if is_evaluation(t.user_attrs))
