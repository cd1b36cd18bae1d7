"""Helpers shared by subcommands: building a spec from ``SPEC.json`` or ``--pattern/--scale``."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from composer.errors import UsageError

if TYPE_CHECKING:  # the spec module loads the primitive registry and with it JAX: not at parser build
    from composer.spec import ArchSpec


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
        from composer.spec import load_spec

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


TRAIN_FIELDS = ("steps", "batch_size", "seq_len", "lr", "warmup_frac", "decay_frac", "weight_decay", "grad_clip",
                "eval_every", "eval_batches", "checkpoint_every", "log_every", "seed")
"""The ``TrainConfig`` fields ``composer train`` takes as flags; ``composer fidelity`` takes the recipe's part."""


def train_flags(*fields: str) -> dict[str, tuple]:
    """``--flag -> (TrainConfig field, type, help)`` for ``fields`` (all of ``TRAIN_FIELDS`` when none is
    named): type from the field's default, help from its docstring, so neither is restated here."""
    import dataclasses

    from composer.train_config import TrainConfig

    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    docs = field_docs(TrainConfig)
    return {"--" + f.replace("_", "-"): (f, type(defaults[f]), _first_sentence(docs[f]))
            for f in fields or TRAIN_FIELDS}


def _first_sentence(doc: str) -> str:
    """A field docstring's first sentence, lower-cased and without its full stop (``--help`` style)."""
    first = doc.split(". ")[0].rstrip(".")
    return first[:1].lower() + first[1:]


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
