"""Thin command-line entry point: parse, dispatch, and turn bad input into one line and exit code 2.

Each subcommand lives in ``cli/commands/<name>.py`` with ``add_arguments(parser)`` and
``run(args) -> int``; those modules import heavy dependencies (JAX, Optuna) inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from composer.errors import UsageError

COMMANDS = {
    "inspect": "Parameters, FLOPs and cache bytes of a spec or pattern.",
    "train": "Train and evaluate a spec on a text file or folder.",
    "evaluate": "Score a layout under a registered protocol, exactly as the search does.",
    "protocols": "The registered protocols: what each measures, its cost, what the judges say of it.",
    "extrapolate": "Scale a layout to a target size by stacking or stretching.",
    "search": "Search layouts, aggregate the best, extrapolate the winner.",
    "data": "Fetch the real-text corpus into its cache and show its split.",
    "fidelity": "Train layouts on real text at a target scale and compare with the proxy ranking.",
    "leaderboard": "The per-layout ranking of a run: mean score, standard error, seeds, costs.",
    "export": "The best layouts of a run as ArchSpec JSON or Hugging Face style configs.",
    "report": "A run's figures and ranking as one self-contained HTML file.",
    "dashboard": "optuna-dashboard on a run's study (optional extra).",
}


def _module(name: str):
    return importlib.import_module(f"cli.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="composer", description="Discover hybrid LM architectures.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        try:
            mod = _module(name)
        except ModuleNotFoundError:
            continue  # a command whose module is not present in this build
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UsageError as e:
        print(f"composer {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error of ours.
        sys.stdout = open(os.devnull, "w")
        return 0
    except KeyboardInterrupt:
        print(f"composer {args.command}: interrupted; stored results are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
