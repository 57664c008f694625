"""The layering rules of docs/ARCHITECTURE.md, checked on the source (every import, including
the ones inside functions):

- ``theory/`` imports only the standard library, sympy, numpy, scipy and mpmath;
- no module imports another module's ``_private`` name;
- the module import graph of the toolkit has no cycle;
- the leaf modules (errors, output, strict JSON, records) import nothing of the toolkit but leaves;
- each package imports only the packages before it in the order docs/ARCHITECTURE.md states.

Dynamic imports count: ``importlib.import_module(NAME)`` and ``__import__(NAME)`` with a
literal name, a module-level tuple/list of literal names, or a ``for`` variable running over
such a tuple are followed like import statements.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("theory", "fdiv_torch", "numerics", "experiments", "paper_figs", "w2sg")
LEAVES = {"w2sg.errors", "w2sg.output", "w2sg.strict_json", "w2sg.records", "w2sg.paths", "w2sg.pgr",
          "w2sg.results", "w2sg.aggregate", "w2sg.input_files"}
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


def _literal_names(node) -> list[str] | None:
    """The strings of a literal ``"a"`` or ``("a", "b")`` / ``["a", "b"]``, else ``None``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List)):
        out = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        return out if len(out) == len(node.elts) else None
    return None


def _dynamic_imports(tree) -> list[tuple[str, int]]:
    """``(module, line)`` for ``importlib.import_module(X)`` / ``import_module(X)`` /
    ``__import__(X)`` where ``X`` is a literal name, a name bound at module level to a
    literal tuple/list of names, or a ``for`` variable over one of those."""
    tables: dict[str, list[str]] = {}
    for node in tree.body:  # module-level NAME = ("a", "b")
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            names = _literal_names(node.value)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if names is not None and isinstance(t, ast.Name):
                    tables[t.id] = names
    loops: dict[str, list[str]] = {}
    for node in ast.walk(tree):  # for NAME in TABLE / in ("a", "b")
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
            it = node.iter
            names = tables.get(it.id) if isinstance(it, ast.Name) else _literal_names(it)
            if names is not None:
                loops.setdefault(node.target.id, []).extend(names)
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        fn = node.func
        called = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
        if called not in ("import_module", "__import__"):
            continue
        arg = node.args[0]
        names = _literal_names(arg)
        if names is None and isinstance(arg, ast.Name):
            names = tables.get(arg.id) or loops.get(arg.id)
        out.extend((n, node.lineno) for n in names or ())
    return out


def _imports(name: str, path: Path) -> list[tuple[str, tuple[str, ...], int]]:
    """``(imported module, names taken from it, line)`` for every import statement and every
    dynamic import of a literal name (:func:`_dynamic_imports`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out = [(mod, (), line) for mod, line in _dynamic_imports(tree)]
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


def package_order() -> dict[str, int]:
    """The rank of each package from docs/ARCHITECTURE.md's line ``Package order: a < b = c < …``
    (``=``: side by side, neither imports the other)."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    line = next(l for l in text.splitlines() if l.startswith("Package order:"))
    ranks = {}
    for rank, group in enumerate(line.split(":", 1)[1].strip().rstrip(".").split("<")):
        for pkg in group.split("="):
            ranks[pkg.strip().strip("`").rstrip("/")] = rank
    return ranks


def _order_violations(graph: dict[str, set[str]], ranks: dict[str, int], leaves=LEAVES) -> list[str]:
    bad = []
    for name, deps in graph.items():
        pkg = name.split(".")[0]
        for dep in deps:
            dpkg = dep.split(".")[0]
            if dpkg == pkg or dep in leaves or dep == "w2sg" or pkg not in ranks or dpkg not in ranks:
                continue
            if ranks[dpkg] >= ranks[pkg]:
                bad.append(f"{name} imports {dep} ({pkg} is not above {dpkg})")
    return sorted(bad)


def test_the_documented_package_order_is_the_import_order():
    ranks = package_order()
    assert set(ranks) == set(PACKAGES), ranks
    bad = _order_violations(_graph(), ranks)
    assert not bad, "\n".join(bad)


def test_nothing_below_the_command_line_imports_it():
    users = sorted(n for n, deps in _graph().items() if "w2sg.cli" in deps and n != "w2sg.__main__")
    assert users == [], users


def test_the_checker_follows_dynamic_imports_and_the_order(tmp_path):
    """A cycle made only of ``importlib`` calls (a literal, a table of names, ``__import__``)
    and an import against the package order are both caught."""
    low, top = tmp_path / "low.py", tmp_path / "top.py"
    top.write_text("import importlib\nPARTS = ('low', 'other')\n"
                   "def f():\n    for n in PARTS:\n        importlib.import_module(n)\n")
    low.write_text("def g():\n    return __import__('top')\n")
    assert _imports("top", top) == [("low", (), 5), ("other", (), 5), ("importlib", (), 1)]
    graph = _graph({"low": low, "top": top})
    assert _cycles(graph) == ["low -> top -> low"]
    ranked = {"low.x": {"top.y"}, "top.y": {"low.x"}}
    assert _order_violations(ranked, {"low": 0, "top": 1}) == ["low.x imports top.y (low is not above top)"]


def test_the_checker_sees_a_cycle_and_a_private_import(tmp_path):
    """The rules above can fail: a two-module cycle through a ``_private`` name is caught."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from b import _x\n")
    b.write_text("def f():\n    import a\n    return a\n_x = 1\n")
    assert _imports("a", a) == [("b", ("_x",), 1)]
    assert _cycles(_graph({"a": a, "b": b})) == ["a -> b -> a"]
