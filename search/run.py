"""End to end: search the stages, aggregate, check the winner and the Llama baseline, extrapolate.

Writes ``runs/<name>/``: ``study.db`` (the Optuna storage, unless ``--storage``), ``leaderboard.parquet``
(after every evaluation), ``winner_<scale>.json`` and ``summary.json``. Everything is rebuilt from the
storage, so an interrupted run resumes with ``--resume`` and loses nothing (docs/search.md).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import optuna

from composer.errors import UsageError
from search import methods
from search.backends import make_backend
from search.claims import SoloClaims
from search.dedup import EvaluatedIndex
from search.heartbeat import Heartbeat
from search.locks import run_lock
from search.loop import Engine, EngineConfig
from search.pack_choice import resolve_pack
from search.progress import SearchProgress
from search.protocols import evaluator_config
from search.results.layout_view import FILENAME as LAYOUTS_FILE
from search.results.layout_view import write_layouts
from search.results.leaderboard import FILENAME, write_leaderboard
from search.results.records import Row
from search.results.reports import Summary
from search.results.rows import RunInfo
from search.results.summary import build_summary
from search.searchers import get_searcher
from search.settings import SearchSettings, resolve
from search.shared_claims import SharedClaims
from search.stages import RunContext, choose_winner, final_phase, rescore, search_stages
from search.storage import default_url, open_storage
from search.study_attrs import SETTINGS
from search.worker_choice import resolve_workers

__all__ = ["run_search", "RunContext", "rebuild_tables"]


def _check_writable(run_dir: Path) -> None:
    """The run folder must take files before any work starts (its leaderboard, summary, study)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"run folder {run_dir} is not writable ({e.strerror}); choose another --runs-dir or "
                         "fix its permissions") from None


def _open_run(given: dict[str, Any]) -> tuple[SearchSettings, Path, Any, bool]:
    """Create the run, or continue it when the flags agree with its stored settings."""
    prelim = resolve(given, None)
    run_dir = Path(prelim.runs_dir) / prelim.run_name
    url = prelim.storage or default_url(run_dir)
    storage = open_storage(url)
    name = prelim.run_name
    exists = name in optuna.get_all_study_names(storage)
    if not exists and prelim.resume:
        raise UsageError(f"--resume: no run named {name!r} in {url}")
    stored = optuna.load_study(study_name=name, storage=storage).user_attrs.get(SETTINGS) if exists else None
    settings = dataclasses.replace(prelim, name=name)
    if stored:
        if prelim.resume:  # flags left out keep their stored values
            settings = resolve(given, stored)
        diffs = SearchSettings.from_dict(stored).differences(settings)
        if diffs:
            raise UsageError(f"run {name!r} exists with other settings ({'; '.join(diffs)}); pass --resume to "
                             "continue it with its stored settings, or --name NEW for a new run")
        if not settings.quiet:
            print(f"composer search: continuing run {name!r} from {url}", file=sys.stderr)
    settings = _validate(settings)  # before the run is stored: a refused run leaves no study behind
    meta = optuna.create_study(storage=storage, study_name=name, load_if_exists=True)
    meta.set_user_attr(SETTINGS, settings.to_dict())
    return settings, run_dir, storage, prelim.storage is None


def _validate(settings: SearchSettings) -> SearchSettings:
    """``settings`` checked (a ``UsageError`` naming the flag), with ``--pack 0`` and ``--workers 0`` resolved."""
    from composer.presets import get_scale
    from composer.spec import parse_pattern
    from scaling.extrapolate import RULES

    get_scale(settings.scale)
    parse_pattern("".join(settings.primitives), "--primitives")
    if settings.rule not in RULES:
        raise UsageError(f"--rule: must be one of {', '.join(RULES)}, got {settings.rule!r}")
    get_searcher(settings.sampler)
    from search.evaluators import EVALUATORS

    if settings.evaluator == "mad":  # a test evaluator (``fake``, a user's kind) labels any protocol
        from search.protocols import check_protocol

        check_protocol(settings.protocol)
        from composer.mad.protocol import PROTOCOLS as MAD

        if settings.tasks and settings.protocol in MAD:
            from composer.mad.evaluate import check_tasks

            check_tasks(settings.tasks, MAD[settings.protocol])
        elif settings.tasks:  # refused here, before the run is stored (evaluator_config refuses it too)
            evaluator_config(settings.protocol, tasks=settings.tasks)
    if settings.evaluator not in EVALUATORS:
        raise UsageError(f"--evaluator: unknown evaluator {settings.evaluator!r}; registered: "
                         f"{', '.join(EVALUATORS)}")
    space = methods.stage_space(settings, 0, None)  # constraint errors surface here, as usage errors
    if settings.sampler == "exhaustive" and space.n_feasible is None:
        raise UsageError(f"--sampler exhaustive: the space of {space.size} layouts is too large to enumerate")
    return dataclasses.replace(settings, pack=resolve_pack(settings, space.n_feasible),
                               workers=resolve_workers(settings))


def _install_sigterm() -> None:
    def _raise(signum, frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread (e.g. under a test runner's thread)
        pass


def run_search(given: dict[str, Any]) -> Summary:
    """Run (or resume) the search described by the CLI flags ``given``; return the summary."""
    start = time.time()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        prelim = resolve(given, None)
    except ValueError as e:
        raise UsageError(str(e)) from None
    run_dir = Path(prelim.runs_dir) / prelim.run_name
    fresh = not run_dir.exists()
    _check_writable(run_dir)
    try:
        with run_lock(run_dir):
            try:
                settings, run_dir, storage, private = _open_run(given)
            except ValueError as e:
                raise UsageError(str(e)) from None
            fresh = False  # stored: from here on the folder is the run's
            _install_sigterm()
            return _execute(settings, run_dir, storage, private, start)
    finally:
        if fresh:  # refused before anything was stored: leave no folder (study.db, .lock) behind
            shutil.rmtree(run_dir, ignore_errors=True)


def _execute(settings: SearchSettings, run_dir: Path, storage, private: bool, start: float) -> Summary:
    # The Llama check adds A and M; building them in up front spares the evaluator a recompile.
    config = evaluator_config(settings.protocol, kind=settings.evaluator, seed=settings.seed, tasks=settings.tasks,
                              steps_scale=settings.steps_scale,
                              space=tuple(dict.fromkeys(settings.primitives + ("A", "M"))))
    evaluator = config.build()
    names = [n for n in optuna.get_all_study_names(storage) if n.startswith(settings.run_name + "/")]
    index = EvaluatedIndex.load([optuna.load_study(study_name=n, storage=storage) for n in names])
    leaderboard = run_dir / FILENAME
    write_leaderboard(index.rows(), leaderboard)
    backend = make_backend(settings.backend, config, settings.workers, evaluator, address=settings.ray_address,
                           cpus_per_worker=settings.cpus_per_worker, gpus_per_worker=settings.gpus_per_worker,
                           pack=settings.pack)
    with SearchProgress(settings.budget, quiet=settings.quiet) as progress, Heartbeat(storage) as heartbeat, \
            warnings.catch_warnings():
        # We run our own ask/tell loop and heartbeat thread (search.heartbeat.Heartbeat), not Study.optimize.
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        def on_record(row: Row) -> None:
            write_leaderboard(index.rows(), leaderboard)
            write_layouts(index.rows(), run_dir / LAYOUTS_FILE)
            progress.advance(row)

        engine = Engine(EngineConfig.from_settings(settings), evaluator=evaluator, backend=backend, index=index,
                        info=RunInfo.collect(), on_record=on_record, heartbeat=heartbeat,
                        claims=SoloClaims() if private else SharedClaims(heartbeat, settings.objectives,
                                                                         settings.workers))
        ctx = RunContext(settings, run_dir, storage, engine, private)
        try:
            stages = search_stages(ctx, progress)
            final = final_phase(ctx, stages[-1].winner.pattern, progress)
            final = choose_winner(ctx, stages[-1], final)
            rescore(ctx, final.winner.pattern, progress)
        finally:
            backend.close()
    # With other drivers on a shared storage, their rows since our last evaluation belong there too.
    write_leaderboard(index.rows(), leaderboard)
    write_layouts(index.rows(), run_dir / LAYOUTS_FILE)
    summary = dataclasses.replace(
        build_summary(settings, stages, final, index.rows(), wall_s=time.time() - start),
        where={"run_dir": str(run_dir), "leaderboard": str(leaderboard), "storage": settings.storage or "(run folder)",
               "sampler_impl": get_searcher(settings.sampler).impl})
    _write_outputs(run_dir, settings, summary)
    return summary


def _write_outputs(run_dir: Path, settings: SearchSettings, summary: Summary) -> None:
    from scaling.extrapolate import extrapolate

    spec = extrapolate(summary.proxy.pattern, settings.scale, settings.rule, match=settings.match).spec
    _atomic_write(run_dir / f"winner_{settings.scale}.json", spec.to_json() + "\n")
    _atomic_write(run_dir / "summary.json", json.dumps(summary.to_dict(), indent=2, default=str) + "\n")


def _atomic_write(path: Path, text: str) -> None:
    from composer.atomic import write_text

    write_text(path, text)


def rebuild_tables(run_dir: Path) -> int:
    """Rewrite ``leaderboard.parquet`` and ``layouts.parquet`` of the run in ``run_dir`` from its study
    (``study.db``; every trial is a row there, the parquet files are only their copy). Returns the rows."""
    db = Path(run_dir) / "study.db"
    if not db.exists():
        raise UsageError(f"--rebuild: {run_dir} has no study.db to rebuild from (a run on another storage "
                         "rewrites its tables when resumed: composer search --name NAME --storage URL --resume)")
    storage = open_storage(default_url(Path(run_dir)))
    names = optuna.get_all_study_names(storage)
    runs = {n for n in names if "/" not in n}
    if len(runs) != 1:
        raise UsageError(f"--rebuild: {db} holds {len(runs)} runs ({', '.join(sorted(runs)) or 'none'}); expected one")
    name = runs.pop()
    index = EvaluatedIndex.load([optuna.load_study(study_name=n, storage=storage) for n in names
                                 if n.startswith(name + "/")])
    rows = index.rows()
    write_leaderboard(rows, Path(run_dir) / FILENAME)
    write_layouts(rows, Path(run_dir) / LAYOUTS_FILE)
    return len(rows)
