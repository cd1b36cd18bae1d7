"""How many seeds of one layout a search trains together: ``--pack``, checked, and its default by device.

The default (``--pack 0``) follows the packing benchmarks: on 2 CPU cores a pack of 4 capacity seeds ran
1.7-1.9x the evaluations per hour of four runs one after the other, a pack of 2 only 0.7-0.9x
(experiments/bench/packing.py), and ``make search`` ran 1.34x faster packed by 4 with the same scores
(experiments/bench/search_packing.py). So a CPU packs 4 when the search has rungs of 4 seeds or more of a
layout, and does not pack otherwise. On an accelerator one 6-layer d = 64 candidate fills a sliver of the
device, so larger packs pay there; the default of 16 is an estimate until
``experiments/bench/packing_gpu.sh`` has been run on one.
"""

from __future__ import annotations

import importlib.util
import os

from composer.errors import UsageError
from search import methods
from search.halving import largest_rung_unit

__all__ = ["AUTO_PACK", "device_kind", "most_seeds_together", "resolve_pack"]

AUTO_PACK = {"cpu": 4, "gpu": 16, "tpu": 16}
"""Pack of the default per device kind (the CPU number measured, the others estimated)."""

_MIN_PAYING = {"cpu": 4}
"""Smallest pack that beats training one at a time (CPU: 2 is slower, 4 faster); elsewhere 2."""

_GPU_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "jax_rocm7_plugin")


def device_kind() -> str:
    """``cpu``, ``gpu`` or ``tpu``: the platform JAX will use, read without starting it (starting it in the
    driver would take an accelerator's memory from the worker processes)."""
    platforms = os.environ.get("JAX_PLATFORMS", "").strip()
    if platforms:
        first = platforms.split(",")[0].strip().lower()
        return "gpu" if first in ("cuda", "rocm", "gpu") else first
    if any(importlib.util.find_spec(name) for name in _GPU_PLUGINS):
        return "gpu"
    if importlib.util.find_spec("libtpu"):
        return "tpu"
    return "cpu"


def most_seeds_together(settings, n_feasible: int | None) -> int:
    """The most seeds of one layout this search ever evaluates together: its largest seed rung's, or the
    final rescoring's."""
    budget = methods.stage_budgets(settings.budget, methods.n_stages(settings))[0]
    return max(largest_rung_unit(budget, n_feasible, settings.rung_share), settings.final_seeds)


def resolve_pack(settings, n_feasible: int | None, device: str | None = None) -> int:
    """The pack the search runs with: ``settings.pack`` checked against what the search can fill, or for
    0 the device's default (1 where packing would not pay or cannot run)."""
    most = most_seeds_together(settings, n_feasible)
    if settings.pack:
        if settings.pack > most:
            raise UsageError(f"--pack {settings.pack}: this search never trains more than {most} seeds of one "
                             f"layout together (its seed rungs and final rescoring); give --pack {most} or less")
        return settings.pack
    if settings.backend != "local":
        return 1
    kind = device or device_kind()
    pack = min(AUTO_PACK.get(kind, 1), most)
    return pack if pack >= _MIN_PAYING.get(kind, 2) else 1
