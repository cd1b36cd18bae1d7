"""The search loop of one stage: ask, skip what is known, evaluate, tell (docs/conventions.md §7).

Reproducibility: before every ask the study gets a fresh sampler seeded from
``(run seed, stage, number of trials so far)``, interrupted trials excluded. All sampler state thus
lives in the storage, and a run killed and resumed proposes exactly the layouts an uninterrupted run
would (interrupted layouts are re-queued and asked first). With ``workers > 1`` the loop proposes a
batch, evaluates it concurrently and tells the results in trial order, so batches are reproducible too.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
import optuna
from optuna.trial import TrialState

from search.backends import run_with_retries
from search.batches import layout_chunks
from search.budget import count_evaluations
from search.claims import GO, Claims, Pending, SoloClaims
from search.dedup import Evaluated, EvaluatedIndex
from search.evaluators import EvalOutcome, dedup_key
from search.recovery import requeue
from search.results.records import Row
from search.results.rows import RunInfo, Where, build_row, objective_values
from search.searchers.exhaustive import taken_blocks
from search.space import SearchSpace
from search.study_attrs import (
    DUPLICATE,
    DUPLICATE_OF,
    ERROR,
    INFEASIBLE,
    KEY,
    OK,
    PROPOSED,
    REASON,
    REPAIRED,
    ROW,
    SEED,
    STATUS,
    interrupted_numbers,
)

__all__ = ["MAX_IDLE", "Stage", "Engine", "EngineConfig", "derive_seed"]

MAX_IDLE = 3
"""Known or infeasible proposals in a row after which the nearest untried feasible layout is queued
instead (a sampler that does not learn from failed trials, the GP, would keep proposing them)."""


def derive_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


@dataclasses.dataclass(frozen=True)
class Stage:
    """One search over ``space`` with its own study and budget."""

    index: int
    study_name: str
    space: SearchSpace
    budget: int
    searcher: Any  # a search.searchers.Searcher
    phase: str = "search"
    rung: int | None = None
    """Seed rung of successive halving the stage's rows belong to (``None``: none)."""


@dataclasses.dataclass(frozen=True)
class EngineConfig:
    """What fixes how the engine evaluates and records (the run's identity and target)."""

    run: str
    objectives: tuple[str, ...] = ("score",)
    seed: int = 0
    scale: str = "350M"
    rule: str = "auto"
    match: str = "none"
    sampler_name: str = "random"
    max_retries: int = 2

    @classmethod
    def from_settings(cls, settings) -> EngineConfig:
        return cls(run=settings.run_name, objectives=settings.objectives, seed=settings.seed, scale=settings.scale,
                   rule=settings.rule, match=settings.match, sampler_name=settings.sampler,
                   max_retries=settings.max_retries)


class Engine:
    """Runs stages against one evaluator and backend, keeping the run-wide dedup index."""

    def __init__(self, config: EngineConfig, *, evaluator, backend, index: EvaluatedIndex,
                 info: RunInfo | None = None, on_record: Callable[[Row], None] | None = None,
                 heartbeat=None, claims: Claims | None = None):
        self.config, self.evaluator, self.backend, self.index = config, evaluator, backend, index
        self.info = info or RunInfo.collect()
        self.on_record = on_record or (lambda row: None)
        self.heartbeat = heartbeat
        self.claims = claims or SoloClaims()
        """``SharedClaims`` when other drivers may share the storage (``search.shared_claims``)."""
        self._full = False

    @property
    def seed(self) -> int:
        return self.config.seed

    def used(self, study: optuna.Study) -> int:
        return count_evaluations(study.get_trials(deepcopy=False))

    def run_stage(self, study: optuna.Study, stage: Stage, workers: int = 1) -> int:
        """Evaluate until the stage budget is used or the space is exhausted; return evaluations made."""
        made, claims = 0, self.claims
        while True:
            left = stage.budget - self.used(study) - claims.in_flight(study)
            batch = self._propose(study, stage, min(workers, left)) if left > 0 else []
            if not batch:
                if not claims.settle(study):  # other drivers' last evaluations may change it
                    break
                continue
            outcomes = self.evaluate_batch(study, batch)
            for pending, outcome in zip(batch, outcomes):
                self.record(study, stage, pending, outcome)
                made += 1
        claims.sync(study, self.index)
        return made

    def evaluate_batch(self, study: optuna.Study, batch: list[Pending]) -> list[EvalOutcome]:
        """Evaluate ``batch`` on the backend (with retries), its trials tracked by the heartbeat."""
        # Trial._trial_id is the storage id the heartbeat needs; Optuna's own loop uses it the same way.
        ids = [p.trial._trial_id for p in batch]
        for p in batch:
            p.trial.set_user_attr(PROPOSED, True)
        try:
            if self.heartbeat is not None:
                for i in ids:
                    self.heartbeat.track(i)
            return run_with_retries(self.backend, [(p.full, p.seed) for p in batch], self.config.max_retries)
        except BaseException:  # Ctrl-C / SystemExit: leave the study resumable, nothing RUNNING
            trials = study.get_trials(deepcopy=False)
            for p in batch:  # the same re-queue as recovery after a kill (seed and claim kept)
                requeue(study, trials[p.trial.number])
            raise
        finally:
            if self.heartbeat is not None:
                for i in ids:
                    self.heartbeat.untrack(i)

    def _ask(self, study: optuna.Study, stage: Stage) -> optuna.Trial:
        trials = study.get_trials(deepcopy=False)
        n = len(trials) - len(interrupted_numbers(trials))
        seed = derive_seed(self.seed, stage.index, n)
        study.sampler = stage.searcher.make(stage.space, seed, stage.budget, len(self.config.objectives))
        while not self.claims.take(trial := study.ask(stage.space.distributions())):
            pass  # popped a queued trial another driver had just closed: ask again
        return trial

    def _exhausted(self, study: optuna.Study, stage: Stage, batch: list[Pending]) -> bool:
        n = stage.space.n_feasible
        if n is None or self.claims.queued(study):  # queued trials are asked first
            return False
        done = {stage.space.block(t.params) for t in study.get_trials(deepcopy=False)
                if t.user_attrs.get(STATUS) in (OK, ERROR, DUPLICATE) and len(t.params) == stage.space.depth}
        return len(done) + len(batch) >= n

    def _propose(self, study: optuna.Study, stage: Stage, k: int) -> list[Pending]:
        batch: list[Pending] = []
        idle, self._full = 0, False
        while len(batch) < k and not self._exhausted(study, stage, batch):
            trial = self._ask(study, stage)
            pending = self._screen(study, stage, trial, batch)
            if pending is not None:
                batch.append(pending)
                idle = 0
                continue
            if self._full:  # other drivers' claims filled the budget
                break
            idle += 1
            if idle >= MAX_IDLE:
                if not self._queue_repair(study, stage, batch, stage.space.block(trial.params)):
                    break
                idle = 0
        return batch

    def _screen(self, study, stage: Stage, trial: optuna.Trial, batch: list[Pending]) -> Pending | None:
        """A new layout to evaluate, or ``None`` after telling an infeasible or known one."""
        block = stage.space.block(trial.params)
        reason = stage.space.violation(block)
        if reason:
            trial.set_user_attr(STATUS, INFEASIBLE)
            trial.set_user_attr(REASON, reason)
            study.tell(trial, state=TrialState.FAIL)
            return None
        full = stage.space.full(block)
        key = dedup_key(self.evaluator, full)
        known = self.index.get(key)
        if known is None and all(p.key != key for p in batch):
            verdict, other = self.claims.claim(study, trial, key, budget=stage.budget)
            if verdict == GO:
                return Pending(trial, block, full, key)
            known = self.claims.resolve(study, trial, verdict, other, self.index)
            if known is None:  # yielded to another driver's trial, or over budget: told already
                self._full = verdict == "over"
                return None
        trial.set_user_attr(STATUS, DUPLICATE)
        if known is None:  # proposed twice within one batch: the first one answers later
            study.tell(trial, state=TrialState.FAIL)
            return None
        trial.set_user_attr(DUPLICATE_OF, f"{known.study}#{known.number}")
        if known.ok:
            study.tell(trial, objective_values(known.row, self.config.objectives))
        else:
            study.tell(trial, state=TrialState.FAIL)
        return None

    def _queue_repair(self, study: optuna.Study, stage: Stage, batch: list[Pending], proposed: str) -> bool:
        taken = taken_blocks(study, stage.space) | {p.block for p in batch}
        rng = np.random.default_rng(derive_seed(self.seed, stage.index, len(study.trials), 1))
        block = stage.space.nearest(proposed, taken, rng)
        if block is None:
            return False
        claim = self.claims.claim_attrs(dedup_key(self.evaluator, stage.space.full(block)))
        study.enqueue_trial(stage.space.params(block), user_attrs={REPAIRED: True, **claim})
        return True

    def evaluate_layouts(self, study: optuna.Study, patterns: list[str], stage_index: int,
                         seeds: tuple[int | None, ...] = (None,)) -> None:
        """Evaluate given full layouts once at each of ``seeds`` (the final phase), skipping known ones."""
        self.evaluate_jobs(study, [(p, s) for p in patterns for s in seeds], stage_index, phase="final")

    def evaluate_jobs(self, study: optuna.Study, jobs: list[tuple[str, int | None]], stage_index: int, *,
                      phase: str, rung: int | None = None) -> None:
        """Evaluate the given ``(layout, seed)`` jobs once each, skipping known ones.

        Seed ``None`` is the run's seed; other seeds are stored on the queued trial, so an interrupted
        phase re-queues exactly the (layout, seed) pairs it had not finished. ``rung``: the seed rung
        the rows belong to."""
        if not jobs:
            return
        patterns = [p for p, _ in jobs]
        space = SearchSpace(tuple(sorted(set("".join(patterns)))), depth=len(patterns[0]))
        stage = Stage(stage_index, study.study_name, space, len(jobs), None, phase=phase, rung=rung)
        self.claims.evaluate_jobs(self, study, jobs, stage)

    def evaluate_jobs_alone(self, study: optuna.Study, jobs: list[tuple[str, int | None]], stage: Stage) -> None:
        """``evaluate_jobs`` for one driver (``SoloClaims``): queue the jobs not yet known, evaluate them."""
        space = stage.space
        for _ in range(len(jobs) + 1):
            todo = list(dict.fromkeys(j for j in jobs if dedup_key(self.evaluator, *j) not in self.index))
            if not todo:
                return
            waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if not waiting:  # re-queued layouts of an interrupted final phase come first
                for p, s in todo:
                    study.enqueue_trial(space.params(p), user_attrs={SEED: s} if s is not None else None)
            batch = []
            for _ in range(len(waiting) or len(todo)):
                study.sampler = optuna.samplers.RandomSampler(seed=self.seed)
                trial = study.ask(space.distributions())
                block, seed = space.block(trial.params), trial.user_attrs.get(SEED)
                batch.append(Pending(trial, block, block, dedup_key(self.evaluator, block, seed), seed))
            # The queue's order after a resume depends on which trials were re-queued; evaluate (and
            # number the rows) in the jobs' own order, so a resumed phase stores what a clean one does.
            rank = {dedup_key(self.evaluator, *j): i for i, j in enumerate(todo)}
            batch.sort(key=lambda p: rank.get(p.key, len(rank)))
            chunks = layout_chunks(batch, getattr(self.backend, "workers", 1))
            for k, chunk in enumerate(chunks):
                try:
                    outcomes = self.evaluate_batch(study, chunk)
                except BaseException:  # the chunks not started go back to the queue as the failed one did
                    trials = study.get_trials(deepcopy=False)
                    for p in (p for later in chunks[k + 1:] for p in later):
                        requeue(study, trials[p.trial.number])
                    raise
                for pending, outcome in zip(chunk, outcomes):
                    if pending.key not in self.index:
                        self.record(study, stage, pending, outcome)
                    else:
                        pending.trial.set_user_attr(STATUS, DUPLICATE)
                        study.tell(pending.trial, state=TrialState.FAIL)

    def record(self, study: optuna.Study, stage: Stage, pending: Pending, outcome: EvalOutcome) -> None:
        """Store ``outcome`` as the trial's row, tell the study, add it to the index."""
        c = self.config
        where = Where(run=c.run, study=study.study_name, phase=stage.phase, stage=stage.index,
                      trial_number=pending.trial.number, eval_index=len(self.index) + 1, search_seed=c.seed,
                      sampler=c.sampler_name, rung=stage.rung)
        row = build_row(outcome=outcome, evaluator=self.evaluator, pattern=pending.full, where=where,
                        info=self.info, scale=c.scale, rule=c.rule, match=c.match)
        trial = pending.trial
        trial.set_user_attr(KEY, pending.key)
        trial.set_user_attr(STATUS, row.status)
        trial.set_user_attr(ROW, row.to_dict())  # last: a trial with its row is a finished evaluation
        if row.status == OK:
            study.tell(trial, objective_values(row, self.config.objectives))
        else:
            study.tell(trial, state=TrialState.FAIL)
        self.index.add(Evaluated(pending.key, study.study_name, trial.number, row))
        self.on_record(row)
