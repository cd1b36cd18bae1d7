"""``composer evaluate``: score a layout under a registered protocol, exactly as the search scores it.

The evaluator is built through the protocol registry (``search.protocols``), the one way every command
builds one, so a layout, protocol, seed and ``--steps-scale`` give the score its leaderboard row has.
"""

from __future__ import annotations

import argparse

from cli.commands._common import print_json, spec_file_or_none


def add_arguments(p: argparse.ArgumentParser) -> None:
    from search.protocols import DEFAULT_PROTOCOL

    p.add_argument("spec", nargs="?", help="path to an ArchSpec JSON file (its layers are used)")
    p.add_argument("--pattern", help="layout as shorthands, e.g. AAMMMM or 2A4M")
    p.add_argument("--window", type=int, default=None, help="window of sliding-window layers (W)")
    p.add_argument("--protocol", default=None, help="a registered protocol (composer protocols lists them; "
                   f"default {DEFAULT_PROTOCOL}, the search's)")
    p.add_argument("--tasks", default=None, help="comma-separated MAD task names (default: all of the protocol's)")
    p.add_argument("--steps-scale", type=float, default=None, help="multiply the protocol's training steps, as "
                   "`composer search --steps-scale` does")
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
        return "".join(pattern)
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
    from search.evaluators import normalize_result
    from search.protocols import DEFAULT_PROTOCOL, evaluator_config, get_protocol_spec

    protocol = args.protocol or DEFAULT_PROTOCOL
    spec = get_protocol_spec(protocol)
    candidate = _candidate(args)
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    if args.steps_scale is not None and args.steps_scale <= 0:
        raise UsageError(f"--steps-scale must be > 0, got {args.steps_scale}")
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip()) if args.tasks else None
    if not isinstance(candidate, str) and spec.kind != "mad":
        raise UsageError(f"protocol {protocol!r} scores a pattern: give --pattern (layer options and spec files "
                         "are for the MAD protocols)")
    # refuses --tasks under a protocol without MAD tasks (the check every command shares)
    config = evaluator_config(protocol, seed=args.seed, tasks=tasks, steps_scale=args.steps_scale)
    try:
        evaluator = config.build()
    except ValueError as e:
        raise UsageError(str(e)) from None
    if spec.kind == "mad":
        return _run_mad(args, evaluator, candidate)
    result = normalize_result(evaluator(candidate, seed=args.seed), evaluator.protocol)
    if args.json:
        print_json(result.to_dict())
    else:
        _print_evaluation(result)
    return 0


def _run_mad(args, evaluator, candidate) -> int:
    """A MAD protocol: the adapter's own evaluator, so layer options and a progress bar are available."""
    if isinstance(candidate, tuple):  # layers with options: a spec at the proxy widths
        candidate = evaluator.spec("M").replace(layers=candidate)
    if args.json:
        result = evaluator.evaluate_full(candidate, seed=args.seed)
        print_json(_summary(result, evaluator.protocol))
        return 0
    bar, update = _progress()
    with bar:
        result = evaluator.evaluate_full(candidate, seed=args.seed, progress=update)
    _print_table(result, evaluator.protocol)
    return 0


def _print_evaluation(result) -> None:
    print(f"{result.arch_id}  {result.pattern}  protocol={result.protocol}  seed={result.seed}")
    for task, value in result.tasks.items():
        print(f"  {task:<26} {value:6.3f}")
    print(f"  {'score':<26} {result.score:6.3f}")
    print(f"  wall {result.wall_s:.1f} s, compile {result.compile_s or 0:.1f} s")


def _summary(result, label: str) -> dict:
    """The result without the per-step sweep rows (kept: per-task curves and timings), under the label
    the search stores (``capacity@steps*0.1`` with ``--steps-scale``)."""
    d = {**result.to_dict(), "protocol": label}
    d["details"] = {t: [{k: s[k] for k in ("acc", "acc_final", "auc", "selection", "lr", "wd", "curve_steps",
                                             "curve_acc", "wall_s", "compile_s")} for s in v]
                    for t, v in d["details"].items()}
    return d


def _print_table(result, label: str) -> None:
    print(f"{result.arch_id}  {result.pattern}  protocol={label}  seed={result.seed}")
    for task, acc in result.tasks.items():
        print(f"  {task:<26} {acc:6.3f}   ({result.steps[task]} steps)")
    print(f"  {'score (mean)':<26} {result.score:6.3f}")
    print(f"  wall {result.wall_s:.1f} s, compile {result.compile_s:.1f} s")
