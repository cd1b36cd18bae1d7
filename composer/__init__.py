"""Composer: search, score and scale hybrid language-model architectures.

Light on import: JAX-heavy modules (``composer.model``, ``composer.train``) are imported by name.
"""

from composer.spec import ArchSpec, LayerSpec, SpecError, arch_id, load_spec, parse_pattern, run_length

__all__ = ["ArchSpec", "LayerSpec", "SpecError", "arch_id", "load_spec", "parse_pattern", "run_length"]
__version__ = "0.1.0"
