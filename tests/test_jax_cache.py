"""JAX's persistent compilation cache (``composer.jax_cache``): where it lives, how it is turned off, and
that a proxy evaluation loaded from it scores exactly as the one that compiled it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from composer.jax_cache import ENV_VAR, cache_dir

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("value", ["off", "0", "", "None", "false"])
def test_the_environment_turns_it_off(monkeypatch, value):
    monkeypatch.setenv(ENV_VAR, value)
    assert cache_dir() is None


def test_the_environment_names_the_folder_else_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "jax"))
    assert cache_dir() == tmp_path / "jax"
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "composer" / "jax"


# One text evaluation in a fresh process (the cache is process-wide JAX configuration): its folder,
# how many files the cache holds before and after, and the exact scores.
_EVALUATE = """
import json, os
from search.evaluators import EvaluatorConfig
folder = os.environ["COMPOSER_JAX_CACHE"]
before = len(os.listdir(folder)) if os.path.isdir(folder) else 0
ev = EvaluatorConfig(protocol="text-short", seed=0, steps_scale=0.03).build()
out = ev.evaluate_many("AMM", [0, 1])
print(json.dumps({"dir": str(ev.cache_dir), "before": before, "after": len(os.listdir(folder)),
                  "scores": [repr(o.score) for o in out]}))
"""


def _evaluate(cache: Path) -> dict:
    env = {**os.environ, ENV_VAR: str(cache), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", _EVALUATE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_text_evaluation_fills_the_cache_and_scores_the_same_from_it(tmp_path):
    cache = tmp_path / "jax"
    first = _evaluate(cache)
    assert first["dir"] == str(cache) and first["before"] == 0
    assert first["after"] > 0  # the packed step (and the eager init ops) were stored
    second = _evaluate(cache)
    assert second["before"] == first["after"]
    assert second["scores"] == first["scores"]  # the loaded executable is the stored one, bit for bit
