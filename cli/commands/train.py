"""``composer train``: train a spec or pattern on a text file or folder with the byte tokenizer."""

from __future__ import annotations

import argparse
import os
import sys

from cli.commands._common import add_spec_arguments, field_default, print_json, spec_from_args, train_flags

_FLAGS = train_flags()


def add_arguments(p: argparse.ArgumentParser) -> None:
    from composer.train_config import TrainConfig

    add_spec_arguments(p)
    p.add_argument("--data", required=True, help="a text file or a folder of text files (byte tokenizer)")
    for flag, (field, typ, help_text) in _FLAGS.items():
        p.add_argument(flag, dest=field, type=typ, default=None,
                       help=f"{help_text} (default: {field_default(TrainConfig, field)})")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default=None, help="compute dtype (default float32)")
    p.add_argument("--lrs", default=None, help="a learning-rate grid, comma-separated (e.g. 5e-4,1e-3,2e-3): one "
                                              "run per rate in --out/lr<rate>/, each scored on a dev split of the "
                                              "training text; the best is then scored on validation")
    p.add_argument("--lr-extend", type=int, default=1, help="with --lrs: rates added past an edge of the grid "
                                                           "when the best rate is on it (default 1)")
    p.add_argument("--pack", type=int, default=1,
                   help="with --lrs: train up to this many rates in one compiled program (composer.packed_train; "
                        "the same results to float rounding, no checkpoint until the pack ends; default 1)")
    p.add_argument("--dev-fraction", type=float, default=None,
                   help="share of the training text held out to choose the rate on (default 0.05 with --lrs, "
                        "else 0: no dev split)")
    p.add_argument("--out", default=None, help="run folder (default runs/<arch id>)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")


def _config(args: argparse.Namespace, spec):
    from composer.spec import arch_id
    from composer.train import TrainConfig

    fields = {field: getattr(args, field) for field, _, _ in _FLAGS.values() if getattr(args, field) is not None}
    if args.dtype is not None:
        fields["dtype"] = args.dtype
    return TrainConfig(out_dir=args.out or f"runs/{arch_id(spec)}", **fields)


def run(args: argparse.Namespace) -> int:
    from composer.data import TextSource
    from composer.errors import UsageError
    from composer.lr_grid import DEV_FRACTION, parse_lrs
    from composer.train import DivergenceError, train

    spec = spec_from_args(args)
    config = _config(args, spec)
    _check_memory(spec)
    lrs = parse_lrs(args.lrs) if args.lrs else None
    if args.pack < 1:
        raise UsageError(f"--pack: must be an integer >= 1 (1: one rate at a time), got {args.pack}")
    if args.pack > 1 and not lrs:
        raise UsageError("--pack: packs the rates of a learning-rate grid; give --lrs too (or --pack 1)")
    if lrs and args.lr is not None:
        raise UsageError("--lr and --lrs: give one rate (--lr) or a grid (--lrs), not both")
    if args.lr_extend < 0:
        raise UsageError(f"--lr-extend: must be >= 0, got {args.lr_extend}")
    dev_fraction = args.dev_fraction if args.dev_fraction is not None else (DEV_FRACTION if lrs else 0.0)
    if lrs and not dev_fraction:
        raise UsageError("--dev-fraction: a learning-rate grid needs a dev split (e.g. 0.05)")
    source = TextSource(args.data, dev_fraction=dev_fraction)
    if lrs:
        return _run_grid(args, spec, source, config, lrs)
    try:
        result = train(spec, source, config, resume=args.resume, progress=not args.no_progress)
    except DivergenceError as e:
        print(f"composer train: error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print_json(result.to_dict())
    else:
        _print_result(result)
    return 0


def _run_grid(args, spec, source, config, lrs) -> int:
    """``--lrs``: one run per rate, the best on the dev split scored on validation; ``lr_grid.json``."""
    from composer.atomic import write_json
    from composer.lr_grid import train_grid
    from composer.train import DivergenceError

    say = None if args.no_progress else (lambda text: print(f"composer train: {text}", file=sys.stderr, flush=True))
    try:
        grid = train_grid(spec, source, config, lrs, extend=args.lr_extend, resume=args.resume,
                          progress=not args.no_progress, say=say, pack=args.pack)
    except DivergenceError as e:
        print(f"composer train: error: {e}", file=sys.stderr)
        return 1
    record = grid.to_dict()
    write_json(os.path.join(config.out_dir, "lr_grid.json"), record)
    if args.json:
        print_json(record)
        return 0
    for lr, loss in sorted(grid.dev.items()):
        mark = "  <- chosen" if lr == grid.lr else ""
        print(f"lr {lr:<8g} dev loss {loss:.4f}{mark}")
    edge = " (on the grid's edge: extend --lrs)" if grid.at_edge else ""
    print(f"chosen lr {grid.lr:g}{edge}: validation loss {grid.val_loss:.4f} (SE {grid.val_loss_se:.4f})  "
          f"accuracy {grid.val_accuracy:.4f}")
    print(f"run folders under {config.out_dir} (one per rate; lr_grid.json)")
    return 0


def _check_memory(spec) -> None:
    """Refuse up front a model whose weights, gradients and AdamW moments cannot fit in host RAM.

    Only on the CPU backend, where the alternative is the kernel's OOM killer mid-compile.
    """
    import jax

    from composer.errors import UsageError
    from scaling.counting import total_params

    if jax.default_backend() != "cpu":
        return
    # fp32 params + grads + two AdamW moments (16 B), plus about one more copy for XLA temporaries
    need = 20 * total_params(spec)
    have = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if need > 0.7 * have:
        raise UsageError(f"training {total_params(spec) / 1e9:.2f}B parameters needs about {need / 2**30:.0f} GiB "
                         "(weights, gradients, optimizer state, temporaries), more than 70 % of this machine's "
                         f"{have / 2**30:.0f} GiB. "
                         "Train a smaller scale here (e.g. --scale tiny) or use an accelerator")


def _print_result(result) -> None:
    if result.eval_loss is not None:
        print(f"eval loss {result.eval_loss:.4f}  accuracy {result.eval_accuracy:.4f}  @ step {result.steps}")
    if result.start_step == result.steps:
        print(f"{result.out_dir} had already completed {result.steps} steps; nothing trained")
        return
    print(f"train loss {result.final_train_loss:.4f}  {result.tokens_per_second:,.0f} tokens/s  "
          f"compile {result.compile_seconds:.1f}s")
    print(f"run folder {result.out_dir} (metrics.jsonl, checkpoints/)")
