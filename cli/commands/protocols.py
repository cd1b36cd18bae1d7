"""``composer protocols``: the registered protocols (``search.protocols``), the names every
``--protocol`` accepts."""

from __future__ import annotations

import argparse

from cli.commands._common import print_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from search.protocols import DEFAULT_PROTOCOL, get_protocol_spec, protocol_names

    specs = [get_protocol_spec(n) for n in protocol_names()]
    if args.json:
        print_json({"default": DEFAULT_PROTOCOL, "protocols": [dataclasses.asdict(s) for s in specs]})
        return 0
    for s in specs:
        mark = "  (default)" if s.name == DEFAULT_PROTOCOL else ""
        print(f"{s.name}{mark}  [{s.kind}]  {s.measures}")
        print(f"    cost: {s.cost}")
        print(f"    judged: {s.fidelity}")
    return 0
