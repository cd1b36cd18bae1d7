"""``composer export RUN``: the best layouts of a run as ArchSpec JSON or Hugging Face style configs."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run folder, or a run name under --runs-dir")
    p.add_argument("--top", type=int, default=1, help="how many of the best layouts (default 1)")
    p.add_argument("--scale", default=None, help="target scale (default: the run's)")
    p.add_argument("--rule", default=None, help="extrapolation rule (default: the run's)")
    p.add_argument("--format", default="archspec", help="archspec (default, lossless), hf (a config.json with the "
                   "spec embedded) or nemotron-h (transformers and Megatron-LM; layouts of A, M, S)")
    p.add_argument("--out", default=None, help="output folder (default <run>/export-<scale>)")
    p.add_argument("--runs-dir", default="runs", help="parent folder of runs (default runs/)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the files written)")


def run(args: argparse.Namespace) -> int:
    from composer.errors import UsageError
    from search.analysis.export import export_run
    from search.analysis.tables import load_run

    if args.top < 1:
        raise UsageError(f"--top: must be >= 1, got {args.top}")
    r = load_run(args.run, args.runs_dir)
    scale = args.scale or (r.summary.get("settings") or {}).get("scale") or "350M"
    out = Path(args.out) if args.out else r.path / f"export-{scale}"
    paths = [str(p) for p in export_run(r, args.top, out, scale=scale, fmt=args.format, rule=args.rule)]
    if args.json:
        from cli.commands._common import print_json

        print_json({"run": str(r.path), "scale": scale, "format": args.format, "files": paths})
    else:
        print("\n".join(paths))
    return 0
