"""The portable regular expressions of the ``regex`` mask.

PostgreSQL (ARE), MariaDB (PCRE2), DuckDB (RE2), SQLite (Python ``re``, through a UDF)
agree on a small subset only, so a mask pattern is parsed here and regenerated in one
canonical form that all four read alike. The subset: literal characters (any character;
punctuation escaped with ``\\``), character classes ``[...]`` and ``[^...]`` of characters
and ranges, ``\\d`` (exactly ``[0-9]``: engines disagree on non-ASCII digits), each
optionally followed by ``?``, ``*``, ``+``, ``{n}``, ``{n,}`` or ``{n,m}`` (greedy).
Refused because the engines differ on them: ``.`` (newlines), anchors, groups and
alternation (leftmost-first against leftmost-longest), ``\\w``/``\\s``/``\\b``
(Unicode tables), back-references, lazy quantifiers, and any pattern that can match the
empty string (engines replace empty matches at different positions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from gateway.errors import ConfigurationError

__all__ = ["canonical_pattern", "sqlite_regexp_replace"]

_MAX_PATTERN_CHARS: Final = 200
_MAX_REPEAT: Final = 1000  # RE2's limit for a counted repetition
_META: Final = frozenset("\\^$.|?*+()[]{}")
_CLASS_META: Final = frozenset("\\]^-[")
_QUANTIFIER: Final = re.compile(r"\{([0-9]{1,4})(,([0-9]{0,4}))?\}")


@dataclass(frozen=True, slots=True)
class _Atom:
    text: str  # canonical form of one character or class
    low: int
    high: int | None  # None: unbounded


def canonical_pattern(pattern: str) -> str:
    """The canonical form of ``pattern`` (see the module docstring), or ConfigurationError
    saying which construct is not portable and what to write instead."""
    if len(pattern) > _MAX_PATTERN_CHARS:
        raise ConfigurationError(f"regex pattern: at most {_MAX_PATTERN_CHARS} characters")
    atoms = _atoms(pattern)
    if not any(atom.low > 0 for atom in atoms):
        raise ConfigurationError(
            f"regex pattern {pattern!r} can match the empty string; require at least one character"
        )
    return "".join(atom.text + _quantifier(atom) for atom in atoms)


def _atoms(pattern: str) -> list[_Atom]:
    atoms: list[_Atom] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "[":
            text, i = _class(pattern, i + 1)
        elif ch == "\\":
            text, i = _escape(pattern, i + 1)
        elif ch in _META:
            raise ConfigurationError(_unsupported(pattern, ch))
        else:
            text, i = _literal(ch), i + 1
        low, high, i = _repeat(pattern, i)
        atoms.append(_Atom(text, low, high))
    return atoms


def _unsupported(pattern: str, ch: str) -> str:
    hint = {
        ".": "write a class such as [^ ] or [0-9] instead of '.'",
        "^": "anchors are not portable; the mask replaces matches anywhere",
        "$": "anchors are not portable; the mask replaces matches anywhere",
        "(": "groups and alternation are not portable; write one pattern per mask",
        ")": "groups and alternation are not portable; write one pattern per mask",
        "|": "groups and alternation are not portable; write one pattern per mask",
    }.get(ch, f"escape it as '\\{ch}' to mean the character itself")
    return f"regex pattern {pattern!r}: {ch!r} is not supported ({hint})"


def _literal(ch: str) -> str:
    # Escaping every non-alphanumeric ASCII character is read as the character itself by
    # all four engines; alphanumerics must not be escaped (\d, \w ... are classes).
    if ch.isascii() and not ch.isalnum():
        return "\\" + ch
    return ch


def _escape(pattern: str, i: int) -> tuple[str, int]:
    if i >= len(pattern):
        raise ConfigurationError(f"regex pattern {pattern!r} ends with a lone '\\'")
    ch = pattern[i]
    if ch == "d":
        return "[0-9]", i + 1
    if ch.isascii() and not ch.isalnum() and ch.isprintable() and ch != " ":
        return "\\" + ch, i + 1
    raise ConfigurationError(
        f"regex pattern {pattern!r}: '\\{ch}' is not supported (portable: \\d for [0-9], "
        "'\\' before punctuation, classes such as [A-Za-z])"
    )


def _class(pattern: str, i: int) -> tuple[str, int]:
    out = ["["]
    if i < len(pattern) and pattern[i] == "^":
        out.append("^")
        i += 1
    members = 0
    while True:
        if i >= len(pattern):
            raise ConfigurationError(f"regex pattern {pattern!r}: '[' without its ']'")
        ch = pattern[i]
        if ch == "]" and members:
            return "".join(out) + "]", i + 1
        if pattern.startswith("\\d", i):
            out.append("0-9")
            i += 2
            members += 1
            continue
        first, i = _class_char(pattern, i)
        if i + 1 < len(pattern) and pattern[i] == "-" and pattern[i + 1] != "]":
            last, i = _class_char(pattern, i + 1)
            if ord(last) < ord(first):
                raise ConfigurationError(
                    f"regex pattern {pattern!r}: range {first}-{last} is reversed"
                )
            out.append(_in_class(first) + "-" + _in_class(last))
        else:
            out.append(_in_class(first))
        members += 1


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    ch = pattern[i]
    if ch == "\\":
        if i + 1 >= len(pattern):
            raise ConfigurationError(f"regex pattern {pattern!r} ends with a lone '\\'")
        nxt = pattern[i + 1]
        if nxt.isascii() and not nxt.isalnum():
            return nxt, i + 2
        raise ConfigurationError(
            f"regex pattern {pattern!r}: '\\{nxt}' inside [...] is not supported "
            "(\\d and ranges such as A-Z are)"
        )
    if ch == "[":
        raise ConfigurationError(
            f"regex pattern {pattern!r}: '[' inside [...] must be escaped (POSIX classes "
            "such as [:digit:] are not portable)"
        )
    return ch, i + 1


def _in_class(ch: str) -> str:
    return "\\" + ch if ch in _CLASS_META else ch


def _repeat(pattern: str, i: int) -> tuple[int, int | None, int]:
    if i >= len(pattern):
        return 1, 1, i
    ch = pattern[i]
    bounds: tuple[int, int | None]
    if ch == "?":
        bounds, i = (0, 1), i + 1
    elif ch == "*":
        bounds, i = (0, None), i + 1
    elif ch == "+":
        bounds, i = (1, None), i + 1
    elif ch == "{":
        m = _QUANTIFIER.match(pattern, i)
        if m is None:
            raise ConfigurationError(
                f"regex pattern {pattern!r}: write a repetition as {{n}}, {{n,}} or {{n,m}}"
            )
        low = int(m.group(1))
        high = low if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
        if (high is not None and high < low) or max(low, high or 0) > _MAX_REPEAT:
            raise ConfigurationError(
                f"regex pattern {pattern!r}: {m.group(0)} must have n <= m <= {_MAX_REPEAT}"
            )
        bounds, i = (low, high), m.end()
    else:
        return 1, 1, i
    if i < len(pattern) and pattern[i] in "?+*{":
        raise ConfigurationError(
            f"regex pattern {pattern!r}: lazy, possessive or stacked quantifiers are not portable"
        )
    return bounds[0], bounds[1], i


def _quantifier(atom: _Atom) -> str:
    if (atom.low, atom.high) == (1, 1):
        return ""
    if atom.high is None:
        return f"{{{atom.low},}}"
    if atom.low == atom.high:
        return f"{{{atom.low}}}"
    return f"{{{atom.low},{atom.high}}}"


def sqlite_regexp_replace(pattern: object, replacement: object, value: object) -> str | None:
    """The SQLite UDF ``gw_regexp_replace(canonical pattern, replacement, value)``: every
    match replaced by the literal replacement; NULL for NULL. It raises (failing the
    query) for a non-text value, rather than return what no other backend would."""
    if value is None:
        return None
    if not isinstance(pattern, str) or not isinstance(replacement, str):
        raise TypeError("gw_regexp_replace: pattern and replacement must be text")
    if not isinstance(value, str):
        raise TypeError(f"gw_regexp_replace: cannot mask a {type(value).__name__}")
    return re.sub(pattern, lambda _: replacement, value)
