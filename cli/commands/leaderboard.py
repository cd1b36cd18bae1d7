"""``composer leaderboard RUN``: the per-layout ranking of a run (mean, standard error, seeds, costs)."""

from __future__ import annotations

import argparse
import json
import math


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run folder, or a run name under --runs-dir")
    p.add_argument("--top", type=int, default=20, help="layouts shown (default 20)")
    p.add_argument("--runs-dir", default="runs", help="parent folder of runs (default runs/)")
    p.add_argument("--rebuild", action="store_true", help="first rewrite the run's leaderboard.parquet and "
                   "layouts.parquet from its study.db (when they are lost or damaged)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON records")
    out.add_argument("--csv", action="store_true", help="print CSV")


COLUMNS = ["rank", "pattern", "score_mean", "score_se", "n_seeds", "protocol", "target_params",
           "target_kv_cache_bytes", "target_pattern"]


def run(args: argparse.Namespace) -> int:
    from composer.errors import UsageError
    from search.analysis.tables import load_run

    if args.top < 1:
        raise UsageError(f"--top: must be >= 1, got {args.top}")
    if args.rebuild:
        import sys
        from pathlib import Path

        from search.run import rebuild_tables

        run_dir = Path(args.run) if Path(args.run).is_dir() else Path(args.runs_dir) / args.run
        if not run_dir.is_dir():
            raise UsageError(f"RUN: no run folder at {args.run!r} (looked for {run_dir})")
        n = rebuild_tables(run_dir)
        print(f"composer leaderboard: rebuilt {run_dir / 'leaderboard.parquet'} from study.db ({n} rows)",
              file=sys.stderr)
    view = load_run(args.run, args.runs_dir).layouts.head(args.top)[COLUMNS]
    if args.csv:
        print(view.to_csv(index=False), end="")
    elif args.json:
        records = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                   for r in view.to_dict("records")]
        print(json.dumps(records, indent=2, default=int))
    else:
        _table(view, args.run)
    return 0


def _table(view, name: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{name}: layouts by mean proxy score")
    for col, label in (("rank", "#"), ("pattern", "layout"), ("score_mean", "score"), ("score_se", "± SE"),
                       ("n_seeds", "seeds"), ("target_params", "params at target"),
                       ("target_kv_cache_bytes", "KV bytes at target")):
        table.add_column(label, justify="left" if col == "pattern" else "right")
    for r in view.to_dict("records"):
        se = "n/a" if not math.isfinite(r["score_se"]) else f"{r['score_se']:.4f}"
        table.add_row(str(r["rank"]), r["pattern"], f"{r['score_mean']:.4f}", se, str(r["n_seeds"]),
                      f"{r['target_params']:,.0f}" if r["target_params"] is not None else "-",
                      f"{r['target_kv_cache_bytes']:,.0f}" if r["target_kv_cache_bytes"] is not None else "-")
    Console().print(table)
