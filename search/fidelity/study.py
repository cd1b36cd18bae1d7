"""Run a fidelity study: ground-truth training runs and proxy scores, durable and resumable.

Files under ``runs/<name>/``: ``settings.json`` (the shared recipe), ``fidelity.parquet`` (one row per
training run), ``proxy.parquet`` (one row per proxy evaluation), ``train/<layout>-s<seed>-t<tokens>/``
(each run's folder with Orbax checkpoints, so a killed run continues mid-way), and the report
(``fidelity.md``, ``summary.json``, ``fidelity.png``), rewritten after every finished run.

Order of work: the first seed of every layout, then the proxy scores still missing, then the other
seeds, then the long-budget runs; a study stopped part-way already ranks every layout once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from composer.errors import UsageError
from search.fidelity.plan import FidelitySettings, Job
from search.fidelity.table import PROXY_COLUMNS, PROXY_FILE, TRUTH_COLUMNS, TRUTH_FILE, read_table, write_table

__all__ = ["StudyRequest", "run_study", "SETTINGS_FILE"]

SETTINGS_FILE = "settings.json"
PLAN_FILE = "plan.json"
DEFAULT_PROXY = "capacity"
"""The proxy protocol a new study judges: the search's default."""
"""The last invocation's layouts, winner and proxy protocol (what ``--report-only`` reports on)."""


@dataclasses.dataclass
class StudyRequest:
    """One invocation of ``composer fidelity``."""

    run_dir: Path
    settings: FidelitySettings
    jobs: list[Job]
    layouts: list[str]
    proxy_seeds: tuple[int, ...] = (0, 1, 2)
    proxy_protocol: str | None = None
    """The proxy protocol judged; ``None``: the study's last one (``plan.json``), else the one protocol of
    the given ``proxy_rows``, else ``capacity``."""
    proxy_rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """Imported proxy rows (from a search run or a file), merged into ``proxy.parquet``."""
    compute_proxy: bool = True
    winner: str | None = None
    """Layout called the search's winner (compared with the Llama layout in the report)."""
    report_only: bool = False
    progress: bool = True
    max_runs: int | None = None
    """Stop after this many new training runs (a study is resumed by running it again)."""


def _settings(run_dir: Path, given: FidelitySettings) -> FidelitySettings:
    path = run_dir / SETTINGS_FILE
    if path.exists():
        stored = FidelitySettings.from_dict(json.loads(path.read_text()))
        diffs = given.differences(stored)
        if diffs:
            raise UsageError(f"study {run_dir.name!r} was run with other settings ({'; '.join(diffs)}); use the "
                             "same settings to extend it, or --name NEW for a new study")
        return stored
    from composer.checkpoint import write_json

    write_json(path, given.to_dict())
    return given


def _stored_plan(req: StudyRequest) -> dict[str, Any]:
    """The layouts, winner and proxy protocol of the study's last invocation (``{}`` for a new study)."""
    path = req.run_dir / PLAN_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def _remember_plan(req: StudyRequest) -> None:
    from composer.atomic import write_json

    write_json(req.run_dir / PLAN_FILE, {"layouts": req.layouts, "winner": req.winner,
                                         "proxy_protocol": req.proxy_protocol})


def _say(req: StudyRequest, text: str) -> None:
    if req.progress:
        print(f"composer fidelity: {text}", file=sys.stderr, flush=True)


def _validation(settings: FidelitySettings, source) -> tuple[int, int]:
    """``(eval_batches, windows scored)``: ``val_windows`` rounded up to whole batches, capped at the split."""
    total = (source.num_tokens("validation") - 1) // settings.seq_len
    want = total if settings.val_windows == 0 else min(settings.val_windows, total)
    batches = math.ceil(want / settings.batch_size)
    return batches, min(batches * settings.batch_size, total)


def _train_one(job: Job, req: StudyRequest, source) -> dict[str, Any]:
    """Train ``job`` (resuming its folder if a checkpoint is there) and return its row."""
    import jax

    from composer.train import DivergenceError, train
    from scaling.counting import non_embedding_params, total_params
    from scaling.extrapolate import extrapolate

    s = req.settings
    ext = extrapolate(job.layout, s.scale, s.rule)
    out = req.run_dir / "train" / job.folder
    config = s.train_config(job.tokens, seed=job.seed, out_dir=str(out))
    eval_batches, n_val = _validation(s, source)
    config = config.replace(eval_batches=eval_batches)
    row = {"key": job.key, "layout": job.layout, "n_attention": job.layout.count("A"), "seed": job.seed,
           "tokens": config.steps * config.tokens_per_step, "steps": config.steps, "scale": s.scale,
           "rule": ext.rule, "target_pattern": ext.spec.pattern, "arch_id": _arch_id(ext.spec),
           "params": total_params(ext.spec), "non_embedding_params": non_embedding_params(ext.spec),
           "device": f"{jax.default_backend()}:{jax.devices()[0].device_kind}"}
    t0 = time.perf_counter()
    try:
        result = train(ext.spec, source, config, resume=True, progress=req.progress)
    except DivergenceError as e:
        return {**row, "status": "diverged", "error": str(e), "wall_s": time.perf_counter() - t0,
                "finished_at": _now()}
    return {**row, "val_loss": result.eval_loss, "val_loss_se": result.eval_loss_se,
            "val_bpb": result.eval_loss / math.log(2), "val_accuracy": result.eval_accuracy,
            "val_tokens": n_val * s.seq_len, "train_loss": result.final_train_loss,
            "wall_s": time.perf_counter() - t0, "tokens_per_s": result.tokens_per_second,
            "compile_s": result.compile_seconds, "status": "ok", "error": None, "finished_at": _now()}


def _arch_id(spec) -> str:
    from composer.spec import arch_id

    return arch_id(spec)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class _Tables:
    """The two parquet tables held in memory and rewritten atomically on every change."""

    def __init__(self, run_dir: Path):
        self.truth_path, self.proxy_path = run_dir / TRUTH_FILE, run_dir / PROXY_FILE
        self.truth = read_table(self.truth_path, TRUTH_COLUMNS).to_dict("records")
        self.proxy = read_table(self.proxy_path, PROXY_COLUMNS).to_dict("records")

    def done(self) -> set[str]:
        return {r["key"] for r in self.truth if r.get("status") in ("ok", "diverged")}

    def add_truth(self, row: dict[str, Any]) -> None:
        self.truth = [r for r in self.truth if r["key"] != row["key"]] + [row]
        write_table(self.truth, self.truth_path, TRUTH_COLUMNS)

    def add_proxy(self, rows: list[dict[str, Any]]) -> int:
        have = {_proxy_key(r) for r in self.proxy}
        new = [r for r in rows if _proxy_key(r) not in have]
        if new:
            self.proxy += new
            write_table(self.proxy, self.proxy_path, PROXY_COLUMNS)
        return len(new)

    def proxy_seeds_of(self, layout: str, protocol: str) -> set[int]:
        return {int(r["seed"]) for r in self.proxy if r["layout"] == layout and r.get("protocol") == protocol}


def _proxy_key(row: dict[str, Any]) -> tuple[str, int, str]:
    """A proxy evaluation is one (layout, seed, protocol): one study can hold several proxies."""
    return row["layout"], int(row["seed"]), str(row.get("protocol"))


def _eta(done_walls: list[float], remaining: int) -> str:
    if not done_walls or not remaining:
        return "-"
    return str(dt.timedelta(seconds=round(sum(done_walls) / len(done_walls) * remaining)))


def _write_report(req: StudyRequest, tables: _Tables) -> None:
    from search.fidelity.report import write_report

    write_report(req.run_dir, tables.truth, tables.proxy, settings=req.settings, winner=req.winner,
                 proxy_protocol=req.proxy_protocol,
                 layouts=list(dict.fromkeys(req.layouts + [j.layout for j in req.jobs])))


def _compute_missing_proxy(req: StudyRequest, tables: _Tables, cache: dict) -> None:
    from search.fidelity.proxy import compute_rows

    if not req.compute_proxy:
        return
    for layout in req.layouts:
        missing = [s for s in req.proxy_seeds if s not in tables.proxy_seeds_of(layout, req.proxy_protocol)]
        if missing:
            rows = compute_rows(layout, missing, req.proxy_protocol, cache, progress=lambda t: _say(req, t))
            tables.add_proxy(rows)
            _write_report(req, tables)


def run_study(req: StudyRequest) -> dict[str, Any]:
    """Run (or resume) the study and write its report; returns the summary."""
    from search.locks import run_lock

    if req.report_only:  # reads the tables and rewrites the report atomically: safe beside a running study
        if not (req.run_dir / SETTINGS_FILE).exists():
            raise UsageError(f"--report-only: no fidelity study at {req.run_dir}")
        req.settings = FidelitySettings.from_dict(json.loads((req.run_dir / SETTINGS_FILE).read_text()))
        stored = _stored_plan(req)
        req.winner = req.winner or stored.get("winner")
        req.layouts = req.layouts or stored.get("layouts", [])
        req.proxy_protocol = req.proxy_protocol or stored.get("proxy_protocol", DEFAULT_PROXY)
        _write_report(req, _Tables(req.run_dir))
    else:
        req.run_dir.mkdir(parents=True, exist_ok=True)
        with run_lock(req.run_dir, "composer fidelity"):
            req.settings = _settings(req.run_dir, req.settings)
            if req.proxy_protocol is None:
                given = {str(r.get("protocol")) for r in req.proxy_rows}  # scores the user handed in
                req.proxy_protocol = (_stored_plan(req).get("proxy_protocol")
                                      or (given.pop() if len(given) == 1 else DEFAULT_PROXY))
            _remember_plan(req)
            tables = _Tables(req.run_dir)
            tables.add_proxy(req.proxy_rows)
            _run_jobs(req, tables)
            _write_report(req, tables)
    return json.loads((req.run_dir / "summary.json").read_text())


def _run_jobs(req: StudyRequest, tables: _Tables) -> None:
    from composer.data import CorpusSource

    source = CorpusSource(req.settings.corpus)
    first_seed = min((j.seed for j in req.jobs), default=0)
    todo = [j for j in req.jobs if j.key not in tables.done()]
    prefix = {j for j in req.jobs[:len(req.layouts)] if j.seed == first_seed}
    first = [j for j in todo if j in prefix]
    rest = [j for j in todo if j not in prefix]
    walls: list[float] = []
    cache: dict = {}
    started = 0
    for phase in ("first", "proxy", "rest"):
        if phase == "proxy":
            _compute_missing_proxy(req, tables, cache)
            continue
        for job in first if phase == "first" else rest:
            if req.max_runs is not None and started >= req.max_runs:
                _say(req, f"stopping after {started} run(s) (--max-runs); run the same command to continue")
                return
            left = len(first) + len(rest) - started
            _say(req, f"[{started + 1}/{len(first) + len(rest)}] training {job.layout} seed {job.seed} "
                      f"({job.tokens:,} tokens) at {req.settings.scale}; study ETA {_eta(walls, left)}")
            row = _train_one(job, req, source)
            started += 1
            walls.append(row["wall_s"])
            tables.add_truth(row)
            _write_report(req, tables)
