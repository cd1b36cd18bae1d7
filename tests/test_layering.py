"""One-way dependencies: primitives <- composer <- scaling <- search <- CLI."""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
ORDER = ["primitives", "composer", "scaling", "search"]


def _imports(package: str) -> set[str]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("i", range(len(ORDER)))
def test_no_upward_imports(i):
    package, above = ORDER[i], set(ORDER[i + 1 :])
    if package == "composer":
        # The CLI lives in composer/cli.py and composer/commands/, on top of everything.
        above -= {"scaling", "search"}
    assert not (_imports(package) & above), f"{package} imports from a package above it"


def test_primitives_imports_nothing_of_ours():
    assert not (_imports("primitives") & {"composer", "search", "scaling"})


def test_core_composer_does_not_import_search_or_scaling():
    core = [p for p in (ROOT / "composer").rglob("*.py") if "commands" not in p.parts and p.name != "cli.py"]
    for path in core:
        for node in ast.walk(ast.parse(path.read_text())):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods = [node.module]
            assert not any(m.split(".")[0] in {"search", "scaling"} for m in mods), path


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
