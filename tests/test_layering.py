"""One-way dependencies, checked for every import of every module, with no exception:
primitives <- composer (core) <- composer.mad (the MAD proxy) <- scaling <- search.evaluators (the
evaluator kinds) <- search (space, searchers, engine, studies, results, the protocol registry) <-
search.fidelity (the real-text judge) <- search.published (the published judge) <- search.analysis
(tables, figures, exports) <- cli."""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
ORDER = ["primitives", "composer", "scaling", "search", "cli"]
FLOORS = ["primitives", "composer", "composer.mad", "scaling", "search.evaluators", "search", "search.fidelity",
          "search.published", "search.analysis", "cli"]
"""Floors from the ground up; a module stands on the highest floor whose name prefixes it."""


def _floor(module: str) -> int | None:
    best = None
    for i, name in enumerate(FLOORS):
        if module == name or module.startswith(name + "."):
            best = i if best is None or len(name) > len(FLOORS[best]) else best
    return best


def _module_imports(path: pathlib.Path) -> set[str]:
    """Modules of ours named by the imports anywhere in the file (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}  # `from composer import mad`
    return {m for m in found if _floor(m) is not None}


def _modules() -> dict[str, pathlib.Path]:
    files = {}
    for package in ORDER:
        for path in (ROOT / package).rglob("*.py"):
            files[".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")] = path
    return files


@pytest.mark.parametrize("floor", FLOORS)
def test_no_import_runs_back_up_the_floors(floor):
    upward = []
    for module, path in _modules().items():
        if FLOORS[_floor(module)] != floor:
            continue
        upward += [f"{module} -> {m}" for m in _module_imports(path) if _floor(m) > _floor(module)]
    assert not upward, f"imports from a higher floor: {upward}"


def test_the_floors_cover_every_module():
    assert all(_floor(m) is not None for m in _modules())
    assert {FLOORS[_floor(m)] for m in _modules()} == set(FLOORS)


def test_a_layering_violation_is_caught(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import search.run\nfrom composer.mad import evaluate\n")
    above_core = {m for m in _module_imports(bad) if _floor(m) > _floor("composer.spec")}
    assert above_core == {"search.run", "composer.mad", "composer.mad.evaluate"}


def test_search_package_resolves_inside_repo():
    out = subprocess.run([sys.executable, "-c", "import search; print(search.__file__)"],
                         capture_output=True, text=True, check=True, cwd="/")
    assert pathlib.Path(out.stdout.strip()).resolve().is_relative_to(ROOT)


def test_import_composer_is_light():
    code = "import sys, composer, primitives; print('optuna' in sys.modules, 'ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def _module_graph() -> dict[str, set[str]]:
    """Module -> modules of ours it imports anywhere in its body (type-checking imports included)."""
    files = {}
    for package in ORDER:
        for path in (ROOT / package).rglob("*.py"):
            mod = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            files[mod.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name in files and name != mod and not (path.name == "__init__.py" and name.startswith(mod)):
                    graph[mod].add(name)
    return graph


def test_no_import_circles():
    graph = _module_graph()
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not circles, f"modules that import each other: {circles}"


KERNEL_TRIO = {"reference.py", "chunked.py", "pallas.py"}
"""Each op folder of ``primitives/ops/`` holds its readable reference, its chunked XLA path and its
Pallas kernel under these names (docs/conventions.md: every kernel beside its reference)."""


def _same_named(roots: list[str]) -> dict[str, list[str]]:
    import collections

    names = collections.defaultdict(list)
    for root in roots:
        for p in (ROOT / root).rglob("*.py"):
            if p.name == "__init__.py" or (p.name in KERNEL_TRIO and p.parent.parent.name == "ops"):
                continue
            names[p.name].append(str(p.relative_to(ROOT)))
    return {n: paths for n, paths in names.items() if len(paths) > 1}


def test_no_two_library_modules_share_a_name():
    """A module's name says what it holds: across the library packages no two files are called the same
    (the kernel trio of each op folder aside; ``cli/commands/`` files are named for their command)."""
    clash = _same_named(["primitives", "composer", "scaling", "search"])
    assert not clash, clash


def test_a_name_clash_is_caught():
    """The check above can fail: ``cli/`` holds command files named like the library modules they call."""
    assert "train.py" in _same_named(["composer", "cli"])


def test_no_module_is_over_300_lines():
    """Small pieces (docs/conventions.md §12): a module past 300 lines holds more than one job; split it by role."""
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > 300}
    assert not long, f"modules over 300 lines: {long}"
