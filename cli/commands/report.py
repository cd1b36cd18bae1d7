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
    p.add_argument("--json", action="store_true", help="print one JSON object (the report and its figures)")


def run(args: argparse.Namespace) -> int:
    from composer.errors import UsageError
    from search.analysis.html_report import write_report
    from search.analysis.tables import load_run

    if args.top < 1:
        raise UsageError(f"--top: must be >= 1, got {args.top}")
    r = load_run(args.run, args.runs_dir, fidelity=args.fidelity)
    page = Path(write_report(r, Path(args.out) if args.out else r.path / "report", top=args.top))
    if args.json:
        from cli.commands._common import print_json

        print_json({"run": str(r.path), "report": str(page),
                    "figures": sorted(str(p) for p in page.parent.glob("*.png"))})
    else:
        print(page)
    return 0
