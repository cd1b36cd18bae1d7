"""The claim protocol of drivers sharing a storage (search.claims), on one in-memory study."""

import threading
import time

import optuna
from optuna.trial import TrialState

from search.claims import GO, KNOWN, OVER, YIELD
from search.dedup import EvaluatedIndex
from search.shared_claims import SharedClaims
from search.study_attrs import CLAIM, DRIVER, DUPLICATE, INTERRUPTED, KEY, ROW, STATUS, interrupted_numbers


def _study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(storage=optuna.storages.InMemoryStorage())


def _coordinator(**kw) -> SharedClaims:
    return SharedClaims(None, ("score",), **{"poll_s": 0.01, **kw})


def test_the_lowest_live_claim_evaluates_and_later_ones_yield():
    study, c = _study(), _coordinator()
    first, second = study.ask(), study.ask()
    second.set_user_attr(CLAIM, "k")  # another driver's later trial claimed it first
    assert c.claim(study, first, "k") == (GO, None)  # a lower number never yields to a higher one
    third = study.ask()
    verdict, other = c.claim(study, third, "k")
    assert verdict == YIELD and other.number == first.number
    assert c.resolve(study, third, verdict, other, EvaluatedIndex()) is None
    assert study.trials[third.number].user_attrs[STATUS] == DUPLICATE
    assert study.trials[third.number].state == TrialState.FAIL


def test_a_lower_trial_still_being_proposed_is_waited_for():
    study, c = _study(), _coordinator()
    lower, higher = study.ask(), study.ask()
    start = time.monotonic()  # before the timer starts, so the claim lands at least 0.2 s after it
    threading.Timer(0.2, lambda: lower.set_user_attr(CLAIM, "k")).start()
    verdict, other = c.claim(study, higher, "k")
    assert verdict == YIELD and other.number == lower.number and time.monotonic() - start >= 0.2


def test_a_proposal_that_never_claims_is_given_up_after_wait_s():
    study, c = _study(), _coordinator(wait_s=0.1)
    study.ask()  # its driver died while proposing
    assert c.claim(study, study.ask(), "k") == (GO, None)


def test_an_evaluated_key_is_known_and_yielded_or_interrupted_claims_do_not_count():
    study, c = _study(), _coordinator()
    done = study.ask()
    for k, v in ((KEY, "k"), (STATUS, "ok"), (ROW, {"score": 1.0, "status": "ok", "eval_index": 1})):
        done.set_user_attr(k, v)
    study.tell(done, 1.0)
    gone = study.ask()
    gone.set_user_attr(CLAIM, "j")
    gone.set_user_attr(INTERRUPTED, True)
    study.tell(gone, state=TrialState.FAIL)
    verdict, other = c.claim(study, study.ask(), "k")
    assert verdict == KNOWN and other.number == done.number
    assert c.claim(study, study.ask(), "j") == (GO, None)


def test_claims_past_the_budget_are_over_and_queued_claims_hold_their_key():
    study, c = _study(), _coordinator()
    a, b = study.ask(), study.ask()
    assert c.claim(study, a, "a", budget=2) == (GO, None)
    assert c.claim(study, b, "b", budget=2) == (GO, None)
    assert c.in_flight(study) == 2
    over = study.ask()
    assert c.claim(study, over, "c", budget=2) == (OVER, None)
    c.resolve(study, over, OVER, None, EvaluatedIndex())
    assert study.trials[over.number].user_attrs[INTERRUPTED]  # its layout stays free for a larger budget
    study.enqueue_trial({}, user_attrs={CLAIM: "q"})
    verdict, other = c.claim(study, study.ask(), "q")  # (asking pops the queued trial itself: GO)
    assert verdict == GO
    study.enqueue_trial({}, user_attrs={CLAIM: "r"})
    fresh = study._storage.create_new_trial(study._study_id)  # created after the queued one, not popping it
    verdict, other = c.claim(study, optuna.Trial(study, fresh), "r")
    assert verdict == YIELD and other.state == TrialState.WAITING


def test_settle_closes_a_trial_its_driver_never_signed_and_queues_a_popped_layout_again():
    # Killed between creating a trial and starting its heartbeat: nothing would ever fail it, so the run's
    # last barrier used to leave it RUNNING. Now it is failed after wait_s (and a queued layout queued again).
    study, c = _study(), _coordinator(wait_s=0.1)
    study.ask()  # asked, never signed
    study.enqueue_trial({"x": 1.0}, user_attrs={CLAIM: "q"})
    popped = study.ask({"x": optuna.distributions.FloatDistribution(0, 2)})  # popped, never signed
    start = time.monotonic()
    assert c.settle(study) is True
    assert time.monotonic() - start >= 0.1
    trials = study.get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    again = [t for t in trials if t.state == TrialState.WAITING]
    assert [(t.user_attrs[CLAIM], t.system_attrs["fixed_params"]) for t in again] == [("q", {"x": 1.0})]
    assert trials[popped.number].user_attrs[INTERRUPTED]


def test_settle_waits_for_a_signed_trial_and_a_closed_trial_cannot_be_taken():
    study, c = _study(), _coordinator(wait_s=0.05)
    other = _coordinator(wait_s=0.05)
    proposing = study.ask()
    assert other.take(proposing)  # another driver's live proposal, past wait_s: its heartbeat rules
    assert study.trials[proposing.number].user_attrs[DRIVER] == other.driver
    threading.Timer(0.3, lambda: study.tell(proposing, state=TrialState.FAIL)).start()
    start = time.monotonic()
    assert c.settle(study) is True and time.monotonic() - start >= 0.3
    assert c.take(proposing) is False  # closed meanwhile: the taker asks again


def test_settle_reports_a_dead_claim_it_queued_again_so_the_stage_evaluates_it():
    # Claimed, never evaluated, then failed for a stopped heartbeat: Optuna leaves no mark on it. The claimed
    # layout is queued again, and settle says so (a stage whose budget its claims filled must go on).
    study, c = _study(), _coordinator()
    dead = study.ask({"x": optuna.distributions.FloatDistribution(0, 2)})
    dead.set_user_attr(CLAIM, "k")
    study.tell(dead, state=TrialState.FAIL)  # what optuna.storages.fail_stale_trials does
    assert interrupted_numbers(study.trials) == {dead.number}  # its layout is free, its number not counted
    assert c.settle(study) is True
    (again,) = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert again.user_attrs[CLAIM] == "k" and again.system_attrs["fixed_params"] == {"x": dead.params["x"]}
    assert c.settle(study) is False  # nothing more to do
