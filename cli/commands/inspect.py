"""``composer inspect``: the layout and every analytic cost of a spec."""

from __future__ import annotations

import argparse

from cli.commands._common import add_spec_arguments, print_json, spec_from_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_spec_arguments(p)
    p.add_argument("--seq-len", type=int, default=None, help="context length for FLOPs/cache (default: max_seq_len)")
    p.add_argument("--dtype", default="bfloat16", help="cache dtype for the byte counts (default bfloat16)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def inspect_dict(spec, seq_len=None, dtype="bfloat16") -> dict:
    """The ``inspect --json`` object for ``spec``."""
    from composer.spec import arch_id
    from scaling.counting import cost_report, primitive_counts

    cost = cost_report(spec, seq_len, dtype)
    return {
        "arch_id": arch_id(spec),
        "pattern": spec.pattern,
        "n_layers": spec.n_layers,
        "primitive_counts": primitive_counts(spec),
        "params": cost.params,
        "embedding_params": cost.embedding_params,
        "non_embedding_params": cost.non_embedding_params,
        "flops_per_token": cost.flops_per_token,
        "training_flops_per_token": cost.training_flops_per_token,
        "kv_cache_bytes_per_token": cost.kv_cache_bytes_per_token,
        "kv_cache_bytes_per_sequence": cost.kv_cache_bytes_per_sequence,
        "seq_len": cost.seq_len,
        "cache_dtype": cost.cache_dtype,
        "d_model": spec.d_model,
        "vocab_size": spec.vocab_size,
    }


def _human(n: float) -> str:
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.3g}"


def run(args: argparse.Namespace) -> int:
    from composer.errors import UsageError

    if args.seq_len is not None and args.seq_len < 1:
        raise UsageError(f"--seq-len must be >= 1, got {args.seq_len}")
    spec = spec_from_args(args)
    try:
        info = inspect_dict(spec, args.seq_len, args.dtype)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.json:
        print_json(info)
        return 0
    counts = " ".join(f"{k}x{v}" for k, v in info["primitive_counts"].items())
    print(f"{info['arch_id']}  {info['pattern']}  ({info['n_layers']} layers: {counts})")
    print(f"  params            {_human(info['params'])}  (non-embedding {_human(info['non_embedding_params'])})")
    print(f"  FLOPs/token       {_human(info['flops_per_token'])} forward, "
          f"{_human(info['training_flops_per_token'])} training  @ seq_len {info['seq_len']}")
    print(f"  cache bytes/token {info['kv_cache_bytes_per_token']:.1f}  ({info['cache_dtype']}), "
          f"{_human(info['kv_cache_bytes_per_sequence'])}B per sequence")
    return 0
