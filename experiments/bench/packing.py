"""Packed vs one-at-a-time evaluation of one layout's seeds: evaluations per hour, compile seconds and
peak memory, side by side in one run.

For every protocol and pack size K, two fresh processes evaluate the same 6-layer layout at K seeds:

* ``sequential``: K solo evaluations one after another (``Evaluator.evaluate``);
* ``packed``: one ``composer.mad.packed.evaluate_packed`` call over the K seeds.

Each process first warms up on K other seeds (that call pays the compile, reported as ``compile_s``),
then the timed call trains the K seeds (data generation included in both modes): evaluations per hour
is ``K / timed wall``. Peak memory is the process's maximum resident set (``ru_maxrss``). The two modes
alternate per K so machine load hits both alike; the load average is recorded beside each number.

    .venv/bin/python experiments/bench/packing.py [--protocols capacity,cpu] [--packs 1,2,4,8] [--quick]

Writes ``experiments/bench/results/packing.json`` (``--out`` to change). The target (issue "Packed
evaluation"): on 2 CPU cores, K = 4 packed ``capacity`` seeds at >= 1.5x the evaluations per hour of
four sequential runs. On an accelerator run ``experiments/bench/packing_gpu.sh``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results" / "packing.json"
LAYOUT = "AMAMAM"


def _text_child(mode: str, k: int, steps_scale: float | None) -> tuple[list, float, float]:
    """``text-small``: the ``small`` real-text scale (the fair study's model), 40 steps of 16 x 256 tokens."""
    from composer.data import CorpusSource
    from composer.packed_train import train_packed
    from composer.presets import spec_from_pattern
    from composer.train import TrainConfig, train

    spec, source = spec_from_pattern(LAYOUT, "small"), CorpusSource("gutenberg")
    steps = max(4, round(40 * (steps_scale or 1.0)))
    config = TrainConfig(steps=steps, batch_size=16, seq_len=256, lr=1e-3, eval_every=0, eval_batches=4,
                         checkpoint_every=0, log_every=10)

    def run(seeds):
        if mode == "packed" and k > 1:
            return [r.eval_loss for r in train_packed(spec, source, config, [(s, config.lr) for s in seeds])], 0.0
        results = [train(spec, source, config.replace(seed=s)) for s in seeds]
        return [r.eval_loss for r in results], sum(r.compile_seconds for r in results)

    t0 = time.perf_counter()
    run(list(range(100, 100 + k)))
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores, _ = run(list(range(k)))
    return scores, warm, time.perf_counter() - t0


def _child(protocol: str, mode: str, k: int, steps_scale: float | None) -> dict:
    """One measurement in this (fresh) process."""
    import dataclasses
    import resource

    os.environ.setdefault("COMPOSER_JAX_CACHE", "off")
    if protocol == "text-small":
        scores, warm_s, wall = _text_child(mode, k, steps_scale)
        return {"protocol": protocol, "mode": mode, "k": k, "warm_wall_s": round(warm_s, 2),
                "compile_s": None, "timed_wall_s": round(wall, 2), "evals_per_hour": round(3600 * k / wall, 1),
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "scores": [round(s, 5) for s in scores], "load_avg_1m": round(os.getloadavg()[0], 2)}
    from composer.mad.evaluate import Evaluator
    from composer.mad.packed import evaluate_packed
    from composer.mad.protocol import get_protocol

    proto = get_protocol(protocol)
    if steps_scale:
        proto = dataclasses.replace(proto, steps={t: max(2, round(s * steps_scale)) for t, s in proto.steps.items()})
    ev = Evaluator(proto)

    def run(seeds):
        if mode == "packed" and k > 1:
            out = evaluate_packed(ev, LAYOUT, seeds)
            bad = [o for o in out if isinstance(o, Exception)]
            if bad:
                raise bad[0]
            return out
        return [ev.evaluate(LAYOUT, seed=s) for s in seeds]

    t0 = time.perf_counter()
    warm = run(list(range(100, 100 + k)))
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    timed = run(list(range(k)))
    wall = time.perf_counter() - t0
    return {"protocol": protocol, "mode": mode, "k": k, "warm_wall_s": round(warm_s, 2),
            "compile_s": round(sum(r.compile_s for r in warm), 2), "timed_wall_s": round(wall, 2),
            "evals_per_hour": round(3600 * k / wall, 1), "peak_rss_mib": round(resource.getrusage(
                resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "scores": [round(r.score, 5) for r in timed],
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def _measure(protocol: str, mode: str, k: int, steps_scale: float | None) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps([protocol, mode, k, steps_scale])]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocols", default="capacity,cpu,text-small",
                    help="MAD protocols, and text-small (the small real-text scale, 40 steps)")
    ap.add_argument("--packs", default="1,2,4,8")
    ap.add_argument("--quick", action="store_true", help="a tenth of every task's steps (a smoke run)")
    ap.add_argument("--sequential-max", type=int, default=None,
                    help="measure sequential runs up to this K only; larger K compare with the last measured "
                         "sequential rate (marked estimated): on an accelerator K = 64 sequential runs take long")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(*json.loads(args.child))))
        return 0
    from _timing import machine, write_results

    scale = 0.1 if args.quick else None
    rows = []
    for protocol in args.protocols.split(","):
        last_seq = None
        for k in (int(x) for x in args.packs.split(",")):
            pair = {}
            for mode in ("sequential", "packed"):
                if mode == "sequential" and args.sequential_max and k > args.sequential_max and last_seq:
                    pair[mode] = {**last_seq, "k": k, "estimated_from_k": last_seq["k"]}
                    continue
                pair[mode] = _measure(protocol, mode, k, scale)
                if mode == "sequential":
                    last_seq = pair[mode]
                rows.append(pair[mode])
                r = pair[mode]
                print(f"{protocol:<9} K={k:<2} {mode:<10} {r['evals_per_hour']:>8.1f} evals/h  timed "
                      f"{r['timed_wall_s']:>7.1f} s  compile {r['compile_s'] or 0:>6.1f} s  "
                      f"peak {r['peak_rss_mib']:>7.0f} MiB  load {r['load_avg_1m']}", flush=True)
            speedup = pair["packed"]["evals_per_hour"] / pair["sequential"]["evals_per_hour"]
            rows.append({"protocol": protocol, "k": k, "speedup_packed_over_sequential": round(speedup, 3)})
            print(f"{protocol:<9} K={k:<2} packed / sequential: {speedup:.2f}x", flush=True)
    payload = {"layout": LAYOUT, "quick": args.quick, "machine": machine(), "rows": rows,
               "target": "capacity K=4 packed >= 1.5x sequential evaluations per hour (2 CPU cores)"}
    write_results(args.out, payload)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
