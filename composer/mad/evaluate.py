"""Score a layout on the MAD proxy tasks: ``evaluate(pattern)`` or a reusable ``Evaluator``.

The candidate is rebuilt at the protocol's proxy widths with its own depth, trained on each task from
scratch and scored by accuracy over the held-out scored positions; the search objective ``score`` is
the unweighted mean of the task accuracies (docs/method.md §2.2, MAD §1.6).

An ``Evaluator`` keeps one compiled run per (task, depth, primitive space). The space is the
candidate's own set of primitives (plus ``space`` if given): its switch stack holds parameters for
each of them and picks one per layer at run time, so every later candidate of the same depth and
primitive set only pays for training. Keeping the space exact (not the union of everything seen) makes
a score a function of (layout, seed, protocol) alone, and unused branches are not free: under
``grad`` a ``lax.switch`` materialises every branch's residuals (zeros for the unselected ones).
"""

from __future__ import annotations

import time
import zlib
from collections import OrderedDict
from typing import Any, Callable, Iterable

import numpy as np

from composer.errors import DivergenceError, UsageError
from composer.mad.curves import summarise
from composer.mad.eval_result import EvalResult, check_tasks
from composer.mad.protocol import Protocol, get_protocol
from composer.mad.task_data import task_arrays
from composer.mad.tasks import TASKS
from composer.spec import ArchSpec, LayerSpec, arch_id, parse_pattern

__all__ = ["EvalResult", "Evaluator", "evaluate", "check_tasks"]

Progress = Callable[[str | None, int, int], None]
"""``progress(task, done, total)``: called before each task and once at the end with ``task=None``."""


def _layers(candidate: str | ArchSpec) -> tuple[LayerSpec, ...]:
    if isinstance(candidate, ArchSpec):
        return candidate.layers
    if not isinstance(candidate, str):
        raise UsageError(f"candidate: expected a pattern string or ArchSpec, got {type(candidate).__name__}")
    return tuple(LayerSpec(ch) for ch in parse_pattern(candidate))


def _key(layer: LayerSpec) -> tuple:
    return (layer.primitive, layer.options)


class Evaluator:
    """Reusable proxy evaluator; keeps compiled runs and generated data across candidates."""

    def __init__(self, protocol: str | Protocol = "cpu", *, space: Iterable[str | LayerSpec] = (),
                 data_cache: int = 12):
        from composer.jax_cache import enable_compilation_cache

        self.protocol = get_protocol(protocol)
        self.base_space = tuple(l if isinstance(l, LayerSpec) else LayerSpec(l) for l in space)
        """Primitives every candidate's switch stack holds besides its own (fewer compiles, slower steps)."""
        self._stacks: dict[tuple, Any] = {}
        self._compiled: dict[tuple, Any] = {}
        self._data: OrderedDict[tuple, tuple] = OrderedDict()
        self._data_cache = data_cache
        self.trace_count = 0
        """Python traces of the task run function (a new one means a new compile)."""
        self.cache_dir = enable_compilation_cache()

    def space_for(self, layers: tuple[LayerSpec, ...]) -> tuple[LayerSpec, ...]:
        """The switch space of a candidate: its own primitives plus ``base_space``, in a fixed order."""
        merged = {_key(l): l for l in self.base_space + tuple(layers)}
        return tuple(merged[k] for k in sorted(merged, key=repr))

    @property
    def max_seq_len(self) -> int:
        lengths = [TASKS[t].input_length(c) for t in self.protocol.task_names for c in self.protocol.configs(t)]
        return max([256, *lengths])

    def proxy_spec(self, candidate: str | ArchSpec) -> ArchSpec:
        """The candidate's layers at the protocol's widths (vocabulary 256; each task resizes the embedding).

        Training choices (head tying, init) belong to the protocol, so for ``cpu`` this is exactly
        ``spec_from_pattern(pattern, "proxy")`` and shares its ``arch_id``.
        """
        d = self.protocol.dims
        return ArchSpec(layers=_layers(candidate), d_model=d.d_model, n_heads=d.n_heads, n_kv_heads=d.n_kv_heads,
                        head_dim=d.head_dim, d_ffn=d.d_ffn, vocab_size=256, max_seq_len=self.max_seq_len,
                        rope_theta=d.rope_theta)

    def evaluate(self, candidate: str | ArchSpec, *, seed: int = 0, tasks: Iterable[str] | str | None = None,
                 progress: Progress | None = None) -> EvalResult:
        """Train and score ``candidate`` on ``tasks`` (default: all of the protocol's)."""
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise UsageError(f"seed: must be an integer >= 0, got {seed!r}")
        names = check_tasks(tasks, self.protocol)
        spec = self.proxy_spec(candidate)
        start = time.perf_counter()
        details = {}
        for i, task in enumerate(names):
            if progress:
                progress(task, i, len(names))
            details[task] = [self._run_setting(task, j, spec, seed) for j in range(len(self.protocol.configs(task)))]
        if progress:
            progress(None, len(names), len(names))
        return self.result(candidate, spec, seed, details, wall_s=time.perf_counter() - start)

    def result(self, candidate: str | ArchSpec, spec: ArchSpec, seed: int, details: dict[str, list[dict]], *,
               wall_s: float) -> EvalResult:
        """The ``EvalResult`` of per-task, per-setting ``details`` (``_run_setting``'s, or a packed member's)."""
        names = list(details)
        accs = {t: float(np.mean([d["acc"] for d in details[t]])) for t in names}
        steps = {t: sum(d["steps"] for d in details[t]) for t in names}
        tokens = {t: sum(d["tokens"] for d in details[t]) for t in names}
        compile_s = sum(d["compile_s"] for t in names for d in details[t])
        ident = candidate if isinstance(candidate, ArchSpec) else spec
        return EvalResult(arch_id=arch_id(ident), pattern=spec.pattern, protocol=self.protocol.name, seed=seed,
                          score=float(np.mean(list(accs.values()))), tasks=accs, steps=steps, tokens=tokens,
                          total_steps=sum(steps.values()), total_tokens=sum(tokens.values()),
                          wall_s=wall_s, compile_s=compile_s, details=details)

    def _stack(self, layers: tuple[LayerSpec, ...]):
        from composer.mad.switch_model import SwitchStack

        space = self.space_for(layers)
        key = tuple(_key(l) for l in space)
        if key not in self._stacks:
            self._stacks[key] = SwitchStack(space, self.proxy_spec("M").dims, unroll=self.protocol.layer_unroll,
                                            init=self.protocol.init)
        return self._stacks[key]

    def _run_setting(self, task: str, index: int, spec: ArchSpec, seed: int) -> dict[str, Any]:
        """Train on one setting of ``task`` at every (lr, wd) of the sweep; keep the best run."""
        config = self.protocol.configs(task)[index]
        if self.protocol.pack_sweep and len(self.sweep) > 1:
            from composer.mad.packed_setting import pack_setting

            out = pack_setting(self, task, index, config, spec, [seed])[0]
            if isinstance(out, Exception):
                raise out
            return out
        t0 = time.perf_counter()
        data = self._data_for(task, index, config, seed, self.choice_split)
        model, types, params = self.init_member(task, config, spec, seed)
        runner, compile_s, plan = self._compiled_for(task, config, model, params, types, data)
        runs = []
        for lr, wd in self.sweep:
            curves = runner(params, types, *data, np.float32(lr), np.float32(wd))
            runs.append(summarise(self.protocol, task, plan, {k: np.asarray(v) for k, v in curves.items()}, lr, wd))
        best = self.best_of_sweep(task, index, runs, data, compile_s=compile_s, wall_s=time.perf_counter() - t0)
        if self.choice_split == "test":
            return best
        test = self._data_for(task, index, config, seed, "test")
        curves = runner(params, types, *test, np.float32(best["lr"]), np.float32(best["wd"]))
        rerun = summarise(self.protocol, task, plan, {k: np.asarray(v) for k, v in curves.items()},
                          best["lr"], best["wd"])
        return self.scored_on_test(best, rerun, test, wall_s=time.perf_counter() - t0)

    @property
    def sweep(self) -> list[tuple[float, float]]:
        """The protocol's ``(lr, wd)`` runs of every task setting, in order."""
        return [(lr, wd) for lr in self.protocol.lrs for wd in self.protocol.weight_decays]

    @property
    def choice_split(self) -> str:
        """The split a sweep's best run is chosen on: ``dev`` when the protocol says so and there is a
        choice (more than one run), else ``test`` (``Protocol.choose_on``)."""
        return "dev" if self.protocol.choose_on == "dev" and len(self.sweep) > 1 else "test"

    def scored_on_test(self, best: dict[str, Any], rerun: dict[str, Any], test: tuple, *,
                       wall_s: float | None = None) -> dict[str, Any]:
        """The dev-chosen ``best`` of a sweep scored by ``rerun``, the same (lr, wd) trained again and
        evaluated on test: its accuracy is the score, the sweep (dev accuracies) and the cost stay."""
        if rerun["diverged_by_step"] is not None:  # finite on dev, so not expected; the run is the same
            raise DivergenceError(f"the chosen run (lr {best['lr']:g}, wd {best['wd']:g}) diverged on its rerun "
                                  f"by step {rerun['diverged_by_step']}")
        steps = best["steps"] + rerun["steps_trained"]
        out = {**rerun, "steps": steps, "runs": best["runs"] + 1,
               "tokens": steps * self.protocol.batch_size * test[0].shape[-1], "compile_s": best["compile_s"],
               "wall_s": best["wall_s"] if wall_s is None else wall_s, "sweep": best["sweep"], "chosen_on": "dev",
               "dev_acc": best["acc"]}
        return out

    def init_member(self, task: str, config: Any, spec: ArchSpec, seed: int):
        """``(model, types, params)`` of ``spec`` on one task setting at ``seed`` (the switch stack holds
        exactly the candidate's primitives, ``space_for``)."""
        import jax

        stack = self._stack(spec.layers)
        types = stack.types(spec.layers)
        model = self._model(task, config, stack)
        root = jax.random.key(seed)
        return model, types, model.init(jax.random.fold_in(root, zlib.crc32(task.encode())), types, stack_key=root)

    def best_of_sweep(self, task: str, index: int, runs: list[dict], data: tuple, *, compile_s: float,
                      wall_s: float) -> dict[str, Any]:
        """The best finite run of a setting's sweep, with what the whole sweep trained."""
        p = self.protocol
        finite = [r for r in runs if r["diverged_by_step"] is None]
        if not finite:  # a sweep keeps its finite runs; with none left there is nothing to score
            first = min(runs, key=lambda r: r["diverged_by_step"])
            raise DivergenceError(
                f"task {task} (setting {index}): training diverged, loss NaN/inf by step {first['diverged_by_step']} "
                f"at lr {first['lr']:g}, wd {first['wd']:g}" + (f"; all {len(runs)} runs of the sweep diverged"
                                                                if len(runs) > 1 else ""))
        best = max(finite, key=lambda r: r["acc"])
        n_runs = len(runs)
        trained = sum(r["steps_trained"] for r in runs)  # early-stopped runs count what they trained
        return {**best, "steps": trained, "runs": n_runs, "tokens": trained * p.batch_size * data[0].shape[-1],
                "compile_s": compile_s, "wall_s": wall_s,
                "sweep": [{k: r[k] for k in ("lr", "wd", "acc")} for r in runs] if n_runs > 1 else None}

    def _plan(self, task: str, config: Any, n_test: int):
        from composer.mad.training import Plan

        p = self.protocol
        return Plan(steps=p.train_steps(task, config), eval_interval=p.eval_interval(task, config),
                    eval_batch=min(p.eval_batch, n_test), metric=p.metric, schedule=p.schedule,
                    betas=tuple(p.betas), eps=p.eps, warmup_frac=p.warmup_frac,
                    final_lr_frac=p.final_lr_frac, min_lr=p.min_lr, steps_per_epoch=p.steps_per_epoch(config),
                    stop_at=p.early_stop)

    def _model(self, task: str, config: Any, stack):
        from composer.mad.proxy_model import ProxyModel

        return ProxyModel(stack, TASKS[task].vocab_size(config), autoencoder=TASKS[task].autoencoder,
                          tie_embeddings=self.protocol.tie_embeddings, embed_std=self.protocol.embed_std)

    def _compiled_for(self, task, config, model, params, types, data):
        import jax

        from composer.mad.training import make_run

        plan = self._plan(task, config, self._n_test(config))
        shapes = tuple(a.shape for a in data)
        key = (task, config, plan, tuple(_key(l) for l in model.stack.space), types.shape, shapes)
        if key in self._compiled:
            return self._compiled[key], 0.0, plan

        def traced():
            self.trace_count += 1

        t0 = time.perf_counter()
        args = (params, types, *data, np.float32(0), np.float32(0))
        compiled = jax.jit(make_run(model, plan, on_trace=traced)).lower(*args).compile()
        self._compiled[key] = compiled
        return compiled, time.perf_counter() - t0, plan

    def _n_test(self, config: Any) -> int:
        return self.protocol.num_test or config.num_test_examples

    def _data_for(self, task: str, index: int, config: Any, seed: int, split: str = "test") -> tuple:
        """Device arrays ``(train_x, train_y, batch_idx, eval_x, eval_y)``, the evaluation rows from
        ``split`` (``test``, or ``dev`` for a sweep chosen on it), cached per (task, seed, split)."""
        key = (task, index, seed, self.protocol.name, split)
        if key in self._data:
            self._data.move_to_end(key)
            return self._data[key]
        arrays = task_arrays(self.protocol, task, config, seed, split, self._n_test(config))
        import jax

        self._data[key] = tuple(jax.device_put(a) for a in arrays)
        while len(self._data) > self._data_cache:
            self._data.popitem(last=False)
        return self._data[key]


_DEFAULT: dict[str, Evaluator] = {}


def evaluate(candidate: str | ArchSpec, *, protocol: str | Protocol = "cpu",
             tasks: Iterable[str] | str | None = None, seed: int = 0,
             progress: Progress | None = None) -> EvalResult:
    """Score one layout (pattern like ``AAMMMM``/``2A4M`` or an ``ArchSpec``) on the MAD proxy tasks.

    Reuses one module-level ``Evaluator`` per named protocol, so repeated calls share compiled runs.
    """
    proto = get_protocol(protocol)
    if not isinstance(protocol, str):
        return Evaluator(proto).evaluate(candidate, seed=seed, tasks=tasks, progress=progress)
    if proto.name not in _DEFAULT:
        _DEFAULT[proto.name] = Evaluator(proto)
    return _DEFAULT[proto.name].evaluate(candidate, seed=seed, tasks=tasks, progress=progress)
