"""The layering rules of docs/ARCHITECTURE.md, checked on the source (every import, including
the ones inside functions):

- ``theory/`` imports only the standard library, sympy, numpy, scipy and mpmath;
- no module imports another module's ``_private`` name;
- the module import graph of the toolkit has no cycle;
- the leaf modules (errors, output, strict JSON, records) import nothing of the toolkit but leaves.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("theory", "fdiv_torch", "numerics", "experiments", "paper_figs", "w2sg")
LEAVES = {"w2sg.errors", "w2sg.output", "w2sg.strict_json", "w2sg.records", "w2sg.paths", "w2sg.pgr",
          "w2sg.results", "w2sg.aggregate"}
THEORY_ALLOWED = {"sympy", "numpy", "scipy", "mpmath"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            out[_module_name(path)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, tuple[str, ...], int]]:
    """``(imported module, names taken from it, line)`` for every import statement."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append((alias.name, (), node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = tuple(a.name for a in node.names)
            # ``from pkg import submodule`` imports the submodule
            subs = [f"{mod}.{n}" for n in names if f"{mod}.{n}" in MODULES]
            if subs:
                out.extend((s, (), node.lineno) for s in subs)
                names = tuple(n for n in names if f"{mod}.{n}" not in MODULES)
            if names or not subs:
                out.append((mod, names, node.lineno))
    return out


def _internal(mod: str) -> str | None:
    """The toolkit module that ``mod`` names (itself or its closest package), else None."""
    while mod:
        if mod in MODULES:
            return mod
        mod = mod.rpartition(".")[0]
    return None


def test_theory_imports_only_the_scientific_stack():
    bad = []
    for name, path in MODULES.items():
        if not name.startswith("theory"):
            continue
        for mod, _, line in _imports(name, path):
            top = mod.split(".")[0]
            if top == "theory" or top in THEORY_ALLOWED or top in sys.stdlib_module_names or top == "__future__":
                continue
            bad.append(f"{path.relative_to(ROOT)}:{line} imports {mod}")
    assert not bad, "\n".join(bad)


def test_no_private_names_cross_module_boundaries():
    bad = []
    for name, path in MODULES.items():
        for mod, names, line in _imports(name, path):
            target = _internal(mod)
            if target is None or target == name:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            private += [p for p in mod.split(".") if p.startswith("_") and not p.startswith("__")]
            if private:
                bad.append(f"{path.relative_to(ROOT)}:{line} takes {private} from {mod}")
    for name, path in MODULES.items():  # module._private attribute access
        tree = ast.parse(path.read_text())
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if _internal(a.name):
                        aliases[a.asname or a.name] = a.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Name) and node.value.id in aliases):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not bad, "\n".join(bad)


def _graph(modules: dict[str, Path] | None = None) -> dict[str, set[str]]:
    modules = MODULES if modules is None else modules
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for mod, _, _ in _imports(name, path):
            target = mod if mod in modules else _internal(mod)
            if target and target != name and not name.startswith(target + "."):
                deps.add(target)
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return cycles


def test_import_graph_has_no_cycle():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaf_modules_import_only_leaves(leaf):
    if leaf not in MODULES:
        pytest.skip(f"{leaf} does not exist")
    deps = _graph()[leaf]
    assert deps <= LEAVES | {"w2sg"}, f"{leaf} imports {sorted(deps - LEAVES)}"


def test_the_checker_sees_a_cycle_and_a_private_import(tmp_path):
    """The rules above can fail: a two-module cycle through a ``_private`` name is caught."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from b import _x\n")
    b.write_text("def f():\n    import a\n    return a\n_x = 1\n")
    assert _imports("a", a) == [("b", ("_x",), 1)]
    assert _cycles(_graph({"a": a, "b": b})) == ["a -> b -> a"]
