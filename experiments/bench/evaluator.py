"""Cost of one proxy evaluation under a protocol (default ``cpu``): wall, compile and training time.

Measures, in one process with JAX's persistent compilation cache disabled (so compile numbers are
real):

* 6 layers: a first candidate (compiles its six task runs: the cost of a naive per-candidate ``jit``),
  then further candidates of the same depth and primitive set (reuse the compiled runs);
* 16 layers: a first candidate and one reusing candidate.

Targets (issue "MAD proxy evaluator"): 6 layers <= 45 s median with compiled runs reused; 16 layers
<= 120 s; compile <= 15 % of the wall time when runs are reused. The naive ratio is the first
candidate's wall (its own compile included) over the median reusing wall.

    .venv/bin/python experiments/bench/evaluator.py [--quick] [--protocol cpu]

Writes ``experiments/bench/results/evaluator.json``. On a shared machine the load average is
recorded with every candidate: timings taken under load are noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ["COMPOSER_JAX_CACHE"] = "off"

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import machine, write_results  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "evaluator.json"
SIX = ("AMAMAM", "AAMMMM", "MMMMAA", "AMMAMM")
SIXTEEN = ("AAMMMMMAAMMMAMMM", "AMMMAMMMAMMMAMMA")
TARGETS = {"six_layer_wall_s": 45.0, "sixteen_layer_wall_s": 120.0, "compile_share_reused": 0.15}


def _one(evaluator, pattern: str) -> dict:
    load = os.getloadavg()[0]
    t0 = time.process_time()
    r = evaluator.evaluate(pattern, seed=0)
    cpu_s = time.process_time() - t0
    per_task = {t: {k: round(d[0][k], 2) for k in ("wall_s", "compile_s")} | {"steps": r.steps[t]}
                for t, d in r.details.items()}
    row = {"pattern": pattern, "layers": len(pattern), "wall_s": r.wall_s, "compile_s": r.compile_s,
           "train_s": r.wall_s - r.compile_s, "process_cpu_s": cpu_s, "score": r.score, "load_avg_1m": load,
           "total_steps": r.total_steps, "tasks": per_task}
    print(f"  {pattern:<18} wall {r.wall_s:6.1f} s  compile {r.compile_s:5.1f} s  cpu {cpu_s:6.1f} s  "
          f"score {r.score:.3f}  load {load:.1f}", flush=True)
    return row


def _group(evaluator, patterns) -> dict:
    rows = [_one(evaluator, p) for p in patterns]
    first, reused = rows[0], rows[1:]
    med = statistics.median(r["wall_s"] for r in reused)
    reused_compile = sum(r["compile_s"] for r in reused) / max(sum(r["wall_s"] for r in reused), 1e-9)
    return {"rows": rows, "first_wall_s": first["wall_s"], "first_compile_s": first["compile_s"],
            "first_compile_share": first["compile_s"] / first["wall_s"], "reused_median_wall_s": med,
            "reused_compile_share": reused_compile, "naive_over_reused": first["wall_s"] / med,
            "first_train_s": first["train_s"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--protocol", default="cpu")
    p.add_argument("--quick", action="store_true", help="6-layer candidates only, two of them")
    args = p.parse_args(argv)

    from composer.mad.evaluate import Evaluator

    out = {"protocol": args.protocol, "machine": machine(), "xla_flags": os.environ.get("XLA_FLAGS", ""),
           "targets": TARGETS, "note": "2-core machine shared with other workers; see load_avg_1m per row"}
    print("6 layers", flush=True)
    out["six"] = _group(Evaluator(args.protocol), SIX[:2] if args.quick else SIX)
    if not args.quick:
        print("16 layers", flush=True)
        out["sixteen"] = _group(Evaluator(args.protocol), SIXTEEN)
    write_results(str(RESULTS), out)
    _table(out)
    return 0


def _table(out: dict) -> None:
    print("\n| depth | first wall s (compile s) | reused wall s (median) | compile share reused | "
          "naive / reused | target |")
    print("|---|---|---|---|---|---|")
    for key, target in (("six", TARGETS["six_layer_wall_s"]), ("sixteen", TARGETS["sixteen_layer_wall_s"])):
        if key not in out:
            continue
        g = out[key]
        print(f"| {6 if key == 'six' else 16} | {g['first_wall_s']:.1f} ({g['first_compile_s']:.1f}) | "
              f"{g['reused_median_wall_s']:.1f} | {g['reused_compile_share']:.1%} | "
              f"{g['naive_over_reused']:.2f}x | <= {target:.0f} s |")


if __name__ == "__main__":
    sys.exit(main())
