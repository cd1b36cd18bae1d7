"""JAX's persistent compilation cache for proxy evaluations (compile cost is a first-class metric).

Every proxy evaluator turns it on (``composer.mad.evaluate.Evaluator``, ``search.evaluators.text``):
a compiled step is stored on disk under a key of its program and the machine, so another worker
process, a resumed search or the next search loads it instead of compiling again. A loaded executable
is the one that was stored: scores do not change (``tests/test_jax_cache.py``).

The directory is ``$COMPOSER_JAX_CACHE`` if set (``off`` or ``0`` disables it), else
``$XDG_CACHE_HOME/composer/jax`` (``~/.cache/composer/jax``). A cache directory the user already
configured in JAX is left alone.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_VAR", "cache_dir", "enable_compilation_cache"]

ENV_VAR = "COMPOSER_JAX_CACHE"


def cache_dir() -> Path | None:
    """The directory to use, or ``None`` when disabled by the environment."""
    env = os.environ.get(ENV_VAR)
    if env is not None:
        return None if env.strip().lower() in ("", "0", "off", "none", "false") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "composer" / "jax"


def enable_compilation_cache() -> Path | None:
    """Point JAX's persistent cache at ``cache_dir()`` unless one is configured; returns the path used."""
    import jax

    current = jax.config.jax_compilation_cache_dir
    if current:
        return Path(current)
    path = cache_dir()
    if path is None:
        return None
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    # Our executables compile in 0.5-3 s each on CPU (a MAD task run, a packed text step); cache all of them.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return path
