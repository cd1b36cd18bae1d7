"""Heartbeats of in-flight trials, so another process can tell a live evaluation from a dead one."""

from __future__ import annotations

import logging
import os
import threading

import optuna

__all__ = ["HEARTBEAT_S", "GRACE_S", "Heartbeat"]

_log = logging.getLogger("composer.search")

HEARTBEAT_S = int(os.environ.get("COMPOSER_HEARTBEAT_S", 30))
"""Seconds between heartbeats of a running trial (``COMPOSER_HEARTBEAT_S`` overrides it, for tests)."""
GRACE_S = int(os.environ.get("COMPOSER_GRACE_S", 120))
"""A RUNNING trial without a heartbeat for this long belongs to a dead process (shared storages;
``COMPOSER_GRACE_S`` overrides it: a test of a killed driver waits seconds, not minutes)."""


class Heartbeat:
    """Records a heartbeat for the in-flight trials so another process can tell they are alive.

    A trial is tracked from the moment its driver takes it (``search.shared_claims``) and beats until it is untracked
    or found finished: a trial told as infeasible or known while proposing needs no untrack of its own."""

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
                    if self._storage.get_trial(trial_id).state.is_finished():
                        self.untrack(trial_id)
                        continue
                    self._storage.record_heartbeat(trial_id)
                    self.failures = 0
                except Exception as e:  # a finished trial or a busy database: try again later, but say so
                    self.failures += 1
                    _log.warning("heartbeat of trial %d failed (%d in a row): %s: %s", trial_id, self.failures,
                                 type(e).__name__, str(e).splitlines()[0] if str(e) else "")
