"""``make demo`` from a cold start: wall time of the quick start, and whether its scores mean something.

Runs the README's quick start (``make demo``: search, leaderboard, report, export) with a fresh run folder
and an empty JAX compilation cache (a new user's first run compiles everything), and records the wall
seconds, the load average before and after (this machine is shared), the evaluations made, the best
layout's mean score against the protocol's chance score (``summary.json``'s ``learning`` block) and the
winner. The target: under 5 minutes on 2 cores, with scores above chance.

    .venv/bin/python experiments/bench/demo.py [--out experiments/bench/results/demo.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results" / "demo.json"
ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)

    from _timing import machine, write_results

    run_dir = ROOT / "runs" / "demo"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    cache = tempfile.mkdtemp(prefix="demo-jax-cache-")
    env = {**os.environ, "XDG_CACHE_HOME": cache}
    env.pop("COMPOSER_JAX_CACHE", None)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(["make", "demo"], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    shutil.rmtree(cache, ignore_errors=True)
    if proc.returncode:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        return proc.returncode
    summary = json.loads((run_dir / "summary.json").read_text())
    payload = {"machine": machine(), "command": "make demo", "wall_s": round(wall, 1),
               "load_avg_before": [round(x, 2) for x in load_before],
               "load_avg_after": [round(x, 2) for x in os.getloadavg()],
               "evaluations": summary["budget"]["used"], "protocol": summary["settings"]["protocol"],
               "learning": summary.get("learning"), "winner": summary["proxy"]["pattern"],
               "target_s": 300, "meets_target": wall < 300 and not (summary.get("learning") or {}).get("at_chance")}
    write_results(args.out, payload)
    print(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
