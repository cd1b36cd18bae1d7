"""The command line answers ``--help`` and bad input without loading JAX.

Every command module imports its heavy dependencies inside ``run``; the parser is built from
dataclasses and registries that load no JAX, so ``composer search --help`` or a mistyped run folder
answers in a fraction of a second instead of the seconds JAX takes to import.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("jax", "flax", "optax", "orbax", "optuna", "ray")


def _loaded_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(','.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.strip().splitlines()[-1].split(","))


def test_building_every_commands_parser_loads_no_heavy_library():
    loaded = _loaded_after("from cli.main import COMMANDS, build_parser\n"
                           "p = build_parser()\n"
                           "assert set(p._subparsers._group_actions[0].choices) >= set(COMMANDS) - {'dashboard'}")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_import_composer_loads_no_jax_but_its_names_still_resolve():
    loaded = _loaded_after("import composer\nassert 'jax' not in sys.modules\n"
                           "assert composer.parse_pattern('2A1M') == 'AAM'\nassert 'jax' in sys.modules\n"
                           "assert composer.LayerSpec('A').primitive == 'attention'")
    assert "jax" in loaded


@pytest.mark.parametrize("argv, words", [
    (["leaderboard", "nope"], "no search run at 'nope'"),
    (["export", "nope"], "nope"),
])
def test_a_bad_run_folder_is_refused_without_loading_jax(argv, words):
    loaded = _loaded_after(f"from cli.main import main\n"
                           f"import contextlib, io\n"
                           f"err = io.StringIO()\n"
                           f"with contextlib.redirect_stderr(err):\n"
                           f"    code = main({argv!r})\n"
                           f"assert code == 2, code\n"
                           f"assert {words!r} in err.getvalue(), err.getvalue()")
    assert "jax" not in loaded
