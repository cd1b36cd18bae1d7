"""``composer extrapolate``: scale a small layout to a named target scale by stacking or stretching."""

from __future__ import annotations

import argparse
import os

from cli.commands._common import add_spec_arguments, print_json, spec_from_args
from composer.errors import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_spec_arguments(p)
    # Validated in run (not argparse ``choices``) so a bad value is one line and exit code 2 in-process.
    p.add_argument("--rule", default="auto",
                   help="stack, stretch or auto (stack up to 8 layers, stretch deeper; default auto)")
    p.add_argument("--match", default="params",
                   help="size matching after the rule: params (within 2 %% of the scale's Llama shape in "
                        "non-embedding parameters; default), flops (layer FLOPs per token) or none (the rule alone)")
    p.add_argument("--out", help="write the extrapolated ArchSpec JSON to this file")
    p.add_argument("--json", action="store_true", help="print one JSON object (inspect keys plus rule, scale, ...)")


def _write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically; an unwritable folder is a usage error."""
    from composer.atomic import write_text

    try:
        write_text(os.path.abspath(path), text)
    except OSError as e:
        raise UsageError(f"--out: cannot write {path!r}: {e.strerror}") from None


def result_dict(result) -> dict:
    """The ``--json`` object: ``inspect --json`` keys plus how the layout was extrapolated."""
    from cli.commands.inspect import inspect_dict

    return {**inspect_dict(result.spec), "source_pattern": result.source_pattern, "rule": result.rule,
            "scale": result.scale, "target_non_embedding_params": result.target_non_embedding_params,
            "M": result.M, "m": result.m, "s": result.s, "overshoot_ratio": result.overshoot_ratio,
            "match": result.match, "param_ratio": result.param_ratio, "flops_per_token_layers": result.flops_per_token,
            "flops_ratio": result.flops_ratio}


def _print_human(result, requested: str) -> None:
    from composer.spec import arch_id, run_length
    from scaling.extrapolate import AUTO_STACK_MAX_DEPTH

    how = {"stack": "stacking", "stretch": "stretching"}[result.rule]
    n = len(result.source_pattern)
    why = f" (auto: {n} layers {'<=' if n <= AUTO_STACK_MAX_DEPTH else '>'} {AUTO_STACK_MAX_DEPTH})"
    why = why if requested == "auto" else ""
    spec = result.spec
    print(f"{run_length(result.source_pattern)} -> {result.scale} by {how}{why}")
    print(f"  source  {run_length(result.source_pattern)}  ({len(result.source_pattern)} layers)")
    print(f"  target  {run_length(spec.pattern)}  ({spec.n_layers} layers)  {arch_id(spec)}")
    print(f"  params  {result.non_embedding_params:,} non-embedding vs {result.target_non_embedding_params:,} "
          f"target (Llama {result.scale}): {100 * (result.overshoot_ratio - 1):+.3g} %")
    print(f"  flops   {result.flops_per_token:,} layer FLOPs/token at {result.seq_len} vs "
          f"{result.target_flops_per_token:,}: {100 * (result.flops_ratio - 1):+.3g} %")
    print(f"  M = {result.M:,}  m = {result.m:,}  s = M/m = {result.s:.4f}  (layer params, final norm excluded)")
    widths = sorted({(l.shorthand, k, v) for l in spec.layers for k, v in l.option_dict.items()
                     if k in ("d_ffn", "n_heads")})
    if result.match != "none":
        told = ", ".join(f"{s} {k}={v}" for s, k, v in widths) or "none needed"
        print(f"  matched by {result.match}: depth chosen among the rule's, then widths ({told})")


def run(args: argparse.Namespace) -> int:
    from composer.presets import get_scale
    from scaling.extrapolate import RULES, extrapolate
    from scaling.matching import MATCHES

    if not args.scale:
        raise UsageError("--scale is required (the target scale, e.g. --scale 1B)")
    get_scale(args.scale)
    if args.rule not in RULES:
        raise UsageError(f"--rule: unknown rule {args.rule!r}; valid rules: {', '.join(RULES)}")
    if args.match not in MATCHES:
        raise UsageError(f"--match: unknown match {args.match!r}; valid: {', '.join(MATCHES)}")
    spec = spec_from_args(args)
    result = extrapolate(spec, args.scale, args.rule, match=args.match)
    if args.out:
        _write_atomic(args.out, result.spec.to_json() + "\n")
    if args.json:
        print_json(result_dict(result))
    else:
        _print_human(result, args.rule)
        if args.out:
            print(f"  wrote {args.out}")
    return 0
