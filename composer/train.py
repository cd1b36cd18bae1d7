"""Train an ``ArchSpec`` language model on a ``TokenSource``: the loop behind ``composer train``.

Resume is exact by construction: batch ``s`` is a pure function of ``(seed, s)``, the checkpoint
holds parameters, optimiser state (with the schedule's step count) and the step, and the compiled
step is the same program, so an interrupted and resumed run repeats the uninterrupted loss curve
bit for bit. The host syncs only every ``log_every`` steps (and before evaluations and checkpoints),
fetching and checking the metrics of every step since the last sync; a non-finite loss or gradient
stops the run before anything after it is checkpointed.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from composer.checkpoint import MetricsLog, RunFolder
from composer.data import TokenSource
from composer.errors import DivergenceError, UsageError
from composer.model import LM
from composer.optim import make_optimizer
from composer.spec import ArchSpec
from composer.steps import eval_step_fn, train_step_fn
from composer.train_config import TrainConfig, TrainResult

__all__ = ["TrainConfig", "TrainResult", "DivergenceError", "train", "init_params", "validation_windows",
           "evaluate_run", "finished_run"]

Record = dict[str, Any]


def init_params(spec: ArchSpec, config: TrainConfig):
    """``(graphdef, params)``: the static model graph and its float32 parameters as a nested dict."""
    model = LM(spec, rngs=nnx.Rngs(config.seed), dtype=getattr(jax.numpy, config.dtype))
    graphdef, state = nnx.split(model)
    return graphdef, nnx.to_pure_dict(state)


def _commit(tree):
    """Place arrays explicitly on the default device, as restored checkpoints are: a fresh and a
    resumed run then share one compiled step (committed-ness is part of jit's cache key)."""
    return jax.device_put(tree, jax.devices()[0])


def _check_inputs(spec: ArchSpec, source: TokenSource, config: TrainConfig) -> None:
    if source.vocab_size > spec.vocab_size:
        raise UsageError(f"vocab_size: the data has {source.vocab_size} token ids but the spec's vocab_size is "
                         f"{spec.vocab_size}; set vocab_size >= {source.vocab_size} (or use a proxy scale)")
    if config.seq_len > spec.max_seq_len:
        raise UsageError(f"seq_len: {config.seq_len} exceeds the spec's max_seq_len {spec.max_seq_len}")
    if hasattr(source, "check_window"):
        source.check_window(config.seq_len)


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int, completed: int):
    if not enabled:
        yield lambda **kw: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn("train"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[tps]} tok/s"),
               TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("train", total=total, completed=completed, loss="-", tps="-")
        yield lambda **kw: bar.update(task, **kw)


def validation_windows(source: TokenSource, config: TrainConfig) -> np.ndarray:
    """int32 ``[n, seq_len + 1]``: the text of ``config.eval_split`` every run with this ``seq_len`` is
    scored on (the validation split unless the config names ``dev``).

    It never depends on ``config.seed``, so two seeds of a layout are scored on the same text and
    their spread is model noise alone. ``eval_batches * batch_size`` fixed windows, evenly spread
    over the split (a source without ``eval_windows`` draws them with seed 0).
    """
    n = config.eval_batches * config.batch_size
    if hasattr(source, "eval_windows"):
        return source.eval_windows(config.seq_len, n, split=config.eval_split)
    return np.concatenate([source.batch(config.eval_split, i, config.batch_size, config.seq_len, seed=0)
                           for i in range(config.eval_batches)])


def padded_batches(windows: np.ndarray, batch_size: int):
    """``(batch, rows to keep)`` over ``windows``, every batch of one shape (one compiled program): the
    last is padded with copies of the first window."""
    for lo in range(0, len(windows), batch_size):
        chunk = windows[lo:lo + batch_size]
        pad = batch_size - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.repeat(windows[:1], pad, axis=0)])
        yield chunk, batch_size - pad


def _evaluate(eval_fn, params, windows: np.ndarray, batch_size: int) -> tuple[float, float, float]:
    """``(mean loss, mean accuracy, standard error of the loss over windows)`` on ``windows``.

    Batches keep one shape (one compiled program): the last one is padded with copies of the first
    window, and the padded rows are dropped before averaging.
    """
    losses, accs = [], []
    for chunk, keep in padded_batches(windows, batch_size):
        loss, acc = eval_fn(params, chunk)
        losses.append(loss[:keep])
        accs.append(acc[:keep])
    loss, acc = np.concatenate(jax.device_get(losses)), np.concatenate(jax.device_get(accs))
    se = float(loss.std(ddof=1) / math.sqrt(loss.size)) if loss.size > 1 else math.nan
    return float(loss.mean()), float(acc.mean()), se


def _compile(step_fn, eval_fn, params, opt_state, source: TokenSource, config: TrainConfig) -> float:
    """Seconds to lower and compile both steps ahead of time; the jitted functions then reuse the
    executables from JAX's caches and keep their C++ dispatch (an AOT ``Compiled`` object
    dispatches in Python, about 35 us slower per call)."""
    t0 = time.perf_counter()
    tokens = source.batch("train", 0, config.batch_size, config.seq_len, seed=config.seed)
    step_fn.lower(params, opt_state, tokens, np.int32(0)).compile()
    if config.eval_batches:
        eval_fn.lower(params, tokens).compile()
    return time.perf_counter() - t0


def _due(done: int, every: int, steps: int) -> bool:
    """Whether a periodic action runs after step ``done`` (always after the last step)."""
    return done == steps or (every > 0 and done % every == 0)


def _diverged(step: int, record: Record, config: TrainConfig, run: RunFolder) -> DivergenceError:
    good = run.ckpts.latest_step() if run.ckpts else None
    kept = f"the last good checkpoint (step {good}) is kept in {run.ckpts.directory}" if good else "no checkpoint kept"
    return DivergenceError(
        f"training diverged at step {step}: loss {record['loss']}, gradient norm {record['grad_norm']} "
        f"(lr {record['lr']:.3g}). Lower the learning rate (e.g. --lr {config.lr / 3:.2g}) or lengthen the "
        f"warmup; {kept}.")


def train(spec: ArchSpec, source: TokenSource, config: TrainConfig, *, resume: bool = False,
          progress: bool = False, callback: Callable[[Record], None] | None = None) -> TrainResult:
    """Train ``spec`` on ``source`` under ``config``; see the module docstring for guarantees.

    Args:
        resume: continue from the newest checkpoint in ``config.out_dir`` (if any).
        progress: show a rich progress bar with loss, tokens/s and ETA.
        callback: called with every metrics record (train steps and evaluations) as it is written;
            an exception raised there stops the run (e.g. pruning, or a simulated interruption).

    Raises:
        UsageError: inputs that cannot work (vocabulary, sequence length, an occupied run folder).
        DivergenceError: a non-finite loss or gradient norm.
    """
    _check_inputs(spec, source, config)
    run = RunFolder(spec, source, config, resume)
    try:
        graphdef, params = init_params(spec, config)
        params = _commit(params)
        opt_state = _commit(make_optimizer(config).init(params))
        start, params, opt_state = run.restore(params, opt_state)
        return _loop(graphdef, params, opt_state, start, source, config, run, progress, callback)
    finally:
        run.close()


def finished_run(config: TrainConfig) -> bool:
    """Whether ``config.out_dir`` holds the final checkpoint of ``config``'s run (what ``evaluate_run`` scores)."""
    if not config.out_dir or not (Path(config.out_dir).expanduser() / "checkpoints").is_dir():
        return False
    from composer.checkpoint import Checkpoints

    ckpts = Checkpoints(Path(config.out_dir).expanduser().resolve() / "checkpoints", keep=config.keep_checkpoints)
    try:
        return ckpts.latest_step() == config.steps
    finally:
        ckpts.close()


def evaluate_run(spec: ArchSpec, source: TokenSource, config: TrainConfig, split: str) -> tuple[float, float, float]:
    """``(loss, accuracy, loss SE)`` of the finished run in ``config.out_dir`` on ``split``'s fixed windows.

    Restores the newest checkpoint (the final one of a finished run) and scores it on the windows
    ``train`` would have used with ``eval_split=split``; the run folder is not changed. This is how a
    learning-rate grid scores only its chosen run on validation: the grid itself reads ``dev``.
    """
    config = config.replace(eval_split=split)
    if not config.out_dir or config.eval_batches < 1:
        raise UsageError("evaluate_run: needs the run's out_dir and eval_batches >= 1")
    from composer.checkpoint import Checkpoints

    ckpts = Checkpoints(Path(config.out_dir).expanduser().resolve() / "checkpoints", keep=config.keep_checkpoints)
    try:
        latest = ckpts.latest_step()
        if latest != config.steps:
            raise UsageError(f"evaluate_run: {config.out_dir} holds no finished run (newest checkpoint "
                             f"{latest}, expected step {config.steps}); train it first")
        graphdef, params = init_params(spec, config)
        opt_state = make_optimizer(config).init(params)
        params, _ = ckpts.restore(latest, _commit(params), _commit(opt_state))
    finally:
        ckpts.close()
    _, eval_fn = _steps(graphdef, config)
    return _evaluate(eval_fn, params, validation_windows(source, config), config.batch_size)


def _steps(graphdef, config: TrainConfig):
    """The jitted train and eval steps, shared through the step caches when the graph is hashable
    (a graph holding a dict attribute, as some recurrent layers do, is not: it gets its own)."""
    try:
        hash(graphdef)
    except TypeError:
        return train_step_fn.__wrapped__(graphdef, config.optimizer_view()), eval_step_fn.__wrapped__(graphdef)
    return train_step_fn(graphdef, config.optimizer_view()), eval_step_fn(graphdef)


def _throughput(ran: int, tokens_per_step: int, first_s: float, train_s: float) -> float:
    """Tokens/s over the steps after the first (the first alone if it is the only one)."""
    if ran <= 0:
        return 0.0
    if ran == 1 or train_s <= 0:
        return tokens_per_step / max(first_s, 1e-9)
    return (ran - 1) * tokens_per_step / train_s


def _emit_train(fetched: list[dict], done: int, emit, config: TrainConfig, run: RunFolder) -> list[float]:
    """Check and emit the records of the steps ending at ``done``; return their losses."""
    losses = []
    for i, m in enumerate(fetched):
        step = done - len(fetched) + i + 1
        record = {"step": step, "split": "train", **{n: float(v) for n, v in m.items()}}
        if not (math.isfinite(record["loss"]) and math.isfinite(record["grad_norm"])):
            raise _diverged(step, record, config, run)
        losses.append(record["loss"])
        emit(record)
    return losses


def _finished(run: RunFolder, steps: int) -> TrainResult:
    """Result of a resumed run that had already completed: its last logged metrics."""
    records = MetricsLog.read(run.metrics.path) if run.metrics.path.exists() else []
    last = {r["split"]: r for r in records}
    train_rec, val = last.get("train", {}), last.get("validation", {})
    return TrainResult(steps=steps, start_step=steps, final_train_loss=train_rec.get("loss", math.nan),
                       eval_loss=val.get("loss"), eval_accuracy=val.get("accuracy"),
                       eval_loss_se=val.get("loss_se"), tokens_per_second=0.0,
                       compile_seconds=0.0, first_step_seconds=0.0, train_seconds=0.0, train_losses=(),
                       out_dir=str(run.dir))


def _loop(graphdef, params, opt_state, start, source, config, run, progress, callback) -> TrainResult:
    if start >= config.steps:
        return _finished(run, config.steps)
    step_fn, eval_fn = _steps(graphdef, config)
    windows = validation_windows(source, config) if config.eval_batches else None
    compile_s = _compile(step_fn, eval_fn, params, opt_state, source, config)
    b, t, steps = config.batch_size, config.seq_len, config.steps
    losses, pending, train_s, first_s, evaluation = [], [], 0.0, 0.0, (None, None, None)

    def emit(record: Record) -> None:
        if run.metrics:
            run.metrics.write(record)
        if callback:
            callback(record)

    with _progress_bar(progress, steps, start) as update:
        t0 = time.perf_counter()
        for s in range(start, steps):
            tokens = source.batch("train", s, b, t, seed=config.seed)
            params, opt_state, metrics = step_fn(params, opt_state, tokens, np.int32(s))
            if s == start:  # the first call loads the executable and warms thread pools: timed apart
                jax.block_until_ready(metrics)
                first_s, t0 = time.perf_counter() - t0, time.perf_counter()
            pending.append(metrics)
            done = s + 1
            do_eval = config.eval_batches > 0 and _due(done, config.eval_every, steps)
            do_ckpt = run.ckpts is not None and _due(done, config.checkpoint_every, steps)
            if not (do_eval or do_ckpt or done == steps or done % config.log_every == 0):
                continue
            fetched, pending = jax.device_get(pending), []
            train_s += time.perf_counter() - t0
            losses += _emit_train(fetched, done, emit, config, run)
            tps = _throughput(done - start, b * t, first_s, train_s)
            update(completed=done, loss=f"{losses[-1]:.3f}", tps=f"{tps:,.0f}")
            if do_eval:
                evaluation = _evaluate(eval_fn, params, windows, b)
                emit({"step": done, "split": "validation", "loss": evaluation[0], "accuracy": evaluation[1],
                      "loss_se": evaluation[2], "windows": len(windows), "tokens": int(len(windows) * t)})
            if do_ckpt:
                run.ckpts.save(done, params, opt_state)
            t0 = time.perf_counter()
    return TrainResult(steps=steps, start_step=start, final_train_loss=losses[-1] if losses else math.nan,
                       eval_loss=evaluation[0], eval_accuracy=evaluation[1], eval_loss_se=evaluation[2],
                       tokens_per_second=_throughput(steps - start, b * t, first_s, train_s),
                       compile_seconds=compile_s, first_step_seconds=first_s, train_seconds=train_s,
                       train_losses=tuple(losses), out_dir=str(run.dir) if run.dir else None)
