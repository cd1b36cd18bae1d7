"""One training run of a fidelity study and the row it leaves (docs/fidelity.md, "Files").

Three kinds: a run at the study's one rate (a study without a grid), scored on validation
(``fixed_rate_row``); a learning-rate grid member, scored on the dev split only (``grid_row``); and
the truth row of a finished grid cell, the chosen member scored on validation afterwards
(``chosen_row``). ``study`` is the invocation (``truth_study.StudyRequest``: run folder, settings,
progress); every run resumes its own folder.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import time
from typing import TYPE_CHECKING, TypeVar

from search.fidelity.plan import FidelitySettings, Job
from search.fidelity.truth_rows import GridRow, TruthRow

if TYPE_CHECKING:
    from pathlib import Path

    from composer.train import TrainResult

__all__ = ["extrapolated", "validation_batches", "fixed_rate_row", "grid_folder", "grid_row", "grid_rows_packed",
           "chosen_row", "run_is_here", "rerun", "now"]

R = TypeVar("R", TruthRow, GridRow)
"""Both kinds of run share the training fields ``_fit`` fills in."""


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def validation_batches(settings: FidelitySettings, source) -> tuple[int, int]:
    """``(eval_batches, windows scored)``: ``val_windows`` rounded up to whole batches, capped at the split."""
    total = (source.num_tokens("validation") - 1) // settings.train.seq_len
    want = total if settings.val_windows == 0 else min(settings.val_windows, total)
    batches = math.ceil(want / settings.train.batch_size)
    return batches, min(batches * settings.train.batch_size, total)


def _dev_batches(s: FidelitySettings, source) -> int:
    total = (source.num_tokens("dev") - 1) // s.train.seq_len
    return math.ceil(min(s.dev_windows, total) / s.train.batch_size)


def extrapolated(layout: str, s: FidelitySettings):
    """The layout as the study trains it: extrapolated by the rule, size-matched, head tied or not."""
    from scaling.extrapolate import extrapolate

    ext = extrapolate(layout, s.scale, s.rule, match=s.match, seq_len=s.train.seq_len)
    if not s.tie_embeddings:
        ext = dataclasses.replace(ext, spec=ext.spec.replace(tie_embeddings=False))
    return ext


def _arch_id(spec) -> str:
    from composer.spec import arch_id

    return arch_id(spec)


def _base_row(job: Job, s: FidelitySettings, ext, config, lr: float | None) -> TruthRow:
    import jax

    from scaling.counting import non_embedding_params, total_params

    return TruthRow(key=job.key, layout=job.layout, n_attention=job.layout.count("A"), seed=job.seed,
                    tokens=config.steps * config.tokens_per_step, steps=config.steps, scale=s.scale,
                    rule=ext.rule, target_pattern=ext.spec.pattern, arch_id=_arch_id(ext.spec),
                    params=total_params(ext.spec), non_embedding_params=non_embedding_params(ext.spec),
                    match=s.match, param_ratio=ext.param_ratio, flops_per_token=ext.flops_per_token,
                    flops_ratio=ext.flops_ratio, tie_embeddings=s.tie_embeddings, lr=lr,
                    device=f"{jax.default_backend()}:{jax.devices()[0].device_kind}")


def _fit(spec, source, config, row: R, progress: bool) -> tuple[TrainResult | None, R]:
    """Train (resuming ``config.out_dir``); ``(result, row)``, or ``(None, row marked diverged)``."""
    from composer.train import DivergenceError, train

    t0 = time.perf_counter()
    try:
        result = train(spec, source, config, resume=True, progress=progress)
    except DivergenceError as e:
        return None, dataclasses.replace(row, status="diverged", error=str(e), wall_s=time.perf_counter() - t0,
                                         finished_at=now())
    return result, dataclasses.replace(row, train_loss=result.final_train_loss, wall_s=time.perf_counter() - t0,
                                       tokens_per_s=result.tokens_per_second, compile_s=result.compile_seconds,
                                       status="ok", error=None, finished_at=now())


def fixed_rate_row(job: Job, study, source) -> TruthRow:
    """Train ``job`` at the study's one rate (a study without a grid), scored on validation; its row."""
    s = study.settings
    ext = extrapolated(job.layout, s)
    eval_batches, n_val = validation_batches(s, source)
    config = s.train_config(job.tokens, seed=job.seed, out_dir=str(study.run_dir / "train" / job.folder))
    config = config.replace(eval_batches=eval_batches)
    result, row = _fit(ext.spec, source, config, _base_row(job, s, ext, config, config.lr), study.progress)
    if result is None:
        return row
    return dataclasses.replace(row, val_loss=result.eval_loss, val_loss_se=result.eval_loss_se,
                               val_bpb=result.eval_loss / math.log(2), val_accuracy=result.eval_accuracy,
                               val_tokens=n_val * s.train.seq_len)


def _grid_config(job: Job, study, source):
    """The recipe of ``job``'s grid runs: scored on the dev split only (each run sets its rate and folder)."""
    s = study.settings
    return s.train_config(job.tokens, seed=job.seed).replace(eval_batches=_dev_batches(s, source), eval_split="dev")


def grid_folder(job: Job, lr: float) -> str:
    from composer.lr_grid import lr_tag

    return f"{job.folder}-{lr_tag(lr)}"


def _new_grid_row(job: Job, lr: float, config, ext, pack: int, **fields) -> GridRow:
    from composer.lr_grid import lr_tag

    return GridRow(key=f"{job.key}/{lr_tag(lr)}", cell=job.key, layout=job.layout, seed=job.seed,
                   tokens=config.steps * config.tokens_per_step, lr=lr, folder=grid_folder(job, lr),
                   arch_id=_arch_id(ext.spec), pack=pack, **fields)


def grid_row(job: Job, lr: float, study, source) -> GridRow:
    """Train ``job`` at rate ``lr``, scored on the dev split only; its ``lr_grid.parquet`` row."""
    ext = extrapolated(job.layout, study.settings)
    config = _grid_config(job, study, source).replace(lr=lr, out_dir=str(study.run_dir / "train" /
                                                                          grid_folder(job, lr)))
    row = _new_grid_row(job, lr, config, ext, 1)
    result, row = _fit(ext.spec, source, config, row, study.progress)
    if result is None:
        return row
    return dataclasses.replace(row, dev_loss=result.eval_loss, dev_loss_se=result.eval_loss_se)


def grid_rows_packed(job: Job, lrs: list[float], study, source) -> list[GridRow]:
    """``grid_row`` for every rate of ``lrs`` at once: one program (``composer.packed_train``), each
    member in the folder its solo run would use (new folders only; a folder holding a checkpoint
    resumes alone through ``grid_row``). Each row's wall time is its share of the pack's."""
    from composer.errors import DivergenceError
    from composer.packed_train import train_packed

    ext = extrapolated(job.layout, study.settings)
    config = _grid_config(job, study, source)
    t0 = time.perf_counter()
    out = train_packed(ext.spec, source, config, [(job.seed, lr) for lr in lrs],
                       out_dirs=[str(study.run_dir / "train" / grid_folder(job, lr)) for lr in lrs])
    wall = (time.perf_counter() - t0) / len(lrs)
    rows = []
    for lr, result in zip(lrs, out):
        row = _new_grid_row(job, lr, config, ext, len(lrs), wall_s=wall, finished_at=now())
        if isinstance(result, DivergenceError):
            rows.append(dataclasses.replace(row, status="diverged", error=str(result)))
        else:
            rows.append(dataclasses.replace(row, dev_loss=result.eval_loss, dev_loss_se=result.eval_loss_se,
                                            train_loss=result.final_train_loss, status="ok", error=None,
                                            tokens_per_s=result.tokens_per_second, compile_s=result.compile_seconds))
    return rows


def run_is_here(job: Job, lr: float, study) -> bool:
    """Whether the grid run of ``job`` at ``lr`` has its final checkpoint in this study's folder (the
    tables travel with a committed study, the run folders do not)."""
    from composer.train import finished_run

    config = study.settings.train_config(job.tokens, seed=job.seed, lr=lr)
    return finished_run(config.replace(out_dir=str(study.run_dir / "train" / grid_folder(job, lr))))


def rerun(job: Job, lr: float, study, source, stored_dev: float) -> GridRow:
    """Train the grid run of ``job`` at ``lr`` again (same seed and recipe: the same run to float
    rounding); raises when it diverges or its dev loss is not ``stored_dev`` (the recipe changed)."""
    again = grid_row(job, lr, study, source)
    if again.status != "ok":
        raise RuntimeError(f"{again.key}: trained again, it diverged ({again.error}); "
                           f"its stored dev loss was {stored_dev:.4f}")
    if abs(again.dev_loss - stored_dev) > 1e-3 * max(abs(stored_dev), 1.0):
        raise RuntimeError(f"{again.key}: trained again, its dev loss is {again.dev_loss:.4f}, not the stored "
                           f"{stored_dev:.4f}: the recipe changed since the grid ran; "
                           "start the study under a new --name")
    return again


def validation_score(spec, s: FidelitySettings, source, config, run_dir: Path) -> tuple[float, float, float]:
    """``(loss, accuracy, loss SE)`` on the validation windows of the finished run in ``run_dir``, trained
    under ``config``: how a cell's chosen run is scored (and a grid run its study has not scored yet)."""
    from composer.train import evaluate_run

    eval_batches, _ = validation_batches(s, source)
    config = config.replace(out_dir=str(run_dir), eval_batches=eval_batches)
    return evaluate_run(spec, source, config, "validation")


def chosen_row(job: Job, study, source, dev: dict[float, float], lr_source: str,
               grid_rows: list[GridRow]) -> TruthRow:
    """The truth row of a finished cell: the best dev rate's run, now scored on the validation windows."""
    from composer import lr_grid

    s = study.settings
    ext = extrapolated(job.layout, s)
    lr = lr_grid.choose(dev)
    config = s.train_config(job.tokens, seed=job.seed, lr=lr or s.train.lr)
    row = dataclasses.replace(
        _base_row(job, s, ext, config, lr), lr_source=lr_source,
        lr_grid_json=json.dumps({f"{k:g}": (v if math.isfinite(v) else None) for k, v in sorted(dev.items())}),
        lr_at_edge=lr_grid.at_edge(dev), wall_s=float(sum(r.wall_s or 0 for r in grid_rows)))
    if lr is None:
        return dataclasses.replace(row, status="diverged", error=f"every rate diverged: {sorted(dev)}",
                                   finished_at=now())
    chosen = next(r for r in grid_rows if float(r.lr) == lr)
    _, n_val = validation_batches(s, source)
    loss, acc, se = validation_score(ext.spec, s, source, config, study.run_dir / "train" / chosen.folder)
    return dataclasses.replace(row, dev_loss=dev[lr], val_loss=loss, val_loss_se=se, val_bpb=loss / math.log(2),
                               val_accuracy=acc, val_tokens=n_val * s.train.seq_len, train_loss=chosen.train_loss,
                               tokens_per_s=chosen.tokens_per_s, compile_s=chosen.compile_s, status="ok",
                               error=None, finished_at=now())
