"""The primitive contract: one abstract base and a registry by name and shorthand.

A primitive maps ``[b, t, d] -> [b, t, d]`` (docs/method.md §1). Every primitive supports a parallel
forward, a one-token decode ``step`` with its cache or recurrent state, and pure analytic costs
(parameters, forward FLOPs per token, cache/state bytes) that ``scaling.counting`` builds on.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["Dims", "Primitive", "register", "get", "names", "shorthands", "resolve", "REGISTRY"]


@dataclasses.dataclass(frozen=True)
class Dims:
    """Widths shared by every layer of a model (the part of an ``ArchSpec`` a primitive needs)."""

    d_model: int
    """Residual stream width ``d``."""
    n_heads: int
    """Query heads of attention-like primitives."""
    n_kv_heads: int
    """Key/value heads (grouped-query attention); divides ``n_heads``."""
    head_dim: int
    """Per-head width ``k``."""
    d_ffn: int
    """Inner width of the SwiGLU MLP."""
    rope_theta: float = 500_000.0
    """RoPE base frequency (Llama-3 value by default)."""
    max_seq_len: int = 2048
    """Longest sequence a model is built for (sizes full-attention caches)."""


class Primitive(nnx.Module):
    """Abstract base of every primitive.

    Subclasses set ``name``, ``shorthand`` and ``OPTIONS`` (allowed layer options with defaults)
    and implement ``__call__``, ``init_state``, ``step`` and the three cost class methods.
    Options are validated by ``check_options`` so errors name the option and what is allowed.
    """

    name: ClassVar[str]
    shorthand: ClassVar[str]
    OPTIONS: ClassVar[dict[str, Any]] = {}
    POSITIVE_INT_OPTIONS: ClassVar[tuple[str, ...]] = ()
    """Options that must be positive integers (``None`` allowed where the default is ``None``)."""

    def __call__(self, x: jax.Array) -> jax.Array:  # [b, t, d] -> [b, t, d]
        raise NotImplementedError

    def init_state(self, batch: int, max_len: int, dtype=jnp.float32) -> Any:
        """Decode cache/state for ``batch`` sequences of up to ``max_len`` tokens."""
        raise NotImplementedError

    def step(self, x: jax.Array, state: Any, pos: jax.Array) -> tuple[jax.Array, Any]:
        """One decode step: ``x`` is ``[b, 1, d]`` at absolute position ``pos`` (int scalar)."""
        raise NotImplementedError

    @classmethod
    def param_count(cls, dims: Dims, **options) -> int:
        raise NotImplementedError

    @classmethod
    def flops_per_token(cls, dims: Dims, seq_len: int, **options) -> int:
        """Forward FLOPs per token (2 per multiply-add) at context length ``seq_len``."""
        raise NotImplementedError

    @classmethod
    def state_bytes(cls, dims: Dims, seq_len: int, dtype_bytes: int, **options) -> int:
        """Decode cache/state bytes for one sequence of ``seq_len`` tokens."""
        raise NotImplementedError

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Fill defaults and reject unknown options, naming the option and the allowed ones."""
        unknown = sorted(set(options) - set(cls.OPTIONS))
        if unknown:
            allowed = ", ".join(sorted(cls.OPTIONS)) or "none"
            raise ValueError(
                f"primitive {cls.name!r}: unknown option(s) {unknown}; allowed options: {allowed}"
            )
        opts = {**cls.OPTIONS, **options}
        for key in cls.POSITIVE_INT_OPTIONS:  # ``None`` means "derived from the dims" where the default is None
            v = opts[key]
            if v is None and cls.OPTIONS[key] is None:
                continue
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"primitive {cls.name!r}: option {key!r} must be a positive integer, got {v!r}")
        return opts


REGISTRY: dict[str, type[Primitive]] = {}
# The abstract contract: ``register`` refuses a class that leaves any of these to the base.
_REQUIRED = ("__call__", "init_state", "step", "param_count", "flops_per_token", "state_bytes")
_BY_SHORTHAND: dict[str, type[Primitive]] = {}


def register(cls: type[Primitive]) -> type[Primitive]:
    """Class decorator: register a primitive under its ``name`` and one-letter ``shorthand``."""
    missing = [m for m in _REQUIRED if getattr(cls, m) is getattr(Primitive, m)]
    if missing:
        raise TypeError(f"primitive {cls.__name__} must implement {', '.join(missing)} (see Primitive)")
    if len(cls.shorthand) != 1 or not cls.shorthand.isupper():
        raise ValueError(f"shorthand of {cls.name!r} must be one upper-case letter, got {cls.shorthand!r}")
    for table, key in ((REGISTRY, cls.name), (_BY_SHORTHAND, cls.shorthand)):
        if key in table and table[key] is not cls:
            raise ValueError(f"{key!r} is already registered to {table[key].__name__}")
        table[key] = cls
    return cls


def get(key: str) -> type[Primitive]:
    """Look up a primitive by name (``attention``) or shorthand (``A``)."""
    cls = REGISTRY.get(key) or _BY_SHORTHAND.get(key)
    if cls is None:
        valid = ", ".join(f"{c.shorthand}={n}" for n, c in sorted(REGISTRY.items()))
        raise KeyError(f"unknown primitive {key!r}; registered primitives: {valid}")
    return cls


def resolve(key: str) -> str:
    """Canonical name for a name or shorthand."""
    return get(key).name


def names() -> list[str]:
    return sorted(REGISTRY)


def shorthands() -> dict[str, str]:
    """Shorthand -> name for every registered primitive."""
    return {c.shorthand: n for n, c in sorted(REGISTRY.items())}


def dense_init(std: float = 0.02):
    """Normal(0, std) kernels, as Llama/GPT-2 style initialisation."""
    return nnx.initializers.normal(stddev=std)
