"""Composer: search, score and scale hybrid language-model architectures.

Light on import: ``import composer`` (and ``composer.errors``, which every command reads first)
loads no JAX. The spec names below resolve on first use (PEP 562), since validating a spec needs
the primitive registry and with it JAX; JAX-heavy modules (``composer.model``, ``composer.train``)
are imported by name.
"""

from __future__ import annotations

import importlib

__all__ = ["ArchSpec", "LayerSpec", "SpecError", "arch_id", "load_spec", "parse_pattern", "run_length"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in __all__:
        value = globals()[name] = getattr(importlib.import_module("composer.spec"), name)
        return value
    raise AttributeError(f"module 'composer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
