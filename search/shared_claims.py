"""Several drivers on one storage: ``composer search`` started more than once on the same ``--storage`` and
``--name`` (each with its own run folder and workers) shares one run
(docs/distributed.md, "Several drivers on one PostgreSQL study").

The drivers talk only through the studies:

- **Claim.** Before evaluating, a driver writes the dedup key on its trial (``claim``) and reads the study.
  Optuna numbers trials under a lock on the study, so every lower-numbered trial is visible by then; the
  lowest live trial claiming a key evaluates it, every higher one yields (status ``duplicate``, nothing
  evaluated). A lower trial that claims nothing yet (its layout is still being proposed) is waited for, and
  queued trials carry their claim from the moment they are queued. So a (layout, seed) is evaluated once.
- **Budget.** A stage's budget counts the finished evaluations and the live claims of every driver; a claim
  past the budget is dropped (``interrupted``: its layout stays free for a later, larger budget).
- **Barrier.** A driver leaves a stage or phase only when no other driver still has a live trial in its
  study, and then adds their rows to its own index: every driver plans the seed rungs, the stage winner and
  the final checks from the same rows, so all agree and a finished run's leaderboard is the same in each run
  folder. A trial whose heartbeat stopped (its driver was killed) is failed after ``GRACE_S`` and queued
  again, and a surviving driver evaluates it.

One driver alone on a private storage (the default) runs none of this: its claims are ``SoloClaims``,
the same interface with nothing to share (every claim goes, nothing is in flight elsewhere).
With several drivers a sampler's proposals depend on how the drivers interleave; the exhaustive sampler's
do not, so an exhaustively searched space gives the same leaderboard as one driver.
"""

from __future__ import annotations

import time
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.budget import is_evaluation
from search.claims import GO, KNOWN, OVER, YIELD, Claims, Pending, driver_id
from search.dedup import Evaluated, EvaluatedIndex
from search.evaluators import dedup_key
from search.heartbeat import GRACE_S
from search.recovery import recover, requeue
from search.results.records import Row
from search.study_attrs import (
    CLAIM,
    DRIVER,
    DUPLICATE,
    DUPLICATE_OF,
    INFEASIBLE,
    INTERRUPTED,
    KEY,
    REASON,
    ROW,
    SEED,
    STATUS,
)

__all__ = ["SharedClaims", "POLL_S"]

POLL_S = 0.2
"""Seconds between reads of the study while waiting for another driver."""


def _dropped(t: FrozenTrial) -> bool:
    """Holds no claim: it yielded, was infeasible or interrupted, or ended without a row."""
    a = t.user_attrs
    return bool(a.get(INTERRUPTED)) or a.get(STATUS) in (DUPLICATE, INFEASIBLE) or (
        t.state.is_finished() and not is_evaluation(a))


def _evaluated(study: optuna.Study, t: FrozenTrial) -> Evaluated:
    return Evaluated(t.user_attrs[KEY], study.study_name, t.number, Row.from_dict(t.user_attrs[ROW]))


class SharedClaims(Claims):
    """What one driver does to share a run with the others (see the module doc)."""

    shared = True

    def claim_attrs(self, key: str) -> dict[str, str]:
        return {CLAIM: key}

    def __init__(self, heartbeat, objectives: tuple[str, ...], workers: int = 1, *, wait_s: float = GRACE_S,
                 poll_s: float = POLL_S):
        self.heartbeat, self.objectives, self.workers = heartbeat, objectives, max(1, workers)
        self.wait_s, self.poll_s = wait_s, poll_s
        self.driver = driver_id()
        self._first_seen: dict[tuple[str, int], float] = {}

    def take(self, trial: optuna.Trial) -> bool:
        """Start the trial's heartbeat, then sign it (``driver``): a signed trial lives as long as its heartbeat,
        so a driver killed while proposing leaves a trial that goes stale like any other (``settle``)."""
        if self.heartbeat is not None:
            self.heartbeat.track(trial._trial_id)
        try:
            trial.set_user_attr(DRIVER, self.driver)
        except optuna.exceptions.UpdateFinishedTrialError:  # unsigned past wait_s: another driver closed it
            if self.heartbeat is not None:
                self.heartbeat.untrack(trial._trial_id)
            return False
        return True

    def _proposing(self, study: optuna.Study, t: FrozenTrial) -> bool:
        """A running trial that claims nothing yet is being proposed, unless it has been so for ``wait_s``
        (its driver died while proposing). The same clock bounds an unsigned trial's life (``settle``)."""
        first = self._first_seen.setdefault((study.study_name, t.number), time.monotonic())
        return time.monotonic() - first < self.wait_s

    def claim(self, study: optuna.Study, trial: optuna.Trial, key: str,
              budget: int | None = None) -> tuple[str, FrozenTrial | None]:
        """Claim ``key`` for ``trial``; return the verdict and the trial that decided it (``KNOWN``, ``YIELD``).

        ``budget``: evaluations the study may hold; the claim is ``OVER`` when the evaluations and live claims
        of lower-numbered trials already fill it."""
        if DRIVER not in trial.user_attrs:  # taken at creation (``take``); a trial made elsewhere, here
            self.take(trial)
        trial.set_user_attr(CLAIM, key)
        while True:
            keys, proposing = set(), False
            for t in study.get_trials(deepcopy=False):
                if t.number >= trial.number:
                    break  # sorted by number
                a = t.user_attrs
                if is_evaluation(a):
                    if a[KEY] == key:
                        return KNOWN, t
                    keys.add(a[KEY])
                elif _dropped(t):
                    continue
                elif CLAIM in a:
                    if a[CLAIM] == key:
                        return YIELD, t
                    if t.state == TrialState.RUNNING:
                        keys.add(a[CLAIM])
                elif t.state == TrialState.RUNNING and self._proposing(study, t):
                    proposing = True
            if not proposing:
                return (OVER, None) if budget is not None and len(keys) >= budget else (GO, None)
            time.sleep(self.poll_s)

    def resolve(self, study: optuna.Study, trial: optuna.Trial, verdict: str, other: FrozenTrial | None,
                index: EvaluatedIndex) -> Evaluated | None:
        """Close a trial that lost its claim. ``KNOWN``: return the evaluation (added to ``index``) for the
        caller to answer from; ``YIELD`` and ``OVER``: the trial is told here."""
        if self.heartbeat is not None:
            self.heartbeat.untrack(trial._trial_id)
        if verdict == KNOWN:
            known = _evaluated(study, other)
            index.add(known)
            return index.get(known.key)
        if verdict == YIELD:
            trial.set_user_attr(STATUS, DUPLICATE)
            trial.set_user_attr(DUPLICATE_OF, f"{study.study_name}#{other.number}")
        else:
            trial.set_user_attr(REASON, "over budget: the other drivers' evaluations used it")
            trial.set_user_attr(INTERRUPTED, True)
        study.tell(trial, state=TrialState.FAIL)
        return None

    @staticmethod
    def in_flight(study: optuna.Study) -> int:
        """Live claims not yet evaluated (any driver's)."""
        return sum(1 for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                   if CLAIM in t.user_attrs and not _dropped(t) and not is_evaluation(t.user_attrs))

    @staticmethod
    def queued(study: optuna.Study) -> bool:
        return bool(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))

    def settle(self, study: optuna.Study) -> bool:
        """Wait until no other driver has a live trial in ``study``; return whether there was one, or a dead
        one was queued again (either way the caller has more to do: read their rows, evaluate the queue).

        Heartbeat-stale trials are failed and queued again on the way (``search.recovery.recover``)."""
        waited = False
        while True:
            if recover(study, self.objectives, all_running_are_stale=False):
                waited = True
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            # A trial its driver never signed (killed between creating it and starting its heartbeat) has no
            # heartbeat to go stale: after wait_s it is failed here as interrupted, its queued layout queued again.
            unsigned = [t for t in running if DRIVER not in t.user_attrs and not self._proposing(study, t)]
            for t in unsigned:
                waited = requeue(study, t) or waited
            if unsigned:
                continue
            if not running:
                return waited
            waited = True
            time.sleep(self.poll_s)

    @staticmethod
    def sync(study: optuna.Study, index: EvaluatedIndex) -> None:
        """Add the study's evaluations (the other drivers' too) to ``index``."""
        for t in study.get_trials(deepcopy=False):
            if is_evaluation(t.user_attrs) and t.user_attrs[KEY] not in index:
                index.add(_evaluated(study, t))

    def _pop(self, study: optuna.Study, space) -> optuna.Trial | None:
        # Optuna's own queue pop: study.ask() would create a fresh, randomly sampled trial on an empty queue,
        # and another driver may have emptied it since we looked.
        while True:
            study._thread_local.cached_all_trials = None  # as study.ask() does
            trial_id = study._pop_waiting_trial_id()
            if trial_id is None:
                return None
            trial = optuna.Trial(study, trial_id)
            if self.take(trial):
                break
        for name, dist in space.distributions().items():
            trial.suggest_categorical(name, dist.choices)  # the queued layout (fixed parameters)
        return trial

    def evaluate_jobs(self, engine: Any, study: optuna.Study, jobs: list[tuple[str, int | None]], stage) -> None:
        """``Engine.evaluate_jobs`` with other drivers: each ``(layout, seed)`` is queued once with its claim,
        every driver pops and evaluates ``workers`` at a time, and waits for the others' last ones."""
        wanted = {dedup_key(engine.evaluator, *j): j for j in jobs}
        while True:
            self.sync(study, engine.index)
            todo = [k for k in wanted if k not in engine.index]
            if not todo:
                return
            held = {t.user_attrs.get(CLAIM) for t in study.get_trials(deepcopy=False)
                    if not t.state.is_finished() and not _dropped(t)}
            for k in todo:
                if k not in held:
                    pattern, seed = wanted[k]
                    study.enqueue_trial(stage.space.params(pattern),
                                        user_attrs={CLAIM: k, **({SEED: seed} if seed is not None else {})})
            batch = []
            while len(batch) < self.workers and (trial := self._pop(study, stage.space)) is not None:
                pattern, seed = stage.space.block(trial.params), trial.user_attrs.get(SEED)
                key = dedup_key(engine.evaluator, pattern, seed)
                known = engine.index.get(key)
                if known is None:
                    verdict, other = self.claim(study, trial, key)
                    if verdict == GO:
                        batch.append(Pending(trial, pattern, pattern, key, seed))
                        continue
                    known = self.resolve(study, trial, verdict, other, engine.index)
                if known is not None:
                    trial.set_user_attr(STATUS, DUPLICATE)
                    trial.set_user_attr(DUPLICATE_OF, f"{known.study}#{known.number}")
                    study.tell(trial, state=TrialState.FAIL)
            if not batch:
                self.settle(study)
                continue
            for pending, outcome in zip(batch, engine.evaluate_batch(study, batch)):
                engine.record(study, stage, pending, outcome)
