"""The package's modules import each other without cycles.

A cycle between modules works or fails depending on which is imported first, so it is
a bug waiting for a new entry point. Only imports that run at import time count: those
at module level outside ``if TYPE_CHECKING:`` (imports inside functions are deferred on
purpose, e.g. to keep the CLI's start-up light)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "gateway"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".")
                    base = base if is_package else base[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)

    visit(tree.body)
    return {m for m in found if m == "gateway" or m.startswith("gateway.")}


def _graph() -> dict[str, set[str]]:
    """module -> the package modules it imports at import time."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text("utf-8"))
        imported = _runtime_imports(tree, name, path.name == "__init__.py")
        graph[name] = {t for t in imported if t in modules and t != name}
    return graph


def test_the_graph_is_read() -> None:
    graph = _graph()
    assert len(graph) > 100
    assert "gateway.query.plan" in graph["gateway.query.pipeline"]


def _check_acyclic(graph: dict[str, set[str]]) -> None:
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        raise AssertionError("import cycle: " + " -> ".join(exc.args[1])) from None


def test_a_cycle_is_found() -> None:
    tree = ast.parse("from gateway.b import x\nif TYPE_CHECKING:\n    from gateway.c import y\n")
    imported = _runtime_imports(tree, "gateway.a", is_package=False)
    assert imported == {"gateway.b", "gateway.b.x"}
    with pytest.raises(AssertionError, match="import cycle"):
        _check_acyclic({"gateway.a": {"gateway.b"}, "gateway.b": {"gateway.a"}})


def test_no_import_cycles() -> None:
    _check_acyclic(_graph())
