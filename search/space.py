"""The search space: ``depth`` positions, each one of ``primitives`` (docs/method.md §2.1).

A layout is encoded as ``depth`` categorical parameters ``layer_0 .. layer_{n-1}`` whose values are
shorthands. Incremental methods freeze a ``prefix`` and ``suffix`` around the searched block; the
evaluated layout is ``prefix + block + suffix``. Constraints:

- ``min_share`` / ``max_share``: fraction of a primitive in the *full* layout (prefix and suffix
  included), e.g. at least 10 % attention.
- ``fixed``: positions of the *searched block* pinned to a primitive (negative positions count from
  the end). Fixed positions are not searched: they keep their parameter, with a single choice.
- ``max_params`` / ``max_kv_bytes``: caps on total parameters and on KV-cache bytes per sequence
  (``bfloat16``, ``max_seq_len`` of the scale) at the target scale, measured on the extrapolated spec
  (``cap_basis="extrapolated"``, the model that would really be trained) or on the layout at the
  target widths without depth scaling (``cap_basis="width"``).

This module imports no JAX; cap checks import ``scaling`` lazily.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

    from composer.jsontypes import JSONObject

__all__ = ["Constraints", "SearchSpace", "ENUMERATE_LIMIT", "param_name"]

ENUMERATE_LIMIT = 1 << 16
"""Spaces up to this many layouts are enumerated (exhaustive search, exact feasible counts)."""

_CAP_ENUMERATE_LIMIT = 1 << 12
"""Caps cost about 2 ms a layout (extrapolation plus counting); count exactly only below this."""

CAP_BASES = ("extrapolated", "width")


def param_name(i: int) -> str:
    return f"layer_{i}"


@dataclasses.dataclass(frozen=True)
class Constraints:
    """Optional constraints on the searched layouts (module docstring)."""

    min_share: tuple[tuple[str, float], ...] = ()
    """``(shorthand, fraction)`` pairs: at least this fraction of the full layout."""
    max_share: tuple[tuple[str, float], ...] = ()
    """``(shorthand, fraction)`` pairs: at most this fraction of the full layout."""
    fixed: tuple[tuple[int, str], ...] = ()
    """``(position, shorthand)`` pairs pinning positions of the searched block."""
    max_params: int | None = None
    """Cap on total parameters at the target scale."""
    max_kv_bytes: int | None = None
    """Cap on KV-cache/state bytes per sequence at the target scale."""
    cap_basis: str = "extrapolated"
    """``extrapolated`` (depth-scaled winner) or ``width`` (target widths, proxy depth)."""

    def __post_init__(self):
        for field in ("min_share", "max_share"):
            for ch, frac in getattr(self, field):
                if not 0.0 <= frac <= 1.0:
                    raise ValueError(f"{field}: fraction of {ch!r} must be in [0, 1], got {frac}")
        if self.cap_basis not in CAP_BASES:
            raise ValueError(f"cap_basis: must be one of {CAP_BASES}, got {self.cap_basis!r}")
        for field in ("max_params", "max_kv_bytes"):
            v = getattr(self, field)
            if v is not None and v <= 0:
                raise ValueError(f"{field}: must be > 0, got {v}")

    @property
    def has_caps(self) -> bool:
        return self.max_params is not None or self.max_kv_bytes is not None

    def to_dict(self) -> JSONObject:
        return {"min_share": [list(p) for p in self.min_share], "max_share": [list(p) for p in self.max_share],
                "fixed": [list(p) for p in self.fixed], "max_params": self.max_params,
                "max_kv_bytes": self.max_kv_bytes, "cap_basis": self.cap_basis}

    @classmethod
    def from_dict(cls, d: JSONObject) -> "Constraints":
        return cls(min_share=tuple((c, float(f)) for c, f in d.get("min_share", ())),
                   max_share=tuple((c, float(f)) for c, f in d.get("max_share", ())),
                   fixed=tuple((int(i), c) for i, c in d.get("fixed", ())), max_params=d.get("max_params"),
                   max_kv_bytes=d.get("max_kv_bytes"), cap_basis=d.get("cap_basis", "extrapolated"))


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """Layouts ``prefix + block + suffix`` with ``block`` in ``primitives ** depth`` (module docstring)."""

    primitives: tuple[str, ...] = ("A", "M")
    """Shorthands to choose from at every searched position."""
    depth: int = 6
    """Length of the searched block."""
    prefix: str = ""
    """Frozen layers before the block (end-layer and middle-layer incremental search)."""
    suffix: str = ""
    """Frozen layers after the block (middle-layer incremental search)."""
    constraints: Constraints = Constraints()
    scale: str | None = None
    """Target scale of the caps; required when a cap is set."""
    rule: str = "auto"
    """Extrapolation rule for ``cap_basis="extrapolated"``."""
    match: str = "none"
    """Size matching after the rule for ``cap_basis="extrapolated"`` (``scaling.matching``)."""

    def __post_init__(self):
        if self.depth < 1:
            raise ValueError(f"depth: must be >= 1, got {self.depth}")
        if not self.primitives or len(set(self.primitives)) != len(self.primitives):
            raise ValueError(f"primitives: must be distinct shorthands, got {list(self.primitives)}")
        for pos, ch in self.constraints.fixed:
            if not -self.depth <= pos < self.depth:
                raise ValueError(f"fixed: position {pos} outside the searched block of depth {self.depth}")
            if ch not in self.primitives:
                raise ValueError(f"fixed: {ch!r} at position {pos} is not one of {list(self.primitives)}")
        if self.constraints.has_caps and self.scale is None:
            raise ValueError("max_params/max_kv_bytes: a cap needs the target scale")

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(param_name(i) for i in range(self.depth))

    @functools.cached_property
    def _fixed(self) -> dict[int, str]:
        return {pos % self.depth: ch for pos, ch in self.constraints.fixed}

    def choices(self, i: int) -> tuple[str, ...]:
        """Values of position ``i``: one for a fixed position, all primitives otherwise."""
        return (self._fixed[i],) if i in self._fixed else self.primitives

    def distributions(self) -> dict[str, BaseDistribution]:
        """Optuna categorical distributions, one per position (imports Optuna)."""
        from optuna.distributions import CategoricalDistribution

        return {param_name(i): CategoricalDistribution(list(self.choices(i))) for i in range(self.depth)}

    @property
    def size(self) -> int:
        """Number of blocks before share and cap constraints."""
        n = 1
        for i in range(self.depth):
            n *= len(self.choices(i))
        return n

    def block(self, params: dict[str, str]) -> str:
        return "".join(params[param_name(i)] for i in range(self.depth))

    def params(self, block: str) -> dict[str, str]:
        return {param_name(i): ch for i, ch in enumerate(block)}

    def full(self, block: str) -> str:
        return self.prefix + block + self.suffix

    def violation(self, block: str, caps: bool = True) -> str | None:
        """Why ``block`` is outside the space, or ``None`` when it is inside (``caps=False``: skip the
        parameter/KV caps, which cost about 2 ms a layout)."""
        if len(block) != self.depth:
            return f"block {block!r} has {len(block)} layers, expected {self.depth}"
        for i, ch in enumerate(block):
            if ch not in self.choices(i):
                return f"position {i} is {ch!r}, allowed {list(self.choices(i))}"
        share = self._share_violation(self.full(block))
        return share or (self._cap_violation(self.full(block)) if caps else None)

    def _share_violation(self, full: str) -> str | None:
        n = len(full)
        for ch, frac in self.constraints.min_share:
            if full.count(ch) < frac * n - 1e-9:
                return f"share of {ch} is {full.count(ch)}/{n} < min {frac}"
        for ch, frac in self.constraints.max_share:
            if full.count(ch) > frac * n + 1e-9:
                return f"share of {ch} is {full.count(ch)}/{n} > max {frac}"
        return None

    def _cap_violation(self, full: str) -> str | None:
        c = self.constraints
        if not c.has_caps:
            return None
        params, kv = target_costs(full, self.scale, self.rule, c.cap_basis, self.match)
        if c.max_params is not None and params > c.max_params:
            return f"{params} parameters at {self.scale} > cap {c.max_params}"
        if c.max_kv_bytes is not None and kv > c.max_kv_bytes:
            return f"{kv} KV-cache bytes at {self.scale} > cap {c.max_kv_bytes}"
        return None

    def contains(self, block: str) -> bool:
        return self.violation(block) is None

    def enumerate(self) -> Iterator[str]:
        """Feasible blocks in lexicographic order of ``primitives`` (spaces up to ``ENUMERATE_LIMIT``)."""
        if self.size > ENUMERATE_LIMIT:
            raise ValueError(f"space of {self.size} layouts is too large to enumerate (limit {ENUMERATE_LIMIT})")
        for combo in itertools.product(*(self.choices(i) for i in range(self.depth))):
            block = "".join(combo)
            if self.contains(block):
                yield block

    @functools.cached_property
    def n_feasible(self) -> int | None:
        """Exact number of feasible blocks, or ``None`` when counting would be too slow."""
        limit = _CAP_ENUMERATE_LIMIT if self.constraints.has_caps else ENUMERATE_LIMIT
        if self.size > limit:
            return None
        return sum(1 for _ in self.enumerate())

    def sample(self, rng, taken: set[str], tries: int = 2000) -> str | None:
        """A feasible block not in ``taken``, drawn with ``rng`` (``numpy.random.Generator``)."""
        if self.size <= ENUMERATE_LIMIT and (self.n_feasible is not None):
            free = [b for b in self.enumerate() if b not in taken]
            return free[int(rng.integers(len(free)))] if free else None
        for _ in range(tries):
            block = "".join(self.choices(i)[int(rng.integers(len(self.choices(i))))] for i in range(self.depth))
            if block not in taken and self.contains(block):
                return block
        return None

    def nearest(self, block: str, taken: set[str], rng, max_radius: int = 2) -> str | None:
        """A feasible block not in ``taken`` closest to ``block`` in Hamming distance (ties: ``rng``).

        Used to repair a proposal that was infeasible or already known: the sampler asked for this
        region, so its nearest new neighbour is the most faithful substitute.
        """
        if self.size <= _CAP_ENUMERATE_LIMIT or (not self.constraints.has_caps and self.size <= ENUMERATE_LIMIT):
            free = [b for b in self.enumerate() if b not in taken]
            if not free:
                return None
            dist = [sum(x != y for x, y in zip(b, block)) for b in free]
            best = [b for b, d in zip(free, dist) if d == min(dist)]
            return best[int(rng.integers(len(best)))]
        ring = {block}
        for _ in range(max_radius):
            ring = {b[:i] + ch + b[i + 1:] for b in ring for i in range(self.depth) for ch in self.choices(i)}
            found = sorted(b for b in ring if b not in taken and self.contains(b))
            if found:
                return found[int(rng.integers(len(found)))]
        return self.sample(rng, taken)

    def to_dict(self) -> JSONObject:
        return {"primitives": list(self.primitives), "depth": self.depth, "prefix": self.prefix,
                "suffix": self.suffix, "constraints": self.constraints.to_dict(), "scale": self.scale,
                "rule": self.rule}


@functools.lru_cache(maxsize=65536)
def target_costs(pattern: str, scale: str, rule: str, basis: str = "extrapolated",
                 match: str = "none") -> tuple[int, int]:
    """``(total parameters, KV-cache bytes per sequence)`` of ``pattern`` at ``scale``."""
    from composer.presets import spec_from_pattern
    from scaling.counting import state_bytes_per_sequence, total_params
    from scaling.extrapolate import extrapolate

    spec = (extrapolate(pattern, scale, rule, match=match).spec if basis == "extrapolated"
            else spec_from_pattern(pattern, scale))
    return total_params(spec), state_bytes_per_sequence(spec)
