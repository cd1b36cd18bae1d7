"""Names of the trial attributes the search stores in the Optuna study (its source of truth).

Every trial carries ``status``; evaluated trials also carry ``key`` and the full leaderboard ``row``,
so the leaderboard and the dedup index are rebuilt from the storage alone.
"""

from optuna.trial import TrialState

__all__ = ["STATUS", "KEY", "ROW", "INTERRUPTED", "DUPLICATE_OF", "REASON", "REQUEUED_FROM", "REPAIRED",
           "OK", "ERROR", "DUPLICATE", "INFEASIBLE", "SETTINGS", "STAGE_WINNER", "SEED", "PROPOSED",
           "CLAIM", "DRIVER", "interrupted_numbers"]

STATUS = "status"
"""One of ``OK``, ``ERROR``, ``DUPLICATE``, ``INFEASIBLE`` (interrupted trials carry ``INTERRUPTED``)."""
KEY = "key"
"""Dedup key ``<arch_id>|<protocol>`` of the evaluated layout (``|s<seed>`` at another seed than the run's)."""
ROW = "row"
"""The leaderboard row of an evaluation (a JSON object)."""
INTERRUPTED = "interrupted"
"""Set on a trial failed because its process stopped mid-evaluation; its layout was re-queued."""
DUPLICATE_OF = "duplicate_of"
"""``<study>#<trial number>`` of the evaluation whose stored values answered a duplicate."""
REASON = "reason"
"""Why a layout was infeasible."""
REQUEUED_FROM = "requeued_from"
"""Number of the interrupted trial a queued trial repeats."""
SEED = "eval_seed"
"""Seed of a queued evaluation at another seed than the run's (fresh-seed rescoring); absent = the run's."""
PROPOSED = "proposed"
"""Set on a trial as its complete layout goes to evaluation. An interrupted trial is queued again only
when it carries this or was itself queued: one killed while being proposed (its parameters perhaps
half-written) is dropped, and the next ask proposes again what an uninterrupted run would."""
REPAIRED = "repaired"
"""Set on a layout queued as the nearest untried neighbour of a proposal that was infeasible or known."""
CLAIM = "claim"
"""Dedup key a trial is about to evaluate, with several drivers on one storage (``search.shared_claims``): the lowest
live trial claiming a key evaluates it, the others yield. Queued trials carry it from the moment they are queued."""
DRIVER = "driver"
"""``<host>:<pid>`` of the driver that claimed the trial (several drivers on one storage)."""

OK, ERROR, DUPLICATE, INFEASIBLE = "ok", "error", "duplicate", "infeasible"

SETTINGS = "composer_settings"
"""Study attribute: the resolved search settings (JSON)."""
STAGE_WINNER = "stage_winner"
"""Study attribute: the frozen winner of a finished stage (incremental methods)."""


def interrupted_numbers(trials) -> set[int]:
    """Numbers of the interrupted trials: marked ``INTERRUPTED``, queued again from (``REQUEUED_FROM``), or
    failed with no status at all. The last two are the marks a trial Optuna failed for a stopped heartbeat
    can have (a finished trial takes no more attributes): queued again if its layout was complete, else
    dropped, and then its layout is free and its number does not count towards the next seed."""
    out = {t.number for t in trials if t.user_attrs.get(INTERRUPTED)
           or (t.state == TrialState.FAIL and STATUS not in t.user_attrs)}
    return out | {t.user_attrs[REQUEUED_FROM] for t in trials if REQUEUED_FROM in t.user_attrs}
