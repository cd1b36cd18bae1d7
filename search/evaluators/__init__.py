"""The evaluator seen by the search: ``pattern -> result`` behind a small protocol.

The search needs two things from an evaluator: the proxy ``spec`` of a layout *before* evaluating it
(its ``arch_id`` plus the protocol label is the dedup key) and the result. ``EvaluatorConfig``
is picklable so that worker processes build their own evaluator (and keep its compiled steps).

Evaluators register by kind (``register_evaluator``), like primitives and searchers: ``mad`` adapts
``composer.mad.evaluate.Evaluator`` (JAX, imported lazily); ``text`` trains a small byte-level LM on
the real-text corpus (``search.evaluators.text``); ``mix`` adds the standardised ``capacity`` and ``text``
scores (``search.evaluators.mix``); ``fake`` is a deterministic analytic score for tests
and for exercising the engine (hidden ``--evaluator fake``). A user adds one with a factory
``config -> Evaluator`` under a new name. Whatever an evaluator returns is turned into one typed
``Evaluation`` before it reaches the loop and the leaderboard.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any, Callable, Protocol

from composer.jsontypes import Record

if TYPE_CHECKING:
    from composer.jsontypes import JSONObject

__all__ = ["Evaluator", "EvaluatorConfig", "EvalOutcome", "Evaluation", "normalize_result", "dedup_key", "run_one",
           "register_evaluator", "EVALUATORS", "kind_for_protocol",
           "transient_outcome", "is_transient", "TRANSIENT_ERRORS", "DEFAULT_PROTOCOL"]

DEFAULT_PROTOCOL = "text"
"""The default protocol of every command, defined once (``search.protocols`` lists them all): the one the
default-proxy rule picks from the committed judges (``search.published.selection``,
``experiments/choose_default.py``; a test holds the two together)."""



class Evaluator(Protocol):
    """What the search calls; any object with these members plugs in.

    Optional: ``evaluate_many(pattern, seeds)`` packs seeds (``search.evaluators.packing``), and a class
    attribute ``cpu_bound = True`` opts in to two worker processes on a CPU host under ``--workers 0``
    (``search.worker_choice``): only for an evaluator a spawned process can build, i.e. registered
    when its module is imported, not from a running script."""

    protocol: str
    """Label of the protocol; part of the dedup key and of every leaderboard row."""

    def spec(self, pattern: str) -> Any:
        """The proxy ``ArchSpec`` that ``pattern`` is trained as (no training; its ``arch_id`` dedups)."""

    def __call__(self, pattern: str, seed: int | None = None) -> Any:
        """Evaluate ``pattern`` at ``seed`` (``None``: the configured seed): an ``Evaluation``, or a dict /
        object with ``to_dict`` holding at least ``score`` (``normalize_result`` makes it an ``Evaluation``)."""


@dataclasses.dataclass(frozen=True)
class Evaluation(Record):
    """One evaluation of a layout at one seed under one protocol: what every evaluator's result becomes.

    ``score`` is the search objective (higher is better); ``tasks`` its parts (task -> value);
    ``steps``/``tokens``/``wall_s``/``compile_s`` its cost; ``details`` anything the evaluator wants kept
    (stored as ``tasks_json`` in the leaderboard).
    """

    score: float
    protocol: str
    tasks: dict[str, float] = dataclasses.field(default_factory=dict)
    seed: int | None = None
    pattern: str | None = None
    arch_id: str | None = None
    status: str = "ok"
    steps: int | None = None
    tokens: int | None = None
    wall_s: float | None = None
    compile_s: float | None = None
    device: str | None = None
    details: JSONObject = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        import math

        if not isinstance(self.score, (int, float)) or isinstance(self.score, bool) or not math.isfinite(self.score):
            raise ValueError(f"evaluation score must be a finite number, got {self.score!r}")


@dataclasses.dataclass(frozen=True)
class EvaluatorConfig:
    """Picklable recipe of an evaluator (built once per process)."""

    kind: str = "mad"
    """A registered evaluator kind: ``mad``, ``text``, ``fake`` or one a user registered."""
    protocol: str = DEFAULT_PROTOCOL
    """Protocol name: a MAD protocol (``capacity``, ``cpu``, ``paper``) or one that names its own kind
    (``text``, ``mix``)."""
    seed: int = 0
    """Training/data seed of every evaluation."""
    tasks: tuple[str, ...] | None = None
    """Subset of MAD tasks (default: all six)."""
    steps_scale: float | None = None
    """Fidelity: multiply every task's training steps (``None`` = the protocol's own)."""
    space: tuple[str, ...] = ()
    """Primitives the search may propose, built in up front so no candidate triggers a recompile."""

    @property
    def label(self) -> str:
        """Protocol label stored in rows; two fidelities never share a dedup key."""
        kind = kind_for_protocol(self.protocol, self.kind)
        own = _PROTOCOL_KINDS.get(self.protocol, "mad")  # the kind the protocol is registered with
        label = self.protocol if kind == own else f"{kind}-{self.protocol}"
        if self.tasks:
            label += "[" + ",".join(self.tasks) + "]"
        if self.steps_scale is not None and self.steps_scale != 1.0:
            label += f"@steps*{self.steps_scale:g}"
        return label

    @property
    def factory(self) -> Callable[[EvaluatorConfig], Evaluator]:
        """What ``build`` calls (the evaluator's class, for the built-in kinds), found without building
        it: a driver reads its optional members (``evaluate_many``, ``cpu_bound``) without JAX."""
        kind = kind_for_protocol(self.protocol, self.kind)
        if kind not in EVALUATORS:
            raise ValueError(f"evaluator: unknown kind {kind!r}; valid: {', '.join(EVALUATORS)}")
        return _factory(kind)

    def build(self) -> Evaluator:
        return self.factory(self)


@dataclasses.dataclass
class EvalOutcome:
    """One finished evaluator call: the normalised result, or the error it raised."""

    pattern: str
    result: Evaluation | None
    error: str | None
    started_at: float
    finished_at: float
    transient: bool = False
    """The failure came from where the job ran (worker or actor died, out of memory), not from the
    layout: the loop retries it (``search.loop``, ``--max-retries``) before recording an error row."""
    pack: int = 1
    """Members of the packed program the evaluation trained in (1: alone; ``run_jobs``)."""


TRANSIENT_ERRORS = ("MemoryError", "RESOURCE_EXHAUSTED", "Out of memory", "out of memory")
"""Markers of a failure that another attempt (on another worker) may not repeat."""


def is_transient(error: str | None) -> bool:
    return bool(error) and any(m in error for m in TRANSIENT_ERRORS)


def transient_outcome(job: "str | Job", message: str) -> EvalOutcome:
    """The outcome of a job whose worker was lost (a backend's answer when a process or actor dies)."""
    pattern = job if isinstance(job, str) else job[0]
    now = time.time()
    return EvalOutcome(pattern, None, message, now, now, transient=True)


Job = tuple[str, "int | None"]
"""What a backend evaluates: ``(pattern, seed)``; seed ``None`` is the evaluator's configured seed."""


def dedup_key(evaluator: Evaluator, pattern: str, seed: int | None = None) -> str:
    """``<arch_id>|<protocol>`` at the configured seed, ``<arch_id>|<protocol>|s<seed>`` at another one:
    two evaluations with the same key are the same experiment."""
    from composer.spec import arch_id

    key = f"{arch_id(evaluator.spec(pattern))}|{evaluator.protocol}"
    base = getattr(getattr(evaluator, "config", None), "seed", None)
    return key if seed is None or seed == base else f"{key}|s{seed}"


def _takes_seed(evaluator: Evaluator) -> bool:
    import inspect

    try:
        params = inspect.signature(evaluator.__call__).parameters
    except (TypeError, ValueError):
        return True
    return "seed" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def as_job(item: "str | Job") -> Job:
    return (item, None) if isinstance(item, str) else (item[0], item[1])


def run_one(evaluator: Evaluator, pattern: "str | Job", seed: int | None = None) -> EvalOutcome:
    """Call the evaluator, turning an exception into an error outcome (KeyboardInterrupt propagates)."""
    from composer.errors import UsageError

    if not isinstance(pattern, str):
        pattern, seed = as_job(pattern)
    start = time.time()
    if seed is not None and not _takes_seed(evaluator):
        return EvalOutcome(pattern, None, f"TypeError: evaluator {type(evaluator).__name__} has no seed argument; "
                           "define __call__(self, pattern, seed=None) to be rescored on fresh seeds",
                           start, time.time())
    try:
        raw = evaluator(pattern) if seed is None else evaluator(pattern, seed=seed)
        result = normalize_result(raw, evaluator.protocol)
        return EvalOutcome(pattern, result, None, start, time.time())
    except UsageError:
        raise  # bad settings, not a bad layout
    except Exception as e:  # noqa: BLE001 - any evaluator failure becomes a leaderboard row
        error = f"{type(e).__name__}: {e}"
        return EvalOutcome(pattern, None, error, start, time.time(), transient=is_transient(error))


def _task_value(v: Any) -> float | None:
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, dict):
        for k in ("score", "accuracy", "acc"):
            if isinstance(v.get(k), (int, float)):
                return float(v[k])
    return None


def normalize_result(raw: Any, protocol: str) -> Evaluation:
    """The ``Evaluation`` of an evaluator's return value (an ``Evaluation``, a dict or an object with
    ``to_dict``, e.g. the MAD ``EvalResult``); raises ``ValueError`` when it has no usable score."""
    if isinstance(raw, Evaluation):
        return raw if raw.protocol else dataclasses.replace(raw, protocol=protocol)
    d = raw.to_dict() if hasattr(raw, "to_dict") else dict(raw)
    if d.get("score") is None:
        raise ValueError("evaluator result has no score")
    out = {k: d.get(k) for k in ("steps", "tokens", "wall_s", "compile_s", "device", "arch_id", "seed", "pattern")}
    for key in ("steps", "tokens"):  # per-task dicts (MAD EvalResult) -> totals
        if isinstance(out[key], dict):
            out[key] = d.get(f"total_{key}", sum(out[key].values()))
    tasks = {str(k): _task_value(v) for k, v in (d.get("tasks") or {}).items()}
    return Evaluation(score=float(d["score"]), protocol=d.get("protocol") or protocol, tasks=tasks,
                      details=d.get("details") or d.get("tasks") or {}, **out)


EVALUATORS: dict[str, Callable[[EvaluatorConfig], Evaluator] | str] = {}
"""Evaluator kind -> factory ``config -> Evaluator`` (or its ``"module:attribute"`` path)."""

_PROTOCOL_KINDS: dict[str, str] = {}
"""Protocol names that select their own evaluator kind (``--protocol text`` -> ``text``)."""


def register_evaluator(kind: str, factory: Callable | str | None = None, *, protocols: tuple[str, ...] = ()):
    """Register a factory ``config -> Evaluator`` under ``kind``: ``register_evaluator(kind, factory)``,
    or as a decorator ``@register_evaluator(kind)``. A factory may be a ``"module:attribute"`` string,
    imported when the kind is first built. ``protocols`` names protocols that select this kind by
    themselves (``--protocol text``).
    """
    def deco(factory):
        if kind in EVALUATORS and EVALUATORS[kind] is not factory:
            raise ValueError(f"evaluator kind {kind!r} is already registered")
        EVALUATORS[kind] = factory
        for name in protocols:
            _PROTOCOL_KINDS[name] = kind
        return factory

    return deco if factory is None else deco(factory)


def _factory(kind: str) -> Callable:
    factory = EVALUATORS[kind]
    if isinstance(factory, str):
        import importlib

        module, _, attr = factory.partition(":")
        factory = EVALUATORS[kind] = getattr(importlib.import_module(module), attr)
    return factory


def kind_for_protocol(protocol: str, kind: str) -> str:
    """The evaluator kind that runs ``protocol``: the kind it was registered with, unless ``kind`` names
    another explicitly (anything but the default ``mad``, e.g. the test evaluator ``fake``), which wins."""
    if kind != "mad":
        return kind
    return _PROTOCOL_KINDS.get(protocol, kind)


# The built-in kinds by "module:attribute": imported on first use, so this module (which the adapters
# import for the types) never imports them back, and JAX loads only when an evaluator is built.
register_evaluator("mad", "search.evaluators.mad:MadEvaluator")
register_evaluator("text", "search.evaluators.text:TextEvaluator",
                   protocols=("text", "text-lr", "text-short", "text-noconv", "text-long"))
register_evaluator("mix", "search.evaluators.mix:MixEvaluator", protocols=("mix",))
register_evaluator("fake", "search.evaluators.fake:FakeEvaluator")
