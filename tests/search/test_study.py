"""Storage-level pieces: stale-trial recovery, the heartbeat and the dedup index."""

import time

import optuna
import pytest
from optuna.trial import TrialState

from search.dedup import EvaluatedIndex
from search.heartbeat import Heartbeat
from search.recovery import recover
from search.space import SearchSpace
from search.storage import open_storage
from search.study_attrs import INTERRUPTED, KEY, PROPOSED, REQUEUED_FROM, ROW, SEED, STATUS

pytestmark = [pytest.mark.filterwarnings("ignore:Heartbeat of storage"),
              pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")]


def _study(tmp_path, name="r/stage0"):
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    return optuna.create_study(storage=storage, study_name=name, direction="maximize"), storage


def test_recover_requeues_orphans_and_finishes_stored_evaluations(tmp_path):
    study, _ = _study(tmp_path)
    dists = SearchSpace(depth=2).distributions()
    orphan = study.ask(dists)
    orphan.set_user_attr(PROPOSED, True)  # killed while being evaluated
    finished = study.ask(dists)  # killed after storing its row, before telling
    finished.set_user_attr(KEY, "k|cpu")
    finished.set_user_attr(STATUS, "ok")
    finished.set_user_attr(ROW, {"status": "ok", "score": 0.75, "eval_index": 1})
    assert recover(study, ("score",), all_running_are_stale=True) == 1
    trials = study.get_trials()
    assert trials[0].state == TrialState.FAIL and trials[0].user_attrs[INTERRUPTED]
    assert trials[1].state == TrialState.COMPLETE and trials[1].value == 0.75
    assert trials[2].state == TrialState.WAITING and trials[2].user_attrs[REQUEUED_FROM] == orphan.number
    assert study.ask(dists).params == orphan.params
    assert [e.row.score for e in [EvaluatedIndex.load([study]).get("k|cpu")]] == [0.75]


def test_recover_drops_a_half_proposed_trial_and_keeps_a_queued_seed(tmp_path):
    """A trial killed while being proposed is not queued (its parameters may be partial); a queued
    (layout, seed) job killed mid-evaluation is queued again with its seed."""
    study, _ = _study(tmp_path)
    dists = SearchSpace(depth=2).distributions()
    study.ask(dists)  # never reached evaluation
    study.enqueue_trial(SearchSpace(depth=2).params("AM"), user_attrs={SEED: 7})
    job = study.ask(dists)
    job.set_user_attr(PROPOSED, True)
    assert recover(study, ("score",), all_running_are_stale=True) == 1
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL, TrialState.WAITING]
    assert all(t.user_attrs[INTERRUPTED] for t in trials[:2])
    assert trials[2].user_attrs[SEED] == 7 and trials[2].user_attrs[REQUEUED_FROM] == job.number
    assert study.ask(dists).params == SearchSpace(depth=2).params("AM")


def test_shared_storage_only_recovers_heartbeat_stale_trials(tmp_path):
    study, _ = _study(tmp_path)
    study.ask(SearchSpace(depth=2).distributions())
    assert recover(study, ("score",), all_running_are_stale=False) == 0  # another process may own it
    assert study.trials[0].state == TrialState.RUNNING


def test_a_heartbeat_stale_trial_of_a_dead_driver_is_queued_again_once(tmp_path):
    # Optuna fails a trial whose heartbeat stopped; a finished trial takes no more attributes, so its
    # re-queue is marked on the queued trial (REQUEUED_FROM), and a second recovery queues nothing more.
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'hb.db'}", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage, study_name="r/stage0", direction="maximize")
    study.enqueue_trial(SearchSpace(depth=2).params("MA"), user_attrs={SEED: 4})
    dead = study.ask(SearchSpace(depth=2).distributions())
    storage.record_heartbeat(dead._trial_id)
    time.sleep(2.5)
    assert recover(study, ("score",), all_running_are_stale=False) == 1
    assert recover(study, ("score",), all_running_are_stale=False) == 0
    trials = study.get_trials(deepcopy=False)
    assert trials[0].state == TrialState.FAIL and len(trials) == 2
    assert trials[1].state == TrialState.WAITING and trials[1].user_attrs[REQUEUED_FROM] == dead.number
    assert trials[1].user_attrs[SEED] == 4 and study.ask(SearchSpace(depth=2).distributions()).params == \
        SearchSpace(depth=2).params("MA")


def test_heartbeat_keeps_a_tracked_trial_alive(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'hb.db'}", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage, study_name="hb")
    trial = study.ask(SearchSpace(depth=2).distributions())
    with Heartbeat(storage, interval=0.1) as hb:
        hb.track(trial._trial_id)
        time.sleep(1.5)
        assert trial._trial_id not in storage._get_stale_trial_ids(study._study_id)
        hb.untrack(trial._trial_id)
        # Poll rather than sleep a fixed time: on a loaded machine the last beat can land late.
        deadline = time.monotonic() + 20
        while trial._trial_id not in storage._get_stale_trial_ids(study._study_id):
            assert time.monotonic() < deadline, "an untracked trial never went stale"
            time.sleep(0.2)
