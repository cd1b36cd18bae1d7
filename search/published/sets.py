"""Published sets: layouts trained at scale with their reported loss, as versioned data (``sets/*.json``).

A set is one table of one paper: layouts that differ in where their attention goes, how much of it
there is, or which primitives they mix, each with its published value (loss, NLL or perplexity,
lower is better), at the published depth, in the project's notation (docs/published.md):
``A`` attention, ``W`` sliding-window attention, ``M`` SwiGLU/FFN, ``S`` Mamba-2, ``G`` Gated DeltaNet
(or a delta-rule relative), ``L`` GLA; ``(XY)x3`` repeats a group, ``S^4`` repeats a layer, and plain
run-length (``2A4M``) is accepted too.

A file is checked in full when it is read; an error names the file, the field and the fix.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from composer.errors import UsageError
from composer.jsontypes import JSONValue, Record

__all__ = ["Citation", "Noise", "PublishedLayout", "PublishedSet", "SETS_DIR", "MIN_LAYOUTS", "expand", "load_set",
           "set_names", "resolve_sets"]

SETS_DIR = Path(__file__).with_name("sets")
MIN_LAYOUTS = 4
"""Fewer layouts than this give a rank correlation with no usable interval (n = 3 has 6 orders)."""

NOISE_KINDS = ("seed_sd", "relative_sd", "cross_scale", "none")
_REQUIRED = ("name", "title", "citation", "scale", "tokens", "dataset", "metric", "direction", "noise",
             "heuristic", "layouts")


@dataclasses.dataclass(frozen=True)
class PublishedLayout:
    """One published model: its layout at published depth and its reported value."""

    label: str
    layout: str
    """Expanded shorthand string, one letter a layer (``AMSM...``)."""
    value: float
    """The published value (seed mean when ``values`` holds several runs)."""
    design: str
    """Name of the design across scales (rows of two sets with one design are the same model family)."""
    values: tuple[float, ...] = ()


@dataclasses.dataclass(frozen=True)
class Citation(Record):
    """Where the set's values were read: the paper and its table."""

    authors: str
    year: int | str
    title: str
    arxiv: str
    version: str = ""
    """The paper's version or venue (``v3``, ``ICML 2024``) the values were read from."""
    table: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, JSONValue]) -> Citation:
        """``KeyError`` naming a missing field; ``version`` and ``table`` are optional."""
        return cls(authors=str(d["authors"]), year=d["year"], title=str(d["title"]), arxiv=str(d["arxiv"]),
                   version=str(d.get("version", "")), table=str(d.get("table", "")))


@dataclasses.dataclass(frozen=True)
class Noise(Record):
    """How noisy the published values are, which sets the set's ceiling (docs/published.md)."""

    kind: str
    """One of ``NOISE_KINDS``."""
    value: float | None = None
    """``seed_sd``: in the metric's units; ``relative_sd``: a fraction of each value."""
    note: str = ""
    other_set: str = ""
    """``cross_scale``: the set of the same designs at another scale."""

    @classmethod
    def from_dict(cls, d: dict[str, JSONValue]) -> Noise:
        """``ValueError`` for a ``value`` that is not a number."""
        value = d.get("value")
        return cls(kind=str(d["kind"]), value=None if value is None else float(value), note=str(d.get("note", "")),
                   other_set=str(d.get("other_set", "")))


@dataclasses.dataclass(frozen=True)
class PublishedSet:
    name: str
    title: str
    citation: Citation
    reliability: str
    scale: str
    tokens: str
    dataset: str
    metric: str
    direction: str
    noise: Noise
    heuristic: str
    layouts: tuple[PublishedLayout, ...]
    notes: tuple[str, ...] = ()
    params: str = ""
    parameter_matching: str = ""
    mapping: str = "params"
    """``params``: mapped depth with matched parameters (``search.published.mapping``); ``none``: always
    the published depth."""
    path: str = ""

    def cite(self) -> str:
        c = self.citation
        table = f", {c.table}" if c.table else ""
        return f"{c.authors} {c.year}, \"{c.title}\", arXiv {c.arxiv}{table}"


def _fail(path: Path, msg: str) -> UsageError:
    return UsageError(f"published set {path.name}: {msg}; fix the file (format: docs/published.md)")


_TOKEN = re.compile(r"\(|\)(?:x(\d+))?|([A-Za-z])(?:\^(\d+))?|(\d+)([A-Za-z])")


def expand(notation: str) -> str:
    """``(SM)x2AM`` -> ``SMSMAM``; ``S^3A`` -> ``SSSA``; ``2A4M`` -> ``AAMMMM``. Raises ``ValueError``."""
    text = notation.replace(" ", "")
    stack: list[list[str]] = [[]]
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"cannot read {notation!r} at {text[pos:]!r}")
        tok = m.group(0)
        if tok == "(":
            stack.append([])
        elif tok.startswith(")"):
            if len(stack) == 1:
                raise ValueError(f"unbalanced ')' in {notation!r}")
            group = "".join(stack.pop())
            stack[-1].append(group * int(m.group(1) or 1))
        elif m.group(2):
            stack[-1].append(m.group(2).upper() * int(m.group(3) or 1))
        else:
            stack[-1].append(m.group(5).upper() * int(m.group(4)))
        pos = m.end()
    if len(stack) != 1:
        raise ValueError(f"unbalanced '(' in {notation!r}")
    out = "".join(stack[0])
    if not out:
        raise ValueError(f"{notation!r} has no layers")
    return out


def _layout(path: Path, i: int, row: JSONValue) -> PublishedLayout:
    from composer.spec import parse_pattern

    where = f"layouts[{i}]"
    if not isinstance(row, dict) or "layout" not in row or "value" not in row:
        raise _fail(path, f"{where} needs 'layout' and 'value'")
    try:
        layout = parse_pattern(expand(str(row["layout"])))
    except ValueError as e:  # SpecError is a ValueError: an unknown primitive letter
        raise _fail(path, f"{where}.layout: {e}") from None
    try:
        value = float(row["value"])
    except (TypeError, ValueError):
        raise _fail(path, f"{where}.value must be a number, got {row['value']!r}") from None
    try:
        values = tuple(float(v) for v in row.get("values", ()))
    except (TypeError, ValueError):
        raise _fail(path, f"{where}.values must be a list of numbers, got {row['values']!r}") from None
    label = str(row.get("label") or row["layout"])
    return PublishedLayout(label=label, layout=layout, value=value, design=str(row.get("design", label)),
                           values=values)


def load_set(path: str | Path) -> PublishedSet:
    """Read and check one set file."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except OSError as e:
        raise UsageError(f"published set {path}: cannot read it ({e.strerror})") from None
    except ValueError as e:
        raise _fail(path, f"not valid JSON ({e})") from None
    if not isinstance(raw, dict):
        raise _fail(path, "the file must hold one JSON object")
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise _fail(path, f"missing field(s) {missing}")
    if raw["direction"] not in ("lower", "higher"):
        raise _fail(path, f"direction must be 'lower' or 'higher', got {raw['direction']!r}")
    if not isinstance(raw["layouts"], list):
        raise _fail(path, "layouts must be a list of {label, layout, value}")
    if not isinstance(raw["noise"], dict) or raw["noise"].get("kind") not in NOISE_KINDS:
        raise _fail(path, f"noise.kind must be one of {', '.join(NOISE_KINDS)}")
    try:
        noise = Noise.from_dict(raw["noise"])
    except (TypeError, ValueError):
        raise _fail(path, f"noise.value must be a number, got {raw['noise']['value']!r}") from None
    if not isinstance(raw["citation"], dict):
        raise _fail(path, "citation must be an object with authors, year, title and arxiv")
    try:
        citation = Citation.from_dict(raw["citation"])
    except KeyError as e:
        raise _fail(path, f"citation.{e.args[0]} is missing") from None
    from search.published.heuristics import HEURISTICS

    if raw["heuristic"] not in HEURISTICS:
        raise _fail(path, f"heuristic: unknown {raw['heuristic']!r}; valid: {', '.join(HEURISTICS)}")
    layouts = tuple(_layout(path, i, r) for i, r in enumerate(raw["layouts"]))
    if len(layouts) < MIN_LAYOUTS:
        raise _fail(path, f"{len(layouts)} layouts; a set needs at least {MIN_LAYOUTS} for a rank correlation")
    if raw.get("mapping", "params") not in ("params", "none"):
        raise _fail(path, f"mapping must be 'params' or 'none', got {raw['mapping']!r}")
    fields = {f.name for f in dataclasses.fields(PublishedSet)}
    kept = {k: v for k, v in raw.items() if k in fields and k not in ("layouts", "notes", "citation", "noise")}
    kept.setdefault("reliability", "primary")
    return PublishedSet(**kept, citation=citation, noise=noise, layouts=layouts, notes=tuple(raw.get("notes", ())),
                        path=str(path))


def set_names() -> list[str]:
    """The sets shipped with Composer, by name."""
    return sorted(p.stem for p in SETS_DIR.glob("*.json"))


def resolve_sets(spec: str) -> list[PublishedSet]:
    """``all``, or comma-separated shipped set names and/or paths of set files."""
    items = [s.strip() for s in spec.split(",") if s.strip()]
    if not items:
        raise UsageError("--published: give set names, 'all' or set files; list: " + ", ".join(set_names()))
    if items == ["all"]:
        items = set_names()
    out = []
    for item in items:
        path = SETS_DIR / f"{item}.json"
        if not path.exists():
            path = Path(item)
            if path.suffix != ".json" or not path.exists():
                raise UsageError(f"--published: unknown set {item!r}; shipped sets: {', '.join(set_names())} "
                                 "(or 'all', or the path of a set file)")
        out.append(load_set(path))
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise UsageError(f"--published: a set is named twice ({', '.join(names)})")
    return out
