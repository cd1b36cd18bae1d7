"""A "switch" stack: one compiled model for every layout of a given depth over a primitive space.

Each layer holds one flat parameter vector, long enough for the largest primitive of the space, and
an int array ``types[l]`` picks the primitive with ``jax.lax.switch`` at run time. A primitive reads
the first ``size`` entries of the vector as its own parameters, so the stack computes exactly what
``composer.model.LM`` computes for the same parameters (the unused tail gets zero gradient and stays
inert), while candidates of equal depth share one trace and one executable.

Layers run under ``lax.scan`` so the trace and compile time do not grow with depth. Parameters are
initialised eagerly per candidate (``init``); only training is compiled.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import primitives
from composer.spec import LayerSpec
from primitives import Dims, rms_norm

__all__ = ["Branch", "SwitchStack", "branch_uid", "DENSE_STD"]

DENSE_STD = 0.02
"""Standard deviation of ``primitives.base.dense_init``, the init of every primitive's projections."""


def branch_uid(layer: LayerSpec) -> int:
    """A stable int per (primitive, options): its init key does not depend on the space's order."""
    return zlib.crc32(repr((layer.primitive, layer.options)).encode()) & 0x7FFFFFFF


def _build(layer: LayerSpec, dims: Dims, rngs: nnx.Rngs):
    cls = primitives.get(layer.primitive)
    return cls(dims, rngs=rngs, dtype=jnp.float32, param_dtype=jnp.float32, **layer.option_dict)


def _is_dense(leaf: np.ndarray) -> bool:
    """Whether a freshly initialised leaf is a ``dense_init`` matrix: N(0, 0.02), at least 2-D."""
    return leaf.ndim >= 2 and leaf.size >= 64 and abs(float(np.std(leaf)) / DENSE_STD - 1) < 0.2


def _fan_in(shape: tuple[int, ...], d_model: int) -> int:
    """Input width of a projection: ``d`` for ``[d, ...]`` (e.g. ``wq [d, h, k]``), else all axes but the
    last (``wo [h, k, d]``, ``w_down [f, d]``)."""
    return d_model if shape[0] == d_model else int(np.prod(shape[:-1]))


@dataclasses.dataclass(frozen=True, eq=False)
class Branch:
    """One primitive of the space: how to unflatten its parameters and call it."""

    layer: LayerSpec
    graphdef: Any
    treedef: Any
    shapes: tuple[tuple[int, ...], ...]
    rest: Any
    """Non-parameter state of the primitive (constants), shared by every layer."""
    init_scale: np.ndarray
    """Per-entry factor applied to the primitive's own init (all ones for ``init="primitive"``)."""

    @classmethod
    def make(cls, layer: LayerSpec, dims: Dims, init: str = "primitive") -> "Branch":
        graphdef, params, rest = nnx.split(_build(layer, dims, nnx.Rngs(0)), nnx.Param, ...)
        leaves, treedef = jax.tree.flatten(params)
        scales = []
        for leaf in map(np.asarray, leaves):
            if not np.issubdtype(leaf.dtype, np.floating):
                raise TypeError(f"primitive {layer.primitive!r}: parameter of dtype {leaf.dtype}; "
                                "the switch stack holds float32 parameters only")
            factor = 1.0
            if init == "fan_in" and _is_dense(leaf):
                factor = 1.0 / (DENSE_STD * np.sqrt(_fan_in(leaf.shape, dims.d_model)))
            scales.append(np.full(leaf.size, factor, np.float32))
        return cls(layer, graphdef, treedef, tuple(tuple(l.shape) for l in leaves), rest, np.concatenate(scales))

    @property
    def size(self) -> int:
        return int(sum(np.prod(s, dtype=np.int64) for s in self.shapes))

    def flatten(self, params: Any, width: int) -> jax.Array:
        """Parameters (an ``nnx.State`` of this primitive) -> ``[width]`` zero-padded vector."""
        flat = jnp.concatenate([jnp.ravel(l).astype(jnp.float32) for l in jax.tree.leaves(params)])
        return jnp.pad(flat, (0, width - flat.shape[0]))

    def unflatten(self, flat: jax.Array) -> Any:
        leaves, offset = [], 0
        for shape in self.shapes:
            n = int(np.prod(shape, dtype=np.int64))
            leaves.append(flat[offset:offset + n].reshape(shape))
            offset += n
        return jax.tree.unflatten(self.treedef, leaves)

    def init(self, key: jax.Array, dims: Dims, width: int) -> jax.Array:
        module = _build(self.layer, dims, nnx.Rngs(jax.random.fold_in(key, branch_uid(self.layer))))
        _, params, _ = nnx.split(module, nnx.Param, ...)
        return self.flatten(params, width) * jnp.pad(self.init_scale, (0, width - self.size))

    def apply(self, flat: jax.Array, x: jax.Array) -> jax.Array:
        module = nnx.merge(self.graphdef, self.unflatten(flat), self.rest)
        return module(x).astype(x.dtype)


class SwitchStack:
    """The residual stack ``h = h + prim_l(RMSNorm(h))`` for any layout over ``space`` at ``dims``."""

    def __init__(self, space: tuple[LayerSpec, ...], dims: Dims, *, norm_eps: float = 1e-5,
                 unroll: int | bool = 1, init: str = "primitive"):
        if init not in ("primitive", "fan_in"):
            raise ValueError(f"init={init!r} is invalid; must be 'primitive' or 'fan_in'")
        self.space = tuple(space)
        self.dims = dims
        self.norm_eps = norm_eps
        self.unroll = unroll
        self.branches = tuple(Branch.make(layer, dims, init) for layer in self.space)
        self.width = max(b.size for b in self.branches)
        self._index = {(b.layer.primitive, b.layer.options): i for i, b in enumerate(self.branches)}

    def types(self, layers: tuple[LayerSpec, ...]) -> np.ndarray:
        """Branch index of every layer, ``[n_layers]`` int32."""
        try:
            return np.array([self._index[(l.primitive, l.options)] for l in layers], dtype=np.int32)
        except KeyError as e:
            raise ValueError(f"layer {e.args[0]} is not in the switch space") from None

    def init(self, key: jax.Array, types: np.ndarray) -> dict[str, jax.Array]:
        """Per-layer flat parameters ``[n_layers, width]`` and norm gains ``[n_layers, d]``.

        Layer ``l`` of type ``p`` draws from ``fold_in(fold_in(key, l), uid(p))`` only. Runs eagerly:
        each primitive initialises exactly as in a dedicated model, and no whole-model init is
        compiled (jitted random inits cost seconds of XLA compile on CPU; eager ones are cached per
        shape and take milliseconds per candidate).
        """
        flat = [self.branches[t].init(jax.random.fold_in(key, l), self.dims, self.width)
                for l, t in enumerate(np.asarray(types).tolist())]
        return {"layers": jnp.stack(flat), "norms": jnp.ones((len(flat), self.dims.d_model), jnp.float32)}

    def __call__(self, params: dict[str, jax.Array], types: jax.Array, h: jax.Array) -> jax.Array:
        """Run the stack on ``h`` ``[b, t, d]``."""
        applies: list[Callable] = [b.apply for b in self.branches]

        def layer(h, xs):
            flat, scale, t = xs
            y = jax.lax.switch(t, applies, flat, rms_norm(h, scale, self.norm_eps))
            return h + y, None

        h, _ = jax.lax.scan(layer, h, (params["layers"], params["norms"], types), unroll=self.unroll)
        return h
