"""Shared timing helpers for benchmarks: compile time apart from run time, medians of repeats."""

from __future__ import annotations

import os
import platform
import statistics
import time

import jax


def block(x):
    return jax.tree.map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, x)


def time_jitted(fn, *args, repeats: int = 5, min_time: float = 0.0) -> dict:
    """Compile ``fn`` (already jitted) once, then time ``repeats`` calls; seconds per call."""
    t0 = time.perf_counter()
    block(fn(*args))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        block(fn(*args))
        times.append(time.perf_counter() - t0)
        if min_time and sum(times) > min_time and len(times) >= 3:
            break
    return {"compile_s": compile_s, "median_s": statistics.median(times), "runs": len(times)}


def machine() -> dict:
    import flax
    import jaxlib

    dev = jax.devices()[0]
    return {"backend": jax.default_backend(), "device": getattr(dev, "device_kind", str(dev)),
            "cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "jax": jax.__version__, "jaxlib": jaxlib.__version__, "flax": flax.__version__}


def write_results(path: str, payload: dict) -> None:
    """Atomic write of a results JSON (temp file + os.replace)."""
    from composer.atomic import write_json

    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json(path, payload)
