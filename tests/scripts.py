"""The scripts under ``experiments/`` as modules, for the tests that check them (they are not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(relpath: str) -> ModuleType:
    """``experiments/<relpath>`` (e.g. ``"recall_composite.py"``, ``"bench/compare_scores.py"``) as a module,
    executed once per process and registered in ``sys.modules`` (dataclasses resolve their module by name)."""
    path = ROOT / "experiments" / relpath
    name = "experiments_script_" + relpath.removesuffix(".py").replace("/", "_")
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
