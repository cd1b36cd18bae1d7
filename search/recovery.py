"""Closing what a killed process left behind: re-queue interrupted layouts, finish stored evaluations.

On start, a trial left RUNNING by a killed process is finished from its stored row if the evaluation
had completed, else failed (``interrupted``) and its layout queued again, so the resumed run evaluates
the same layouts in the same order (docs/search.md, "Durable studies").
"""

from __future__ import annotations

import warnings

import optuna
from optuna.trial import TrialState

from search.budget import is_evaluation
from search.results.records import Row
from search.storage import set_attr
from search.study_attrs import CLAIM, INTERRUPTED, PROPOSED, REPAIRED, REQUEUED_FROM, ROW, SEED, STATUS

__all__ = ["requeue", "recover"]


def requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
    """Mark ``trial`` interrupted (FAIL) and queue its layout (and evaluation seed) again.

    Only a layout that was complete is queued: a queued trial's fixed parameters, or a proposal that
    was claimed (``CLAIM``, several drivers) or reached evaluation (``PROPOSED``). Returns whether anything was queued.

    A RUNNING trial is marked ``interrupted`` and failed; one that Optuna already failed for a stopped
    heartbeat (a killed driver's, on a shared storage) can take no more attributes, and the queued
    trial's ``REQUEUED_FROM`` is its mark."""
    if trial.state == TrialState.RUNNING:
        set_attr(study, trial, INTERRUPTED, True)
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
    params = trial.system_attrs.get("fixed_params")  # Optuna's record of an enqueued trial's layout
    if params is None and (trial.user_attrs.get(PROPOSED) or CLAIM in trial.user_attrs):
        params = trial.params  # a layout is claimed only once it is complete
    if params is None:
        return False
    keep = {k: trial.user_attrs[k] for k in (SEED, REPAIRED, CLAIM) if k in trial.user_attrs}
    study.enqueue_trial(dict(params), user_attrs={REQUEUED_FROM: trial.number, **keep})
    return True


def recover(study: optuna.Study, objectives: tuple[str, ...], *, all_running_are_stale: bool) -> int:
    """Close the trials a dead process left behind; return how many were re-queued.

    ``all_running_are_stale``: the caller holds the run lock and the storage is private to the run,
    so no live process can own a RUNNING trial. Otherwise only heartbeat-stale trials are closed.
    """
    from search.results.rows import objective_values

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    requeued = 0
    trials = study.get_trials(deepcopy=False)
    # A trial already queued again is not queued twice (a later call, or another driver, sees it failed but
    # may not yet see its ``interrupted`` mark: Optuna caches finished trials).
    again = {t.user_attrs.get(REQUEUED_FROM) for t in trials}
    for t in trials:
        orphan = t.state == TrialState.RUNNING and all_running_are_stale
        stale = t.state == TrialState.FAIL and STATUS not in t.user_attrs and not t.user_attrs.get(INTERRUPTED)
        if not (orphan or stale) or t.number in again:
            continue
        if is_evaluation(t.user_attrs):
            if t.state == TrialState.RUNNING:  # killed between storing the row and telling: finish it
                row = Row.from_dict(t.user_attrs[ROW])
                ok = row.status == "ok"
                study.tell(t.number, objective_values(row, objectives) if ok else None,
                           state=TrialState.COMPLETE if ok else TrialState.FAIL)
            continue
        requeued += requeue(study, t)
    return requeued
