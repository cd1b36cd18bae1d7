"""``ArchSpec``: the one frozen description of an architecture shared by every package.

Depth is ``len(layers)`` and is never stored twice (docs/conventions.md §1). JSON is only its
serialisation: ``to_json``/``from_json`` round-trip exactly, and loading checks the shipped JSON
Schema first, so a malformed file fails with the field, the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from importlib import resources
from typing import Any

import primitives
from composer.errors import UsageError
from primitives import Dims

__all__ = ["LayerSpec", "ArchSpec", "SpecError", "arch_id", "parse_pattern", "run_length", "load_spec"]

FORMAT_VERSION = 1


class SpecError(UsageError):
    """A spec field has a bad value; the message names the field, the value and what is allowed."""


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in value):
        return {k: _thaw(v) for k, v in value}
    return value


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One layer: a registered primitive (canonical name) and its options (sorted, hashable)."""

    primitive: str
    options: tuple = ()

    def __post_init__(self):
        try:
            cls = primitives.get(self.primitive)
        except KeyError as e:
            raise SpecError(f"layers: {e.args[0]}") from None
        object.__setattr__(self, "primitive", cls.name)
        opts = dict(self.options) if not isinstance(self.options, dict) else self.options
        try:
            cls.check_options(opts)
        except ValueError as e:
            raise SpecError(f"layers: {e}") from None
        object.__setattr__(self, "options", _freeze(dict(opts)))

    @property
    def shorthand(self) -> str:
        return primitives.get(self.primitive).shorthand

    @property
    def option_dict(self) -> dict[str, Any]:
        return {k: _thaw(v) for k, v in self.options}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"primitive": self.primitive}
        if self.options:
            d["options"] = self.option_dict
        return d


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    """A hybrid LM: embedding -> ``layers`` (each ``x + prim(norm(x))``) -> final norm -> LM head."""

    layers: tuple[LayerSpec, ...]
    """Ordered layers; the model depth is ``len(layers)``."""
    d_model: int
    """Residual stream width."""
    n_heads: int
    """Query heads of attention-like primitives."""
    n_kv_heads: int
    """Key/value heads; must divide ``n_heads``."""
    head_dim: int
    """Per-head width."""
    d_ffn: int
    """SwiGLU inner width."""
    vocab_size: int
    """Token vocabulary size."""
    max_seq_len: int = 2048
    """Longest sequence the model is built for."""
    rope_theta: float = 500_000.0
    """RoPE base frequency."""
    tie_embeddings: bool = True
    """Share the token embedding with the LM head."""
    norm_eps: float = 1e-5
    """RMSNorm epsilon."""

    def __post_init__(self):
        layers = tuple(l if isinstance(l, LayerSpec) else LayerSpec(**l) for l in self.layers)
        object.__setattr__(self, "layers", layers)
        if not layers:
            raise SpecError("layers: must hold at least one layer; got an empty list")
        for name in ("d_model", "n_heads", "n_kv_heads", "head_dim", "d_ffn", "vocab_size", "max_seq_len"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise SpecError(f"{name}: must be a positive integer, got {v!r}")
        if self.n_heads % self.n_kv_heads:
            raise SpecError(f"n_kv_heads: must divide n_heads={self.n_heads}, got {self.n_kv_heads}")
        if not (self.rope_theta > 0):
            raise SpecError(f"rope_theta: must be > 0, got {self.rope_theta!r}")
        if not (0 < self.norm_eps < 1):
            raise SpecError(f"norm_eps: must be in (0, 1), got {self.norm_eps!r}")
        object.__setattr__(self, "rope_theta", float(self.rope_theta))
        object.__setattr__(self, "norm_eps", float(self.norm_eps))

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def pattern(self) -> str:
        """Shorthand string, e.g. ``AAMMMM``."""
        return "".join(l.shorthand for l in self.layers)

    @property
    def dims(self) -> Dims:
        return Dims(self.d_model, self.n_heads, self.n_kv_heads, self.head_dim, self.d_ffn,
                    self.rope_theta, self.max_seq_len)

    def replace(self, **changes) -> "ArchSpec":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["layers"] = [l.to_dict() for l in self.layers]
        return {"format_version": FORMAT_VERSION, **d}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any) -> "ArchSpec":
        _validate_schema(data)
        data = {k: v for k, v in data.items() if k != "format_version"}
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "ArchSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"spec is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
        return cls.from_dict(data)


def _schema() -> dict:
    text = resources.files("composer").joinpath("schema/archspec.schema.json").read_text()
    return json.loads(text)


def _validate_schema(data: Any) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = ".".join(str(p) for p in e.absolute_path) or "<spec>"
        raise SpecError(f"{where}: {e.message} (schema rule {e.validator!r}: {e.validator_value!r})")


def load_spec(path: str) -> ArchSpec:
    """Read and validate an ``ArchSpec`` JSON file."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise SpecError(f"cannot read spec file {path!r}: {e.strerror}") from None
    return ArchSpec.from_json(text)


def run_length(pattern: str) -> str:
    """``AAMMMM`` -> ``2A4M`` (a run of one is written ``1A``)."""
    return "".join(f"{len(m.group(0))}{m.group(1)}" for m in re.finditer(r"(.)\1*", pattern))


_RUN = re.compile(r"(\d*)([A-Za-z])")


def parse_pattern(pattern: str, field: str = "pattern") -> str:
    """Accept ``AAMMMM`` or run-length ``2A4M``; return the expanded shorthand string.

    Raises ``SpecError`` naming ``field`` (the flag or key the user wrote), the bad character and the
    registered shorthands; a run of zero layers (``0A4M``) is refused, not dropped.
    """
    text = pattern.replace(" ", "").replace(",", "")
    if not text or _RUN.sub("", text):
        raise SpecError(f"{field}: {pattern!r} is not a layout; write shorthands like 'AAMMMM' or '2A4M'")
    runs = _RUN.findall(text)
    zero = [f"{n}{ch}" for n, ch in runs if n and int(n) == 0]
    if zero:
        raise SpecError(f"{field}: {pattern!r} has a run of zero layers ({', '.join(zero)}); leave it out or give "
                        "a count >= 1")
    out = "".join(ch.upper() * (int(n) if n else 1) for n, ch in runs)
    valid = primitives.shorthands()
    bad = sorted(set(out) - set(valid))
    if bad:
        allowed = ", ".join(f"{k}={v}" for k, v in valid.items())
        raise SpecError(f"{field}: unknown primitive shorthand(s) {bad} in {pattern!r}; registered: {allowed}")
    if not out:
        raise SpecError(f"{field}: {pattern!r} has no layers")
    return out


def arch_id(spec: ArchSpec) -> str:
    """Readable run-length pattern plus a short content hash, e.g. ``2A4M-3f9c1e``."""
    digest = hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()[:6]
    return f"{run_length(spec.pattern)}-{digest}"
