"""Evaluate on Ray actors (``--backend ray``); Ray is imported only here (docs/distributed.md).

Ray runs evaluations only. Unlike Ray Tune with ``OptunaSearch``, the study stays in the run's Optuna
storage and the proposals come from the same loop as local runs, so a Ray run resumes like a local
one and gives the same results (docs/method.md §6: Tune restores that swap the searcher, studies kept in
memory). The scheduling is Ray's own: ``ray.util.ActorPool`` hands each batch's jobs to idle actors and
returns the outcomes in order; each actor reserves ``--cpus-per-worker`` CPUs and ``--gpus-per-worker``
GPUs, so Ray places it on a node that has them and makes exactly its GPUs visible to it.

``ray.init`` joins the cluster at ``--ray-address`` (else ``RAY_ADDRESS``), or starts a local one bound
to 127.0.0.1 with the dashboard off. Workers' output reaches the driver (``log_to_driver``). An actor
that dies mid-evaluation (killed, its node lost, out of memory) gives a transient outcome for its job and
is replaced; the engine's retry (``--max-retries``) then runs the job again on a live actor, and only
that attempt is recorded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import socket

from composer.errors import UsageError
from search.evaluators import EvalOutcome, EvaluatorConfig, run_one, transient_outcome

__all__ = ["RayBackend", "LOOPBACK_HOSTS", "LOCAL_ONLY_ENV"]

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray 2.x on Linux replaces a loopback address by the machine's network address (so that other machines
can join) unless this is ``0``; with ``0`` a node started by ``ray start --head --node-ip-address
127.0.0.1`` (and the local cluster of ``ray.init``) listens on 127.0.0.1 only."""


class _EvalActor:
    """One evaluation worker: builds its evaluator once and keeps it (and its compiled steps)."""

    def __init__(self, config: EvaluatorConfig):
        import ray

        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        self._evaluator = config.build()
        node = ray.get_runtime_context().get_node_id()
        self._where = f"ray node {ray.util.get_node_ip_address()} {node[:12]} pid {os.getpid()}"

    def evaluate(self, job) -> EvalOutcome:
        """``run_one``, with where it ran (Ray node address and id, worker pid) appended to ``device``."""
        out = run_one(self._evaluator, job)
        if out.result is not None:
            out.result = dataclasses.replace(out.result, device=f"{out.result.device or 'unknown'} @ {self._where}")
        return out


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``host:port`` or ``[v6]:port`` address; ``None`` for ``ray://``, ``auto``, ..."""
    if "://" in address or ":" not in address:
        return None
    host, _, port = address.rpartition(":")
    return (host.strip("[]"), int(port)) if port.isdigit() else None


def _check_reachable(address: str) -> None:
    """A ``host:port`` that nobody answers at is a usage error now, not a connection retried for minutes."""
    hp = _host_port(address)
    if hp is None:
        return
    try:
        socket.create_connection(hp, timeout=5).close()
    except OSError as e:
        raise UsageError(f"--ray-address: no Ray cluster answers at {address} ({e.strerror or e}); start one "
                         "with `ray start --head` (docs/distributed.md) or leave out --ray-address and "
                         "RAY_ADDRESS to start a local one") from None


@contextlib.contextmanager
def _loopback_mode(on: bool):
    """Keep 127.0.0.1 as 127.0.0.1 while Ray starts or joins (see ``LOCAL_ONLY_ENV``), unless the user
    set ``LOCAL_ONLY_ENV`` themselves."""
    if not on or LOCAL_ONLY_ENV in os.environ:
        yield
        return
    from ray._private import ray_constants

    old = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    os.environ[LOCAL_ONLY_ENV] = "0"  # the processes ray.init starts inherit it
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = old
        os.environ.pop(LOCAL_ONLY_ENV, None)


def _connect(ray, address: str | None, workers: int, cpus_per_worker: float) -> None:
    """Join the cluster at ``address`` (or ``RAY_ADDRESS``), else start a local one on 127.0.0.1."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address in (None, "local"):
        with _loopback_mode(True):
            ray.init(address="local", num_cpus=max(1, math.ceil(workers * cpus_per_worker)),
                     include_dashboard=False, log_to_driver=True)
        return
    _check_reachable(address)
    hp = _host_port(address)
    try:
        with _loopback_mode(hp is not None and hp[0] in LOOPBACK_HOSTS):
            ray.init(address=address, log_to_driver=True)
    except (ConnectionError, RuntimeError, ray.exceptions.AuthenticationError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UsageError(f"--ray-address: could not join the Ray cluster at {address} ({first}); check that "
                         f"`ray status --address {address}` answers (with RAY_AUTH_MODE=token if the cluster "
                         "uses token authentication)") from None


def _fmt(x: float) -> str:
    return f"{x:g}"


class RayBackend:
    """``workers`` Ray actors in a ``ray.util.ActorPool``, each keeping its own evaluator."""

    def __init__(self, config: EvaluatorConfig, workers: int, *, address: str | None = None,
                 cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0):
        import ray
        from ray.util import ActorPool

        self.workers = workers

        self._ray, self._config, self._pool = ray, config, None
        self._need = {"CPU": float(cpus_per_worker)}
        if gpus_per_worker:
            self._need["GPU"] = float(gpus_per_worker)
        self._owns = not ray.is_initialized()
        if self._owns:
            _connect(ray, address, workers, cpus_per_worker)
        try:
            fit = self._room()
            if fit == 0:
                raise UsageError(self._no_room_message())
            if fit < workers:
                log.warning("the Ray cluster has room for %d workers of %s, not %d: running %d", fit,
                            self._need_text(), workers, fit)
            self._actor = ray.remote(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker)(_EvalActor)
            self._actors = [self._actor.remote(config) for _ in range(min(workers, fit))]
            self._live = len(self._actors)
            self._pool = ActorPool(list(self._actors))
        except BaseException:
            self.close()
            raise

    def _need_text(self) -> str:
        return " and ".join(f"{_fmt(v)} {k}" for k, v in self._need.items())

    def _room(self) -> int:
        """How many workers the cluster's live nodes hold at once (each worker on one node)."""
        total = 0
        for node in self._ray.nodes():
            if node.get("Alive"):
                have = node.get("Resources", {})
                total += min(int(have.get(k, 0.0) // v) for k, v in self._need.items())
        return total

    def _no_room_message(self) -> str:
        res = self._ray.cluster_resources()
        has = ", ".join(f"{_fmt(res.get(k, 0.0))} {k}" for k in self._need)
        fix = ("lower --gpus-per-worker (0 runs on CPUs) or add GPU nodes" if "GPU" in self._need
               and not any(n.get("Resources", {}).get("GPU") for n in self._ray.nodes() if n.get("Alive"))
               else "lower --cpus-per-worker/--gpus-per-worker or add bigger nodes")
        return (f"--cpus-per-worker/--gpus-per-worker: no node of the Ray cluster has {self._need_text()} for one "
                f"worker (the cluster has {has}); {fix}")

    def run(self, jobs: list) -> list[EvalOutcome]:
        """Outcomes in the order of ``jobs``; a job whose actor died comes back transient and the actor is
        replaced, so the engine's retry runs the job again on a live actor."""
        from ray.exceptions import ActorDiedError, NodeDiedError, ObjectLostError, RayActorError, WorkerCrashedError

        for job in jobs:
            self._pool.submit(lambda actor, j: actor.evaluate.remote(j), job)
        out = []
        for job in jobs:
            try:
                out.append(self._pool.get_next())
            except (RayActorError, WorkerCrashedError, NodeDiedError, ObjectLostError) as e:
                if getattr(e, "actor_init_failed", False):  # the node's setup, not the layout nor chance
                    cause = [line.strip() for line in str(e).splitlines() if line.strip()][-1]
                    raise UsageError(f"--backend ray: a Ray worker could not build its evaluator ({cause}); every "
                                     "node needs this project and its dependencies installed") from None
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                out.append(transient_outcome(job, f"WorkerLost: a Ray actor died ({type(e).__name__}: {first})"))
                if isinstance(e, ActorDiedError):  # the pool dropped it
                    self._live -= 1
                    self._replace()
        return out

    def _replace(self) -> None:
        """A new actor for one that died, where the live nodes still have room for it."""
        live = self._live
        if self._room() > live:
            actor = self._actor.remote(self._config)
            self._actors.append(actor)
            self._live += 1
            self._pool.push(actor)
        elif live == 0:
            raise RuntimeError(f"every Ray worker died and no live node has room for another ({self._need_text()})")
        else:
            log.warning("a Ray worker died and no live node has room for another: going on with %d", live)

    def close(self) -> None:
        for actor in getattr(self, "_actors", []):
            with contextlib.suppress(Exception):
                self._ray.kill(actor)
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
