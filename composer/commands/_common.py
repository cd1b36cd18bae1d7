"""Helpers shared by subcommands: building a spec from ``SPEC.json`` or ``--pattern/--scale``."""

from __future__ import annotations

import argparse
import json

from composer.errors import UsageError
from composer.spec import ArchSpec, load_spec


def add_spec_arguments(p: argparse.ArgumentParser, *, require_scale: bool = False) -> None:
    p.add_argument("spec", nargs="?", help="path to an ArchSpec JSON file")
    p.add_argument("--pattern", help="layout as shorthands, e.g. AAMMMM or 2A4M")
    p.add_argument("--layout", help="named layout instead of --pattern (llama, striped_1_2, jamba, samba, ...)")
    p.add_argument("--depth", type=int, default=None, help="layers of the named --layout")
    p.add_argument("--scale", help="named scale for --pattern/--layout (e.g. proxy, 350M, 1B)")
    p.add_argument("--window", type=int, default=None, help="window of sliding-window layers (W)")


def spec_from_args(args: argparse.Namespace, *, default_scale: str | None = None) -> ArchSpec:
    """The spec named by ``SPEC.json`` or by ``--pattern`` and ``--scale``; errors are UsageError."""
    from composer.presets import layout, spec_from_pattern

    if getattr(args, "layout", None):
        if args.pattern:
            raise UsageError("give either --pattern or --layout, not both")
        if not args.depth:
            raise UsageError("--layout needs --depth N (number of layers)")
        args.pattern = layout(args.layout, args.depth)
    if args.spec and args.pattern:
        raise UsageError("give either SPEC.json or --pattern, not both")
    if args.spec:
        return load_spec(args.spec)
    if not args.pattern:
        raise UsageError("give SPEC.json or --pattern P (with --scale S)")
    scale = args.scale or default_scale
    if scale is None:
        raise UsageError("--pattern needs --scale (e.g. --scale 350M); see `composer inspect --help`")
    opts = {"W": {"window": args.window}} if getattr(args, "window", None) else None
    return spec_from_pattern(args.pattern, scale, layer_options=opts)


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))
