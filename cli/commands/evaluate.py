"""``composer evaluate``: score a layout on the MAD proxy tasks (mean task accuracy = search objective)."""

from __future__ import annotations

import argparse

from cli.commands._common import print_json, spec_file_or_none


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", nargs="?", help="path to an ArchSpec JSON file (its layers are used)")
    p.add_argument("--pattern", help="layout as shorthands, e.g. AAMMMM or 2A4M")
    p.add_argument("--window", type=int, default=None, help="window of sliding-window layers (W)")
    p.add_argument("--protocol", default="cpu", help="proxy protocol: cpu (default: the six tasks), capacity (the "
                   "search's default), paper or paper-full")
    p.add_argument("--tasks", default=None, help="comma-separated task names (default: all six)")
    p.add_argument("--seed", type=int, default=0, help="seed of data and initialisation (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _candidate(args: argparse.Namespace):
    from composer.errors import UsageError
    from composer.spec import LayerSpec, parse_pattern

    spec = spec_file_or_none(args, "give --pattern P (e.g. AAMMMM) or SPEC.json")
    if spec is not None:
        return spec
    if args.window is not None and args.window < 1:
        raise UsageError(f"--window must be >= 1, got {args.window}")
    pattern = parse_pattern(args.pattern)
    if args.window is None:
        return pattern
    return tuple(LayerSpec(ch, (("window", args.window),) if ch == "W" else ()) for ch in pattern)


def _progress():
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeElapsedColumn(), console=Console(stderr=True), transient=True)
    state: dict = {}

    def update(task, done, total):
        if "id" not in state:
            state["id"] = bar.add_task("evaluating", total=total)
        bar.update(state["id"], completed=done, description=f"training {task}" if task else "done")

    return bar, update


def run(args: argparse.Namespace) -> int:
    from composer.errors import UsageError
    from composer.mad.evaluate import check_tasks
    from composer.mad.protocol import get_protocol

    candidate = _candidate(args)
    protocol = get_protocol(args.protocol)
    tasks = check_tasks(args.tasks, protocol)
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")

    from composer.mad.evaluate import Evaluator

    evaluator = Evaluator(protocol)
    if isinstance(candidate, tuple):  # layers with options: an ArchSpec at the proxy widths
        candidate = evaluator.proxy_spec("M").replace(layers=candidate)
    if args.json:
        result = evaluator.evaluate(candidate, seed=args.seed, tasks=tasks)
        print_json(_summary(result))
        return 0
    bar, update = _progress()
    with bar:
        result = evaluator.evaluate(candidate, seed=args.seed, tasks=tasks, progress=update)
    _print_table(result)
    return 0


def _summary(result) -> dict:
    """The result without the per-step sweep rows (kept: per-task curves and timings)."""
    d = result.to_dict()
    d["details"] = {t: [{k: s[k] for k in ("acc", "acc_final", "auc", "selection", "lr", "wd", "curve_steps",
                                             "curve_acc", "wall_s", "compile_s")} for s in v]
                    for t, v in d["details"].items()}
    return d


def _print_table(result) -> None:
    print(f"{result.arch_id}  {result.pattern}  protocol={result.protocol}  seed={result.seed}")
    for task, acc in result.tasks.items():
        print(f"  {task:<26} {acc:6.3f}   ({result.steps[task]} steps)")
    print(f"  {'score (mean)':<26} {result.score:6.3f}")
    print(f"  wall {result.wall_s:.1f} s, compile {result.compile_s:.1f} s")
