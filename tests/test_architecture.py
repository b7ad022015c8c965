"""The package's shape: the import contracts in pyproject.toml hold, and no import cycle exists."""

from __future__ import annotations

import sys

import grimp
from importlinter.cli import lint_imports

from tests.paths import ROOT


def test_import_contracts_are_kept():
    """The layers (commands on top; engine beside observers; domain below) and the engine's
    ban on outputs, as declared in pyproject.toml's [tool.importlinter]."""
    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    assert code == 0, "an import breaks a contract; run `lint-imports` to see which"


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Groups of modules that import each other, directly or not (Tarjan's algorithm)."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return groups


def test_no_module_imports_itself_through_others():
    """No import cycle, counting imports inside functions too (grimp reads every import)."""
    graph = grimp.build_graph("kavier", include_external_packages=False)
    assert strongly_connected(graph) == []


def test_the_cycle_finder_finds_a_cycle(tmp_path, monkeypatch):
    """The check above can fail: a package whose two modules import each other is caught."""
    pkg = tmp_path / "cyclic_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from cyclic_pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from cyclic_pkg import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("cyclic_pkg", include_external_packages=False, cache_dir=None)
    assert strongly_connected(graph) == [["cyclic_pkg.a", "cyclic_pkg.b"]]


def test_code_and_docs_cite_no_file_outside_the_repository():
    """The project's own words: nothing under src/ or docs/ refers to the original design file."""
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("src", "docs")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in {".py", ".md", ".toml"} and "DESIGN.md" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
