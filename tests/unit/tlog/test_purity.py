"""gateway.tlog is spec-pure: no module of it imports anything of the gateway outside the
package (the tessera style), so the transparency-log code could be published on its own
and never depends on how the gateway stores, configures or reports things."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gateway.tlog

TLOG = Path(gateway.tlog.__file__).parent
PACKAGE = "gateway.tlog"


def _resolve(module: str | None, level: int, importer: str) -> str:
    """The absolute name ``from <level dots><module> import ...`` in ``importer`` names."""
    if level == 0:
        return module or ""
    parts = importer.split(".")
    # A module's own package is its name minus the last part; each further dot goes up.
    base = parts[: len(parts) - level]
    return ".".join([*base, module] if module else base)


def _is_foreign(name: str) -> bool:
    inside = name == PACKAGE or name.startswith(PACKAGE + ".")
    return (name == "gateway" or name.startswith("gateway.")) and not inside


def foreign_imports(source: str, importer: str) -> list[str]:
    """Every module of the gateway outside gateway.tlog that ``source`` (the text of the
    module ``importer``) imports: ``import``, ``from ... import`` (relative ones resolved,
    nested ones included) and ``importlib.import_module``/``__import__`` of a literal."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [_resolve(node.module, node.level, importer)]
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if called in {"import_module", "__import__"} and isinstance(first, ast.Constant):
                names = [str(first.value)]
        found.extend(name for name in names if _is_foreign(name))
    return found


def _modules() -> list[tuple[str, Path]]:
    """(importer name, path) of every module; a package's ``__init__`` keeps that part, so
    that its relative imports resolve against the package itself."""
    return [
        (".".join([PACKAGE, *path.relative_to(TLOG).with_suffix("").parts]), path)
        for path in sorted(TLOG.rglob("*.py"))
    ]


def test_the_walk_finds_every_module() -> None:
    names = {name for name, _ in _modules()}
    assert {
        "gateway.tlog.__init__",
        "gateway.tlog.rfc6962",
        "gateway.tlog.note",
        "gateway.tlog.checkpoint",
        "gateway.tlog.cosignature",
        "gateway.tlog.errors",
    } <= names


@pytest.mark.parametrize(("module", "path"), _modules(), ids=lambda v: str(v))
def test_module_imports_nothing_of_the_gateway_outside_tlog(module: str, path: Path) -> None:
    assert foreign_imports(path.read_text(encoding="utf-8"), module) == []


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import gateway.audit.record", ["gateway.audit.record"]),
        ("from gateway.errors import GatewayError", ["gateway.errors"]),
        ("from gateway import errors", ["gateway"]),
        ("from .. import errors", ["gateway"]),
        ("from ..audit import record", ["gateway.audit"]),
        ("def f():\n    from gateway.dsn import parse_dsn\n", ["gateway.dsn"]),
        ("import importlib\nimportlib.import_module('gateway.settings')", ["gateway.settings"]),
        ("__import__('gateway.wiring')", ["gateway.wiring"]),
        ("from . import errors\nfrom .note import Verifier\nimport hashlib", []),
        ("from gateway.tlog.note import Verifier\nimport gateway.tlog.errors", []),
        ("import gatewayish", []),
    ],
)
def test_the_walker_catches_every_form_of_import(source: str, found: list[str]) -> None:
    assert foreign_imports(source, "gateway.tlog.checkpoint") == found


def test_a_package_init_resolves_relative_imports_against_itself() -> None:
    assert (
        foreign_imports(
            "from . import note\nfrom .errors import NoteError", "gateway.tlog.__init__"
        )
        == []
    )
    assert foreign_imports("from .. import errors", "gateway.tlog.__init__") == ["gateway"]
