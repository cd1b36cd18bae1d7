"""One task setting of one layout at several seeds, every run of the protocol's sweep with them, in one
``jax.vmap``ped program: the core of packed evaluation (``composer.mad.packed``), and of a solo
evaluation whose protocol packs its sweep (``Protocol.pack_sweep``).

It reads the evaluator through its methods only (``_data_for``, ``init_member``, ``best_of_sweep``,
``scored_on_test``, ``_plan``, ``choice_split``), so ``composer.mad.evaluate`` can call it without an
import circle.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from composer.errors import DivergenceError
from composer.mad.curves import summarise

__all__ = ["pack_setting"]


def _stack(trees: list):
    import jax
    import jax.numpy as jnp

    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def pack_setting(ev, task: str, index: int, config: Any, spec,
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


def _run_members(ev, task, config, model, types, inits, data, members):
    """Curves ``[member, ...]`` of every ``(seed, lr, wd)`` of ``members`` trained in one program."""
    params = _stack([inits[s][2] for s, _, _ in members])
    arrays = tuple(_stack([data[s][i] for s, _, _ in members]) for i in range(len(next(iter(data.values())))))
    lrs = np.array([lr for _, lr, _ in members], np.float32)
    wds = np.array([wd for _, _, wd in members], np.float32)
    runner, compile_s, plan = _compiled_packed(ev, task, config, model, params, types, arrays, lrs, wds)
    return {k: np.asarray(v) for k, v in runner(params, types, *arrays, lrs, wds).items()}, compile_s, plan


def _compiled_packed(ev, task, config, model, params, types, arrays, lrs, wds):
    """The vmapped run, compiled once per (task setting, switch space, shapes, pack size)."""
    import jax

    from composer.mad.training import make_run

    plan = ev._plan(task, config, ev._n_test(config))
    key = ("packed", task, config, plan, tuple((l.primitive, l.options) for l in model.stack.space), types.shape,
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
