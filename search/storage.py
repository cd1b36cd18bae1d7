"""The Optuna RDB storage of a run: its URL, opening it safely, study names (docs/method.md §5).

One run ``<name>`` owns the studies ``<name>/stage<i>`` (one per search stage) and ``<name>/final``
(the aggregated layout and the Llama baseline); every evaluation's row lives in its trial, so the
dedup index (``search.dedup``) and the leaderboard are rebuilt from storage alone.
"""

from __future__ import annotations

import random
import time
import warnings
from pathlib import Path
from typing import Any

import optuna

from search.heartbeat import GRACE_S, HEARTBEAT_S

__all__ = ["default_url", "open_storage", "check_storage_url", "study_name", "set_attr"]

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
