"""How often a process aborts at exit after reading one parquet table, by how the bytes reach pyarrow.

Each trial is a fresh interpreter that reads a table and exits; the two readers take turns so both see
the same machine load:

- ``python-file``: ``pd.read_parquet`` given an open Python file (this project's reader before
  2026-12-07); Arrow reads it from its I/O threads, which take the GIL;
- ``buffer``: ``search.results.parquet.read_parquet`` (the file's bytes, handed over as Arrow's own
  buffer).

A trial fails when the interpreter does not exit 0 (the failure seen is SIGABRT after "terminate
called without an active exception", once the read has finished and the output is printed).

    .venv/bin/python experiments/bench/parquet_exit.py [--trials 150] [--table PATH]

Writes ``experiments/bench/results/parquet_exit.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).parent / "results" / "parquet_exit.json"
TABLE = ROOT / "experiments" / "results" / "fidelity_fair.parquet"
READERS = {
    "python-file": "import pandas as pd, sys\nwith open(sys.argv[1], 'rb') as f: print(len(pd.read_parquet(f)))",
    "buffer": "import sys\nfrom search.results.parquet import read_parquet\nprint(len(read_parquet(sys.argv[1])))",
}


def trial(code: str, table: Path) -> tuple[int, str]:
    out = subprocess.run([sys.executable, "-c", code, str(table)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    return out.returncode, (out.stderr.strip().splitlines() or [""])[-1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=150, help="fresh interpreters per reader")
    p.add_argument("--table", type=Path, default=TABLE)
    p.add_argument("--out", type=Path, default=RESULTS, help="results file (JSON)")
    args = p.parse_args(argv)
    from composer.atomic import write_text

    failed = {name: [] for name in READERS}
    t0 = time.time()
    for i in range(args.trials):
        for name in (READERS if i % 2 == 0 else reversed(READERS)):
            code, last = trial(READERS[name], args.table)
            if code != 0:
                failed[name].append({"trial": i, "exit": code, "stderr": last})
        if (i + 1) % 10 == 0:
            print(f"{i + 1}/{args.trials} trials: " + ", ".join(f"{n} {len(f)} failed" for n, f in failed.items()),
                  flush=True)
    result = {"trials": args.trials, "table": str(args.table.relative_to(ROOT) if args.table.is_relative_to(ROOT)
                                                   else args.table),
              "wall_s": round(time.time() - t0, 1),
              "failed": {n: len(f) for n, f in failed.items()}, "failures": failed}
    for name, f in failed.items():
        print(f"{name:12s} {len(f):4d} of {args.trials} exits failed")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
