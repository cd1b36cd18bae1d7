"""How far two search runs' scores are apart: the same search before and after a change to the code.

For every (phase, layout, seed) both runs evaluated: the largest absolute score difference; for the
layouts both scored at the first search seed: Kendall's tau between the two orders and the pairs
they order differently (with their gaps); and each run's winner.

    .venv/bin/python experiments/bench/compare_scores.py RUN_A RUN_B [--json OUT]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path


def scores(frame) -> dict[tuple[str, str, int], float]:
    """A leaderboard's finished scores by ``(phase, pattern, seed)``."""
    return {(r.phase, r.pattern, int(r.seed)): float(r.score) for r in frame[frame.status == "ok"].itertuples()}


def compare(a: Path, b: Path) -> dict:
    from scipy.stats import kendalltau

    from search.results.leaderboard import read_leaderboard

    frames = [read_leaderboard(p) for p in (a, b)]
    scores_ = [scores(df) for df in frames]
    common = sorted(set(scores_[0]) & set(scores_[1]))
    diffs = [abs(scores_[0][k] - scores_[1][k]) for k in common]
    first = [df[(df.status == "ok") & (df.phase == "search")] for df in frames]
    seed0 = [dict(zip(f.pattern, f.score)) for f in (x[x.seed == x.seed.min()] for x in first)]
    layouts = sorted(set(seed0[0]) & set(seed0[1]))
    swapped = [(p, q, seed0[0][p] - seed0[0][q], seed0[1][p] - seed0[1][q])
               for p, q in itertools.combinations(layouts, 2)
               if (seed0[0][p] - seed0[0][q]) * (seed0[1][p] - seed0[1][q]) < 0]
    tau = kendalltau([seed0[0][p] for p in layouts], [seed0[1][p] for p in layouts]).statistic
    winners = [json.loads((p / "summary.json").read_text()).get("proxy", {}).get("pattern") for p in (a, b)]
    return {"a": str(a), "b": str(b), "common_evaluations": len(common), "max_abs_score_diff": max(diffs, default=None),
            "median_abs_score_diff": sorted(diffs)[len(diffs) // 2] if diffs else None,
            "seed0_layouts": len(layouts), "seed0_kendall": tau,
            "seed0_swapped_pairs": [{"pair": [p, q], "gap_a": ga, "gap_b": gb} for p, q, ga, gb in swapped],
            "winners": winners}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_a", type=Path)
    p.add_argument("run_b", type=Path)
    p.add_argument("--json", type=Path, help="also write the comparison here")
    args = p.parse_args(argv)
    out = compare(args.run_a, args.run_b)
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        from composer.atomic import write_text

        write_text(args.json, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
