"""What MAD's early stop (train until test accuracy >= 0.999) saves, side by side with training to the end.

One task of the ``cpu`` protocol (d=64, batch 32, one pass over a fresh stream, a test evaluation every
``--eval-every`` steps), scored by its final accuracy, for layouts that saturate it; the same layouts
are trained with ``early_stop=0.999`` and with ``early_stop=None`` in turns (same load), and compile
seconds are left out. (The ``paper`` protocol, which uses the rule, trains 200 epochs of 100 steps of
128 sequences at d=128 per run: a few seconds per run on a GPU, but about an hour on 2 CPU cores.)
Reports per layout the steps trained, the wall time, the score under each, and the median ratio.

    .venv/bin/python experiments/bench/early_stop.py [--task in_context_recall] [--layouts AMAMAM,...]

Writes ``experiments/bench/results/early_stop.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "early_stop.json"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="in_context_recall")
    p.add_argument("--eval-every", type=int, default=25)
    p.add_argument("--layouts", default="AMAMAM,AAMMMM,MAMAMA")
    args = p.parse_args(argv)
    from composer.atomic import write_text
    from composer.mad.evaluate import Evaluator
    from composer.mad.protocol import CPU

    base = dataclasses.replace(CPU, settings={args.task: CPU.settings[args.task]},
                               steps={args.task: CPU.steps[args.task]}, eval_every={args.task: args.eval_every},
                               selection={})
    evaluators = {"stop": Evaluator(dataclasses.replace(base, name="cpu-stop", early_stop=0.999)),
                  "full": Evaluator(dataclasses.replace(base, name="cpu-full-length", early_stop=None))}
    layouts = args.layouts.split(",")
    rows = []
    for layout in layouts:
        row = {"layout": layout}
        for name, ev in evaluators.items():
            t = time.perf_counter()
            r = ev.evaluate(layout, seed=0)
            # compile seconds are measured apart and taken out: the first layout of a depth compiles
            row[name] = {"wall_s": time.perf_counter() - t - r.compile_s, "compile_s": r.compile_s,
                         "steps": r.total_steps, "score": r.score}
        row["wall_ratio_full_over_stop"] = row["full"]["wall_s"] / row["stop"]["wall_s"]
        print(json.dumps(row), flush=True)
        rows.append(row)
    out = {"protocol": "cpu", "task": args.task, "steps": CPU.steps[args.task], "eval_every": args.eval_every,
           "threshold": 0.999, "rows": rows,
           "median_wall_ratio_full_over_stop": statistics.median(r["wall_ratio_full_over_stop"] for r in rows),
           "note": "measured beside other work on 2 shared cores; ratios from turns taken in one run"}
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}))
    write_text(RESULTS, json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
