"""Computational primitives of hybrid language models, registered by name and shorthand.

Importing this package registers every built-in primitive. ``primitives`` depends on nothing else
in the project (``primitives`` <- ``composer`` <- ``scaling`` <- ``search``).
"""

from primitives import attention as _attention  # noqa: F401  (registers A and W)
from primitives import deltanet as _deltanet  # noqa: F401  (registers G)
from primitives import gla as _gla  # noqa: F401  (registers L)
from primitives import mlp as _mlp  # noqa: F401  (registers M)
from primitives import ssm as _ssm  # noqa: F401  (registers S)
from primitives.base import REGISTRY, Dims, Primitive, get, names, register, resolve, shorthands
from primitives.norm import RMSNorm, rms_norm

__all__ = ["REGISTRY", "Dims", "Primitive", "RMSNorm", "get", "names", "register", "resolve",
           "rms_norm", "shorthands"]
