"""Compare two search run folders: the leaderboard on every column that does not depend on timing
(``DETERMINISTIC_COLUMNS`` and the ``task_*`` scores) and ``summary.json`` with its timings and paths
left out. Prints the verdict and the leaderboard; exit code 1 when they differ.

    python experiments/compare_runs.py /tmp/cmp/before/tiny /tmp/cmp/after/tiny
"""

import json
import sys
from pathlib import Path

import pandas as pd

VOLATILE = {"wall_s", "run_dir", "runs_dir", "leaderboard", "storage", "compile_s", "eval_wall_s", "sampler_impl"}


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def main(a: str, b: str) -> int:
    from search.results.leaderboard import DETERMINISTIC_COLUMNS

    la, lb = pd.read_parquet(Path(a) / "leaderboard.parquet"), pd.read_parquet(Path(b) / "leaderboard.parquet")
    cols = list(DETERMINISTIC_COLUMNS) + sorted(c for c in la.columns if c.startswith("task_"))
    same_rows = la[cols].reset_index(drop=True).equals(lb[cols].reset_index(drop=True))
    sa = _strip(json.loads((Path(a) / "summary.json").read_text()))
    sb = _strip(json.loads((Path(b) / "summary.json").read_text()))
    diff = sorted(k for k in set(sa) | set(sb) if sa.get(k) != sb.get(k))
    print(f"leaderboard ({len(la)} rows, {len(cols)} columns): {'identical' if same_rows else 'DIFFERENT'}")
    print(f"summary.json without timings and paths: {'identical' if not diff else 'DIFFERENT in ' + ', '.join(diff)}")
    print(la[["pattern", "seed", "phase", "score"]].to_string(index=False))
    return 0 if same_rows and not diff else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
