"""What the message catalogue must hold: shared by tests/unit/test_i18n.py and
scripts/messages.py (which writes it)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from babel.messages.extract import extract_from_dir

import gateway
import gateway.errors as errors

PACKAGE = Path(gateway.__file__).resolve().parent


def error_classes() -> list[type[errors.GatewayError]]:
    """GatewayError and every subclass of it the gateway defines (every module is
    imported first: a subclass exists only once its module ran)."""
    for module in pkgutil.walk_packages(gateway.__path__, "gateway."):
        if not module.name.endswith(".__main__"):  # that one runs the CLI
            importlib.import_module(module.name)
    found: list[type[errors.GatewayError]] = []
    todo: list[type[errors.GatewayError]] = [errors.GatewayError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def catalogue_messages() -> dict[str, list[tuple[str, int]]]:
    """Every msgid: each ``msg("…")`` template in the package (with where it is) and
    each error title."""
    found: dict[str, list[tuple[str, int]]] = {}
    extracted = extract_from_dir(
        str(PACKAGE),
        method_map=[("**.py", "python")],
        keywords={"msg": None},
        comment_tags=(),
        strip_comment_tags=True,
    )
    for filename, lineno, message, _comments, _context in extracted:
        text = message if isinstance(message, str) else message[0]
        found.setdefault(text, []).append((f"gateway/{filename}", lineno))
    for cls in error_classes():
        found.setdefault(cls.title, []).append(("gateway/errors.py", 0))
    return found
