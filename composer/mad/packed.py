"""Packed evaluation: several seeds (and every run of the protocol's learning-rate x weight-decay sweep)
of one layout trained in one compiled program.

The members of a pack share the layout, the task shapes and the compiled program; only parameters,
data streams and hyperparameters differ, so they stack along a leading axis: ``jax.vmap`` over the
parameters, optimiser state, data, learning rate and weight decay of ``composer.mad.training.make_run``
(the learning rate and weight decay are runtime arguments there already, so the packed program is the
solo one with a batch axis). Each member keeps its own initialisation (its seed), its own data stream
(generated from its seed), its own hyperparameters and its own early stop: under ``vmap`` the
``lax.while_loop`` of an early-stopping protocol runs until every member has stopped, and a member
that stopped keeps its state and curves unchanged while the others train
(``tests/mad/test_packed.py`` checks every member against the same run trained alone).

What packing buys is utilisation: a 6-layer d = 64 proxy leaves a CPU's cores and most of an
accelerator idle between small matmuls; K members make every matmul K times larger
(``experiments/bench/packing.py`` measures it).
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Sequence

import numpy as np

from composer.errors import DivergenceError, UsageError
from composer.mad.curves import summarise
from composer.mad.evaluate import EvalResult, Evaluator, _key, check_tasks
from composer.spec import ArchSpec

__all__ = ["evaluate_packed", "check_seeds"]


def check_seeds(seeds: Sequence[int]) -> tuple[int, ...]:
    seeds = tuple(seeds)
    bad = [s for s in seeds if not isinstance(s, int) or isinstance(s, bool) or s < 0]
    if not seeds or bad or len(set(seeds)) != len(seeds):
        raise UsageError(f"seeds: need distinct integers >= 0 for a pack, got {list(seeds)}")
    return seeds


def evaluate_packed(ev: Evaluator, candidate: str | ArchSpec, seeds: Sequence[int], *,
                    tasks: Iterable[str] | str | None = None) -> list[EvalResult | Exception]:
    """``candidate`` at every seed of ``seeds`` in one packed program per task setting.

    Returns one entry per seed, in order: its ``EvalResult`` (equal to ``ev.evaluate(candidate, seed=s)``
    to float tolerance), or the ``DivergenceError`` that a solo evaluation at that seed would raise (a
    member whose whole sweep diverged on a task stops there; the others go on). Wall and compile
    seconds are shared equally among the members that trained.
    """
    seeds = check_seeds(seeds)
    names = check_tasks(tasks, ev.protocol)
    spec = ev.proxy_spec(candidate)
    start = time.perf_counter()
    details: dict[int, dict[str, list[dict[str, Any]]]] = {s: {} for s in seeds}
    errors: dict[int, Exception] = {}
    for task in names:
        for index, config in enumerate(ev.protocol.configs(task)):
            active = [s for s in seeds if s not in errors]
            if not active:
                break
            for seed, out in zip(active, _pack_setting(ev, task, index, config, spec, active)):
                if isinstance(out, Exception):
                    errors[seed] = out
                else:
                    details[seed].setdefault(task, []).append(out)
    share = (time.perf_counter() - start) / len(seeds)
    return [errors[s] if s in errors else ev.result(candidate, spec, s, details[s], wall_s=share) for s in seeds]


def _stack(trees: list):
    import jax
    import jax.numpy as jnp

    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _pack_setting(ev: Evaluator, task: str, index: int, config: Any, spec: ArchSpec,
                  seeds: list[int]) -> list[dict[str, Any] | Exception]:
    """Every (seed, lr, wd) member of one task setting in one call; per seed its best run or its error."""
    t0 = time.perf_counter()
    sweep = ev.sweep
    members = [(s, lr, wd) for s in seeds for lr, wd in sweep]
    data = {s: ev._data_for(task, index, config, s, ev.choice_split) for s in seeds}
    inits = {s: ev.init_member(task, config, spec, s) for s in seeds}
    model, types, _ = inits[seeds[0]]
    curves, compile_s, plan = _run_members(ev, task, config, model, types, inits, data, members)
    wall = time.perf_counter() - t0
    out: dict[int, dict[str, Any] | Exception] = {}
    for j, seed in enumerate(seeds):
        rows = range(j * len(sweep), (j + 1) * len(sweep))
        runs = [summarise(ev.protocol, task, plan, {k: v[i] for k, v in curves.items()}, members[i][1],
                          members[i][2]) for i in rows]
        try:
            best = ev.best_of_sweep(task, index, runs, data[seed], compile_s=compile_s / len(seeds),
                                    wall_s=wall / len(seeds))
        except DivergenceError as e:
            out[seed] = e
            continue
        out[seed] = {**best, "pack": len(members)}
    if ev.choice_split == "dev":  # the chosen (lr, wd) of every seed again, packed, scored on test
        chosen = [(s, out[s]["lr"], out[s]["wd"]) for s in seeds if not isinstance(out[s], Exception)]
        test = {s: ev._data_for(task, index, config, s, "test") for s, _, _ in chosen}
        if chosen:
            again, _, _ = _run_members(ev, task, config, model, types, inits, test, chosen)
            share = (time.perf_counter() - t0) / len(seeds)
            for i, (s, lr, wd) in enumerate(chosen):
                rerun = summarise(ev.protocol, task, plan, {k: v[i] for k, v in again.items()}, lr, wd)
                try:
                    out[s] = {**ev.scored_on_test(out[s], rerun, test[s], wall_s=share), "pack": len(members)}
                except DivergenceError as e:
                    out[s] = e
    return [out[s] for s in seeds]


def _run_members(ev: Evaluator, task, config, model, types, inits, data, members):
    """Curves ``[member, ...]`` of every ``(seed, lr, wd)`` of ``members`` trained in one program."""
    params = _stack([inits[s][2] for s, _, _ in members])
    arrays = tuple(_stack([data[s][i] for s, _, _ in members]) for i in range(len(next(iter(data.values())))))
    lrs = np.array([lr for _, lr, _ in members], np.float32)
    wds = np.array([wd for _, _, wd in members], np.float32)
    runner, compile_s, plan = _compiled_packed(ev, task, config, model, params, types, arrays, lrs, wds)
    return {k: np.asarray(v) for k, v in runner(params, types, *arrays, lrs, wds).items()}, compile_s, plan


def _compiled_packed(ev: Evaluator, task, config, model, params, types, arrays, lrs, wds):
    """The vmapped run, compiled once per (task setting, switch space, shapes, pack size)."""
    import jax

    from composer.mad.training import make_run

    plan = ev._plan(task, config, ev._n_test(config))
    key = ("packed", task, config, plan, tuple(_key(l) for l in model.stack.space), types.shape,
           tuple(a.shape for a in arrays))
    if key in ev._compiled:
        return ev._compiled[key], 0.0, plan

    def traced():
        ev.trace_count += 1

    t0 = time.perf_counter()
    run = jax.vmap(make_run(model, plan, on_trace=traced), in_axes=(0, None, 0, 0, 0, 0, 0, 0, 0))
    compiled = jax.jit(run).lower(params, types, *arrays, lrs, wds).compile()
    ev._compiled[key] = compiled
    return compiled, time.perf_counter() - t0, plan
