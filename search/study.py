"""Durable studies: Optuna RDB storage as the source of truth (docs/method.md §5).

One run ``<name>`` owns the studies ``<name>/stage<i>`` (one per search stage) and ``<name>/final``
(the aggregated layout and the Llama baseline). Every evaluation's row lives in its trial, so the
dedup index and the leaderboard are rebuilt from storage. On start, a trial left RUNNING by a killed
process is finished from its stored row if the evaluation had completed, else failed (``interrupted``)
and its layout queued again, so the resumed run evaluates the same layouts in the same order.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from search.budget import is_evaluation
from search.locks import run_lock
from search.study_attrs import CLAIM, INTERRUPTED, KEY, PROPOSED, REPAIRED, REQUEUED_FROM, ROW, SEED, STATUS

__all__ = ["HEARTBEAT_S", "GRACE_S", "default_url", "open_storage", "check_storage_url", "run_lock", "study_name",
           "recover", "requeue", "set_attr", "Evaluated", "EvaluatedIndex", "Heartbeat"]

_log = logging.getLogger("composer.search")

HEARTBEAT_S = 30
"""Seconds between heartbeats of a running trial."""
GRACE_S = 120
"""A RUNNING trial without a heartbeat for this long belongs to a dead process (shared storages)."""
_OPEN_ATTEMPTS = 5
"""Tries to open a database whose tables another driver is creating at the same moment."""


def default_url(run_dir: Path) -> str:
    return f"sqlite:///{Path(run_dir).resolve() / 'study.db'}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL with synchronous=NORMAL survives a killed process (only a power cut can drop the last commits)
    # and makes each write about 3x cheaper than the default rollback journal with a full sync.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


_EXAMPLE_URLS = "sqlite:///runs/NAME/study.db or postgresql+psycopg2://USER:PASSWORD@127.0.0.1:5432/DB"


def check_storage_url(url: str) -> None:
    """Refuse, before any work, a URL that is not a database URL or whose driver is not installed."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from composer.errors import UsageError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(f"--storage: {url!r} is not a database URL; write e.g. {_EXAMPLE_URLS}") from None
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise UsageError(f"--storage: unknown database kind {parsed.drivername!r}; write e.g. "
                         f"{_EXAMPLE_URLS}") from None
    try:
        dialect.import_dbapi()
    except ImportError as e:
        raise UsageError(f"--storage: the {parsed.get_backend_name()} driver {parsed.get_driver_name()!r} is not "
                         f"installed ({e.name} missing); pip install 'composer-hybrid[postgres]' for PostgreSQL, or "
                         "name an installed driver in the URL") from None


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats (for stale-trial detection on shared storages).

    Raises ``UsageError`` for a malformed URL, a missing driver or a database that cannot be reached.
    """
    from sqlalchemy import event
    from sqlalchemy.exc import DBAPIError, OperationalError

    from composer.errors import UsageError

    check_storage_url(url)
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 60}  # the heartbeat thread and the driver share one file
    else:
        kwargs["connect_args"] = {"connect_timeout": 10}  # fail fast on an unreachable server
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for attempt in range(_OPEN_ATTEMPTS):
            try:
                storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S,
                                                     grace_period=GRACE_S)
                break
            except DBAPIError as e:
                # Drivers started together on an empty database race to create Optuna's tables: the loser
                # sees them half made ("already exists") and tries again. An unreachable server fails at once.
                if not isinstance(e, OperationalError) and attempt + 1 < _OPEN_ATTEMPTS:
                    time.sleep(0.5 + random.random())
                    continue
                reason = str(e.orig).strip().splitlines()[0] if e.orig else type(e).__name__
                raise UsageError(f"--storage: cannot open the database ({reason}); start the server or fix the "
                                 "URL, host, port and credentials") from None
    if url.startswith("sqlite"):
        event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()  # connections opened before the listener get the pragmas too
    return storage


def study_name(run: str, part: str) -> str:
    return f"{run}/{part}"


def set_attr(study: optuna.Study, trial: optuna.trial.FrozenTrial, key: str, value: Any) -> None:
    # Optuna has no public setter for a trial known only by its FrozenTrial; the storage call is stable.
    study._storage.set_trial_user_attr(trial._trial_id, key, value)


def requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
    """Mark ``trial`` interrupted (FAIL) and queue its layout (and evaluation seed) again.

    Only a layout that was complete is queued: a queued trial's fixed parameters, or a proposal that
    reached evaluation (``PROPOSED``). Returns whether anything was queued."""
    set_attr(study, trial, INTERRUPTED, True)
    if trial.state == TrialState.RUNNING:
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
    params = trial.system_attrs.get("fixed_params")  # Optuna's record of an enqueued trial's layout
    if params is None and trial.user_attrs.get(PROPOSED):
        params = trial.params
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
                row = t.user_attrs[ROW]
                ok = row["status"] == "ok"
                study.tell(t.number, objective_values(row, objectives) if ok else None,
                           state=TrialState.COMPLETE if ok else TrialState.FAIL)
            continue
        requeued += requeue(study, t)
    return requeued


@dataclasses.dataclass(frozen=True)
class Evaluated:
    """One stored evaluation, found by its dedup key."""

    key: str
    study: str
    number: int
    row: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.row.get("status") == "ok"


class EvaluatedIndex:
    """Every evaluation of the run by dedup key (``<arch_id>|<protocol>``), across its studies."""

    def __init__(self):
        self._by_key: dict[str, Evaluated] = {}

    @classmethod
    def load(cls, studies: list[optuna.Study]) -> "EvaluatedIndex":
        index = cls()
        for study in studies:
            for t in study.get_trials(deepcopy=False):
                if is_evaluation(t.user_attrs):
                    index.add(Evaluated(t.user_attrs[KEY], study.study_name, t.number, t.user_attrs[ROW]))
        return index

    def add(self, entry: Evaluated) -> None:
        self._by_key.setdefault(entry.key, entry)

    def get(self, key: str) -> Evaluated | None:
        return self._by_key.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self._by_key

    def __len__(self) -> int:
        return len(self._by_key)

    def rows(self) -> list[dict[str, Any]]:
        # eval_index is unique for one driver; drivers sharing a storage number their own rows, so ties
        # are broken by where the row is stored.
        return sorted((e.row for e in self._by_key.values()),
                      key=lambda r: (r["eval_index"], r.get("study") or "", r.get("trial_number") or 0))


class Heartbeat:
    """Records a heartbeat for the in-flight trials so another process can tell they are alive."""

    def __init__(self, storage: optuna.storages.RDBStorage, interval: float = HEARTBEAT_S):
        self._storage, self._interval = storage, interval
        self._ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="composer-heartbeat")
        self.failures = 0
        """Consecutive failed heartbeats (logged as warnings on the ``composer.search`` logger)."""

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def track(self, trial_id: int) -> None:
        with self._lock:
            self._ids.add(trial_id)
        self._storage.record_heartbeat(trial_id)

    def untrack(self, trial_id: int) -> None:
        with self._lock:
            self._ids.discard(trial_id)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                ids = list(self._ids)
            for trial_id in ids:
                try:
                    self._storage.record_heartbeat(trial_id)
                    self.failures = 0
                except Exception as e:  # a finished trial or a busy database: try again later, but say so
                    self.failures += 1
                    _log.warning("heartbeat of trial %d failed (%d in a row): %s: %s", trial_id, self.failures,
                                 type(e).__name__, str(e).splitlines()[0] if str(e) else "")
