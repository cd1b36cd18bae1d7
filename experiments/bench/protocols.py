"""Per-candidate cost of two proxy protocols, side by side (default: ``capacity``, the search's default,
against ``cpu``, the previous one), and the ``make search`` time it implies.

Both evaluators are built and warmed up (every task run compiled once) first; then each round
evaluates one six-layer layout under every protocol, in turns, so both see the same machine load.
Reports the median wall per candidate, the ratio of medians and the median of the per-round ratios
(rounds alternate which protocol goes first), and ``budget x median`` for ``--budget 200``.

    .venv/bin/python experiments/bench/protocols.py [--rounds 3] [--protocols capacity,cpu]

Writes ``experiments/bench/results/protocols.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

LAYOUTS = ("AMAMAM", "MMMMAA", "AAMMMM", "MAMAMA", "AMMAMM")
RESULTS = Path(__file__).parent / "results" / "protocols.json"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--protocols", default="capacity,cpu")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--budget", type=int, default=200)
    p.add_argument("--out", type=Path, default=RESULTS, help="results file (JSON)")
    args = p.parse_args(argv)
    from composer.atomic import write_text
    from search.protocols import evaluator_config

    names = args.protocols.split(",")
    evaluators = {n: evaluator_config(n, seed=0).build() for n in names}  # any registered protocol
    for n, ev in evaluators.items():  # compile every task run once, outside the timed rounds
        t = time.perf_counter()
        ev("AMMAMA", seed=99)
        print(f"{n}: warm-up {time.perf_counter() - t:.1f} s", file=sys.stderr)
    walls: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        layout = LAYOUTS[r % len(LAYOUTS)]
        order = names if r % 2 == 0 else names[::-1]  # alternate who goes first: no protocol always runs warm
        for n in order:
            ev = evaluators[n]
            t = time.perf_counter()
            ev(layout, seed=r)
            walls[n].append(time.perf_counter() - t)
            print(f"round {r}: {n} {layout} {walls[n][-1]:.1f} s (load {os.getloadavg()[0]:.1f})", file=sys.stderr)
    med = {n: statistics.median(w) for n, w in walls.items()}
    out = {"rounds": args.rounds, "walls_s": walls, "median_s": med,
           "ratio_to_first": {n: med[n] / med[names[0]] for n in names},
           # the median of each round's own ratio: both walls of a round saw the same machine load
           "paired_ratio_median": {n: statistics.median(a / b for a, b in zip(walls[n], walls[names[0]]))
                                   for n in names},
           f"budget_{args.budget}_estimate_min": {n: args.budget * med[n] / 60 for n in names},
           "load_avg_1m_end": os.getloadavg()[0], "cpus": os.cpu_count()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(out, indent=2) + "\n")
    for n in names:
        print(f"{n:10s} median {med[n]:6.1f} s per candidate   x{med[n] / med[names[0]]:.2f}   "
              f"--budget {args.budget}: ~{args.budget * med[n] / 60:.0f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
