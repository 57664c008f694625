"""The repository explains itself: every reference in README.md and docs/*.md resolves.

* relative Markdown links (``[text](path#anchor)``) point to files that exist, and anchors
  to headings that exist;
* repository paths named in the text (``theory/generators.py``, ``experiments/data/``,
  ``tests/x.py::test_name``) exist (and the test function is defined there);
* dotted names of the toolkit (``theory.derived.f_at_0``, ``experiments.llm.HUB_DATASETS``)
  import and resolve;
* the same two checks hold in the docstrings and comments of every tracked Python file
  (code, tests, notebooks);
* no tracked file points outside the repository for its conventions (the team notes
  the team's shared folder, its data note), and ``THEORY.md`` is only named as ``docs/THEORY.md``.

The checkers are plain functions; the last tests feed them broken text to show they fail.
"""
from __future__ import annotations

import ast
import importlib
import io
import re
import subprocess
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The team notes folder beside the checkout, which users do not have (spelled in pieces so
#: that this file does not itself point at it).
SHARED = ".." + "/" + "shared"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", ROOT / "notebooks" / "README.md", *DOCS]
PACKAGES = ("theory", "fdiv_torch", "numerics", "experiments", "paper_figs", "w2sg")
#: first path components that name a place in the repository (other paths in the docs are
#: results paths like ``runs/<task>/...`` or files inside installed packages)
TOP = PACKAGES + ("tests", "docs", "notebooks", "scripts", ".ci")

_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_PATH = re.compile(r"(?<![\w./-])((?:%s)/[\w./:*<>…-]*)" % "|".join(re.escape(t) for t in TOP))
_DOTTED = re.compile(r"(?<![\w./-])((?:%s)(?:\.[A-Za-z_]\w*)+)" % "|".join(PACKAGES))
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces → ``-``."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    body = _FENCE.sub("", text)
    return {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", body, re.M)}


def broken_links(text: str, page: Path) -> list[str]:
    """Relative links of ``text`` (a Markdown page at ``page``) that do not resolve."""
    bad = []
    for target in _LINK.findall(_FENCE.sub("", text)):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(target)
            continue
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text(encoding="utf-8")):
            bad.append(target)
    return bad


def missing_paths(text: str, root: Path = ROOT) -> list[str]:
    """Repository paths named in ``text`` that do not exist (placeholders are skipped)."""
    bad = []
    for raw in _PATH.findall(text):
        token = raw.rstrip(".,:;")
        if any(c in token for c in "*<>…"):
            continue
        path, _, func = token.partition("::")
        dest = root / path
        if not dest.exists():
            bad.append(token)
        elif func and not re.search(rf"^\s*(?:async\s+)?def {re.escape(func)}\b",
                                    dest.read_text(encoding="utf-8"), re.M):
            bad.append(token)
    return bad


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as exc:
            if exc.name and ".".join(parts[:cut]).startswith(exc.name):
                continue  # not a module: try a shorter prefix, the rest are attributes
            raise  # a module that exists but whose own import fails is a real error
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                try:  # a submodule not yet imported by its package
                    obj = importlib.import_module(f"{obj.__name__}.{attr}")
                    continue
                except (ModuleNotFoundError, AttributeError):
                    return False
            obj = getattr(obj, attr)
        return True
    return False


def unresolved_names(text: str) -> list[str]:
    """Dotted toolkit names in ``text`` (``theory.derived.f_at_0``) that do not resolve."""
    return sorted({name for name in _DOTTED.findall(text) if not _resolves(name)})


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        names = [n for n in out.stdout.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk the tree
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                 if p.is_file() and ".git" not in p.parts and "__pycache__" not in p.parts]
    return [ROOT / n for n in names if (ROOT / n).is_file()]


def outside_references(text: str, rel: str) -> list[str]:
    """References to the team notes outside the repository, and ``THEORY.md`` named without
    ``docs/`` outside ``docs/`` (inside ``docs/`` a bare name is a relative link)."""
    bad = [s for s in (SHARED, "/shared/", "OFFLINE" + "_DATA") if s in text]
    if not rel.startswith("docs/"):
        bad += [m.group() for m in re.finditer(r"(?<![\w/.-])[\w./-]*THEORY\.md", text)
                if m.group() != "docs/THEORY.md"]
    return bad


# ----------------------------------------------------------------------------- the checks
def test_docs_exist_and_are_linked_from_the_readme():
    names = {p.name for p in DOCS}
    assert {"THEORY.md", "DATA.md", "ARCHITECTURE.md"} <= names
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("THEORY.md", "DATA.md", "ARCHITECTURE.md"):
        assert f"](docs/{name})" in readme, f"README.md does not link docs/{name}"
    # the two set-up commands stay the first thing a reader sees
    first_block = readme.split("```")[1]
    assert "bash scripts/install.sh && w2sg reproduce" in first_block
    assert "bash scripts/install.sh && python3 -m pytest -q" in first_block


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(page):
    assert broken_links(page.read_text(encoding="utf-8"), page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_named_paths_exist(page):
    assert missing_paths(page.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_named_python_objects_exist(page):
    assert unresolved_names(page.read_text(encoding="utf-8")) == []


def prose(source: str) -> str:
    """The docstrings and comments of a Python source (string literals that are data, such
    as module names handed to ``importlib``, are not references)."""
    parts = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                parts.append(doc)
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    parts += [tok.string for tok in tokens if tok.type == tokenize.COMMENT]
    return "\n".join(parts)


def test_references_in_code_and_notebooks_resolve():
    """Docstrings and comments of every tracked Python file (code, tests, notebooks; the
    notebooks' Markdown cells are comments) name only paths and toolkit objects that exist."""
    me = Path(__file__).resolve()
    offenders = {}
    for path in _tracked_files():
        if path.suffix != ".py" or path.resolve() == me:
            continue
        text = prose(path.read_text(encoding="utf-8", errors="replace"))
        bad = missing_paths(text) + unresolved_names(text)
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}


def test_no_tracked_file_points_outside_the_repository():
    offenders = {}
    me = Path(__file__).resolve()
    for path in _tracked_files():
        if path.resolve() == me or path.suffix in (".png", ".pdf", ".npz", ".npy"):
            continue
        rel = str(path.relative_to(ROOT))
        bad = outside_references(path.read_text(encoding="utf-8", errors="replace"), rel)
        if bad:
            offenders[rel] = bad
    assert offenders == {}


# ----------------------------------------------------------------------------- the checkers fail
def test_checkers_report_broken_references(tmp_path):
    page = tmp_path / "docs" / "X.md"
    page.parent.mkdir()
    (tmp_path / "docs" / "Y.md").write_text("# Real heading\n")
    text = ("[ok](Y.md#real-heading) [gone](Z.md) [bad anchor](Y.md#nope) [web](https://x.org)\n"
            "`theory/generators.py` `theory/no_such.py` `runs/<task>/x.json` "
            "`tests/test_docs.py::test_links_resolve` `tests/test_docs.py::test_nothing_here`\n"
            "`theory.derived.f_at_0` `theory.derived.no_such_function` `experiments.nope`\n")
    assert broken_links(text, page) == ["Z.md", "Y.md#nope"]
    assert missing_paths(text) == ["theory/no_such.py", "tests/test_docs.py::test_nothing_here"]
    assert unresolved_names(text) == ["experiments.nope", "theory.derived.no_such_function"]
    assert outside_references(f"see {SHARED}/THEORY.md", "theory/x.py") == [
        SHARED, "/shared/", f"{SHARED}/THEORY.md"]
    assert outside_references("see `THEORY.md`", "README.md") == ["THEORY.md"]
    assert outside_references("see `docs/THEORY.md` and [t](THEORY.md)", "docs/A.md") == []
    assert outside_references("see `docs/THEORY.md`", "README.md") == []


def test_prose_is_docstrings_and_comments():
    source = ('"""Module: see `theory/a.py`."""\nX = "theory.not_a_reference"  # see `theory/b.py`\n'
              'def f():\n    """Uses `theory.derived.f_at_0`."""\n')
    text = prose(source)
    assert "theory/a.py" in text and "theory/b.py" in text and "theory.derived.f_at_0" in text
    assert "not_a_reference" not in text


def test_slug_matches_github():
    assert _slug("The LLM path (GPT-2 / HH-RLHF) for machines with a hub") == \
        "the-llm-path-gpt-2--hh-rlhf-for-machines-with-a-hub"
    assert _slug("C1 — Variational form and convex conjugate") == "c1--variational-form-and-convex-conjugate"
    assert _slug("The claims") == "the-claims"
