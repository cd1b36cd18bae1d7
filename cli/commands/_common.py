"""Helpers shared by subcommands: building a spec from ``SPEC.json`` or ``--pattern/--scale``."""

from __future__ import annotations

import argparse
import json

from composer.errors import UsageError
from composer.spec import ArchSpec, load_spec


def add_spec_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", nargs="?", help="path to an ArchSpec JSON file")
    p.add_argument("--pattern", help="layout as shorthands, e.g. AAMMMM or 2A4M")
    p.add_argument("--layout", help="named layout instead of --pattern (llama, striped_1_2, jamba, samba, ...)")
    p.add_argument("--depth", type=int, default=None, help="layers of the named --layout")
    p.add_argument("--scale", help="named scale for --pattern/--layout (e.g. proxy, 350M, 1B)")
    p.add_argument("--window", type=int, default=None, help="window of sliding-window layers (W)")


def spec_file_or_none(args: argparse.Namespace, missing: str) -> ArchSpec | None:
    """The spec of ``SPEC.json`` when one is given, ``None`` when ``--pattern`` is; exactly one must be
    (``missing`` is the error when neither is)."""
    if args.spec and args.pattern:
        raise UsageError("give either SPEC.json or --pattern, not both")
    if args.spec:
        return load_spec(args.spec)
    if not args.pattern:
        raise UsageError(missing)
    return None


def spec_from_args(args: argparse.Namespace, *, default_scale: str | None = None) -> ArchSpec:
    """The spec named by ``SPEC.json`` or by ``--pattern`` and ``--scale``; errors are UsageError."""
    from composer.presets import layout, spec_from_pattern

    if getattr(args, "layout", None):
        if args.pattern:
            raise UsageError("give either --pattern or --layout, not both")
        if not args.depth:
            raise UsageError("--layout needs --depth N (number of layers)")
        args.pattern = layout(args.layout, args.depth)
    spec = spec_file_or_none(args, "give SPEC.json or --pattern P (with --scale S)")
    if spec is not None:
        return spec
    scale = args.scale or default_scale
    if scale is None:
        raise UsageError("--pattern needs --scale (e.g. --scale 350M); see `composer inspect --help`")
    opts = {"W": {"window": args.window}} if getattr(args, "window", None) else None
    return spec_from_pattern(args.pattern, scale, layer_options=opts)


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))


TRAIN_FLAGS = {  # flag -> (config field, type, help); the defaults live in the config classes only
    "--steps": ("steps", int, "optimiser updates"),
    "--batch-size": ("batch_size", int, "sequences per update"),
    "--seq-len": ("seq_len", int, "tokens per sequence"),
    "--lr": ("lr", float, "peak learning rate (warmup-stable-decay AdamW)"),
    "--warmup-frac": ("warmup_frac", float, "share of steps warming up"),
    "--decay-frac": ("decay_frac", float, "share of steps decaying to the final rate"),
    "--weight-decay": ("weight_decay", float, "AdamW weight decay"),
    "--grad-clip": ("grad_clip", float, "global gradient-norm clip (0: off)"),
    "--eval-every": ("eval_every", int, "steps between evaluations (0: only at the end)"),
    "--eval-batches": ("eval_batches", int, "validation batches per evaluation"),
    "--checkpoint-every": ("checkpoint_every", int, "steps between checkpoints (0: only at the end)"),
    "--log-every": ("log_every", int, "steps between metric syncs"),
    "--seed": ("seed", int, "seed of initialisation and data order"),
}
"""The training flags of ``composer train``; ``composer fidelity`` takes the recipe's part of them."""


def train_flags(*flags: str) -> dict[str, tuple]:
    """The entries of ``TRAIN_FLAGS`` named by ``flags`` (all when none is named)."""
    return {f: TRAIN_FLAGS[f] for f in flags} if flags else dict(TRAIN_FLAGS)


def field_docs(cls) -> dict[str, str]:
    """The attribute docstrings of a dataclass (the string literal right after each field), first sentence
    kept short: what ``--help`` shows, so help and code say the same thing."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr) \
                and isinstance(getattr(nxt, "value", None), ast.Constant) and isinstance(nxt.value.value, str):
            docs[node.target.id] = " ".join(nxt.value.value.split()).replace("``", "").replace("%", "%%")
    return docs


def field_default(cls, name: str) -> str:
    """A dataclass field's real default as ``--help`` shows it (tuples comma-separated)."""
    import dataclasses

    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    return format_default(f.default if f.default is not dataclasses.MISSING else f.default_factory())


def format_default(value) -> str:
    """A default as ``--help`` shows it (tuples comma-separated)."""
    return ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in value) if isinstance(value, tuple) \
        else str(value)


def add_dataclass_flags(p: argparse.ArgumentParser, cls, names: list[str], **extra: dict) -> None:
    """One flag per field of ``cls`` in ``names`` (``--total-depth`` for ``total_depth``), default ``None``
    (not given: the stored or the dataclass default), help from the field's docstring and its real default.
    ``extra[name]`` adds or overrides argparse keywords (``choices``, ``type``, ``metavar``...)."""
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(cls)}
    docs = field_docs(cls)
    for name in names:
        f = fields[name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kw: dict = {"default": None}
        if isinstance(default, bool):
            kw["action"] = "store_true"
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            kw["type"] = type(default)
        kw["help"] = docs.get(name, name) + ("" if default is None else f" (default: {field_default(cls, name)})")
        kw.update(extra.get(name, {}))
        p.add_argument("--" + name.replace("_", "-"), **kw)
