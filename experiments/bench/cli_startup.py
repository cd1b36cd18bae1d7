"""How long the command line takes to answer what needs no model: ``--help`` and a refused run folder.

Each trial is a fresh interpreter, the commands taking turns so all see the same machine load:

- ``composer --help``, ``composer search --help``, ``composer leaderboard <missing run>``: what a user
  types first, and what a typo costs;
- ``import composer.spec``: what every one of them loaded before 2026-12-08 (the spec module loads
  the primitive registry and with it JAX), the reference the commands are compared with side by side;
- ``composer inspect --pattern AM --scale proxy``: a command that needs a spec, so JAX (for scale).

    .venv/bin/python experiments/bench/cli_startup.py [--trials 15]

Prints medians and writes ``experiments/bench/results/cli_startup.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).parent / "results" / "cli_startup.json"
CLI = [sys.executable, "-m", "cli"]
COMMANDS = {
    "composer --help": [*CLI, "--help"],
    "composer search --help": [*CLI, "search", "--help"],
    "composer leaderboard <missing>": [*CLI, "leaderboard", "no-such-run"],
    "import composer.spec (reference)": [sys.executable, "-c", "import composer.spec"],
    "composer inspect --pattern AM": [*CLI, "inspect", "--pattern", "AM", "--scale", "proxy"],
}
EXPECTED_EXIT = {"composer leaderboard <missing>": 2}


def trial(argv: list[str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    return time.perf_counter() - t0, out.returncode


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=15, help="fresh interpreters per command")
    p.add_argument("--out", type=Path, default=RESULTS, help="results file (JSON)")
    args = p.parse_args(argv)
    from composer.atomic import write_text

    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for cmd in COMMANDS.values():  # one untimed run each: the page cache, not the code, is warm
        trial(cmd)
    for i in range(args.trials):
        for name in (list(COMMANDS) if i % 2 == 0 else list(reversed(COMMANDS))):
            seconds, code = trial(COMMANDS[name])
            if code != EXPECTED_EXIT.get(name, 0):
                raise SystemExit(f"{name}: exit {code}, expected {EXPECTED_EXIT.get(name, 0)}")
            times[name].append(seconds)
    ref = statistics.median(times["import composer.spec (reference)"])
    rows = {name: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t),
                   "ratio_to_reference": statistics.median(t) / ref} for name, t in times.items()}
    for name, r in rows.items():
        print(f"{name:36s} median {r['median_s']:.2f} s  (min {r['min_s']:.2f}, max {r['max_s']:.2f})  "
              f"{r['ratio_to_reference']:.2f}x the reference")
    result = {"trials": args.trials, "commands": rows, "cpu_count": os.cpu_count(),
              "platform": platform.platform(), "python": platform.python_version(),
              "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
