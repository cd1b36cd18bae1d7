"""``composer report RUN``: the run's figures and ranking as one self-contained HTML file plus PNGs."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run folder, or a run name under --runs-dir")
    p.add_argument("--out", default=None, help="output folder (default <run>/report)")
    p.add_argument("--top", type=int, default=20, help="layouts in the table and bar chart (default 20)")
    p.add_argument("--fidelity", default=None, help="a composer fidelity study (folder or name) to show beside "
                   "the proxy scores")
    p.add_argument("--runs-dir", default="runs", help="parent folder of runs (default runs/)")


def run(args: argparse.Namespace) -> int:
    from search.analysis.html_report import write_report
    from search.analysis.tables import load_run

    r = load_run(args.run, args.runs_dir, fidelity=args.fidelity)
    print(write_report(r, Path(args.out) if args.out else r.path / "report", top=args.top))
    return 0
