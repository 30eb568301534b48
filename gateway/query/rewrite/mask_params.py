"""Parameters of masks as officers write them: ``kind:key=value;key=value``.

A mask is written ``kind`` or ``kind:arg`` (:class:`gateway.domain.MaskSpec`). For the
parameterised kinds the argument is a list of ``key=value`` pairs separated by ``;``
(a ``;`` belongs to the value unless a known ``key=`` follows it), e.g.
``partial:first=1;last=0;fill=length`` or ``name:fill=length``. This module turns that
text into typed parameters, or a ConfigurationError that names the mask, the parameter
and what is allowed; it generates no SQL (see ``masks.py``).

The partial mask keeps the first ``first`` and last ``last`` characters and hides the
rest: with ``fill=length`` one ``char`` per hidden character (length-preserving,
``李琪`` -> ``李*``), with ``fill=<k>`` exactly ``k`` characters whatever the length
(length-hiding). A value of at most ``first + last`` characters is hidden entirely, so a
short value is never revealed by its kept characters. The historical kinds are presets
of it (:data:`PRESETS`) whose parameters can be overridden the same way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Final

from gateway.domain import MaskSpec
from gateway.errors import ConfigurationError

__all__ = [
    "MAX_FILL",
    "MAX_KEEP",
    "PRESETS",
    "DateShift",
    "Partial",
    "RegexParams",
    "date_shift_params",
    "email_params",
    "partial_params",
    "regex_params",
]

#: Most characters a partial mask may keep at either end, and most filler characters.
MAX_KEEP: Final = 1000
MAX_FILL: Final = 64
_MAX_SHIFT_DAYS: Final = 3650
_MAX_REPLACEMENT_CHARS: Final = 200
_IDENTIFIER: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_NUMBER: Final = re.compile(r"0|[1-9][0-9]{0,5}")
_KEYS: Final = ("first", "last", "char", "fill", "pattern", "replace", "days", "key")
_SPLIT: Final = re.compile(r";(?=\s*(?:" + "|".join(_KEYS) + r")\s*=)")


@dataclass(frozen=True, slots=True)
class Partial:
    """Keep ``first`` and ``last`` characters; hide the rest with ``char``, one per hidden
    character when ``fill`` is None, else exactly ``fill`` of them."""

    first: int = 0
    last: int = 0
    char: str = "*"
    fill: int | None = None


#: The named kinds that are partial masks with preset parameters.
PRESETS: Final[Mapping[str, Partial]] = MappingProxyType(
    {
        "partial": Partial(),
        "name": Partial(first=1, fill=2),
        "id_number": Partial(first=1, last=2, fill=15),
        "phone": Partial(first=3, last=4, fill=4),
        "bank_card": Partial(first=4, last=4, fill=8),
        "address": Partial(first=6, fill=4),
    }
)

#: The part before the first ``@`` of an email is masked with these defaults.
_EMAIL_DEFAULT: Final = Partial(first=1, fill=3)


@dataclass(frozen=True, slots=True)
class RegexParams:
    """Replace every match of ``pattern`` (the portable subset, see ``mask_regex``)."""

    pattern: str
    replacement: str


@dataclass(frozen=True, slots=True)
class DateShift:
    """Shift by a whole number of days in [-days, days], the same for every date of one
    value of the ``key`` column (e.g. one person), derived from a keyed hash."""

    days: int
    key: str


def _pairs(spec: MaskSpec, allowed: tuple[str, ...]) -> dict[str, str]:
    if spec.arg is None:
        return {}
    pairs: dict[str, str] = {}
    for part in _SPLIT.split(spec.arg):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigurationError(
                f"mask {str(spec)!r}: write parameters as key=value separated by ';' "
                f"(keys of {spec.kind!r}: {', '.join(allowed)})"
            )
        if key not in allowed:
            raise ConfigurationError(
                f"mask {str(spec)!r}: unknown parameter {key!r}; "
                f"{spec.kind!r} takes {', '.join(allowed)}"
            )
        if key in pairs:
            raise ConfigurationError(f"mask {str(spec)!r}: parameter {key!r} given twice")
        pairs[key] = value.strip()
    return pairs


def _number(spec: MaskSpec, key: str, value: str, low: int, high: int) -> int:
    # A regex, not int(): int() also accepts '+5', ' 5', '1_000' and non-ASCII digits.
    if not _NUMBER.fullmatch(value) or not low <= int(value) <= high:
        raise ConfigurationError(
            f"mask {str(spec)!r}: {key} must be a whole number from {low} to {high} (got {value!r})"
        )
    return int(value)


def _visible_text(spec: MaskSpec, key: str, value: str) -> None:
    # Control and unassigned characters would be invisible in results and logs.
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise ConfigurationError(f"mask {str(spec)!r}: {key} may not contain control characters")


def _partial_from(spec: MaskSpec, base: Partial) -> Partial:
    pairs = _pairs(spec, ("first", "last", "char", "fill"))
    result = base
    if "first" in pairs:
        result = replace(result, first=_number(spec, "first", pairs["first"], 0, MAX_KEEP))
    if "last" in pairs:
        result = replace(result, last=_number(spec, "last", pairs["last"], 0, MAX_KEEP))
    if "char" in pairs:
        char = pairs["char"]
        if len(char) != 1:
            raise ConfigurationError(
                f"mask {str(spec)!r}: char must be exactly one character (got {char!r})"
            )
        _visible_text(spec, "char", char)
        result = replace(result, char=char)
    if "fill" in pairs:
        fill = pairs["fill"]
        if fill == "length":
            result = replace(result, fill=None)
        elif _NUMBER.fullmatch(fill) and 1 <= int(fill) <= MAX_FILL:
            result = replace(result, fill=int(fill))
        else:
            raise ConfigurationError(
                f"mask {str(spec)!r}: fill must be 'length' (one mask character per hidden "
                f"character) or a number of mask characters from 1 to {MAX_FILL} (got {fill!r})"
            )
    return result


def partial_params(spec: MaskSpec) -> Partial:
    """The parameters of a ``partial`` mask or one of its presets (``address:N`` is the
    historical form of ``address:first=N``). Raises ConfigurationError."""
    base = PRESETS[spec.kind]
    if spec.kind == "address" and spec.arg is not None and "=" not in spec.arg:
        if not _NUMBER.fullmatch(spec.arg.strip()) or not 1 <= int(spec.arg) <= MAX_KEEP:
            raise ConfigurationError(
                f"mask {str(spec)!r}: the argument must be an integer from 1 to {MAX_KEEP}"
            )
        return replace(base, first=int(spec.arg))
    return _partial_from(spec, base)


def email_params(spec: MaskSpec) -> Partial:
    """The partial mask applied to the part of an email before its first ``@``."""
    return _partial_from(spec, _EMAIL_DEFAULT)


def regex_params(spec: MaskSpec) -> RegexParams:
    """``regex:pattern=<p>;replace=<text>`` (replace defaults to ``***``). The pattern is
    checked by the caller against the portable subset; here only its presence."""
    pairs = _pairs(spec, ("pattern", "replace"))
    pattern = pairs.get("pattern", "")
    if not pattern:
        raise ConfigurationError(
            f"mask {str(spec)!r}: needs a pattern, e.g. 'regex:pattern=[0-9]{{17}}[0-9Xx]'"
        )
    replacement = pairs.get("replace", "***")
    if len(replacement) > _MAX_REPLACEMENT_CHARS:
        raise ConfigurationError(
            f"mask {str(spec)!r}: replace has at most {_MAX_REPLACEMENT_CHARS} characters"
        )
    if "\\" in replacement:
        # Every engine reads a backslash in the replacement as a group reference.
        raise ConfigurationError(f"mask {str(spec)!r}: replace may not contain '\\'")
    _visible_text(spec, "replace", replacement)
    return RegexParams(pattern, replacement)


def date_shift_params(spec: MaskSpec) -> DateShift:
    """``date_shift:days=<N>;key=<column>``, both required."""
    pairs = _pairs(spec, ("days", "key"))
    if "days" not in pairs or "key" not in pairs:
        raise ConfigurationError(
            f"mask {str(spec)!r}: needs days and key, e.g. 'date_shift:days=30;key=id_number' "
            "(dates of one key value move together)"
        )
    key = pairs["key"]
    if not _IDENTIFIER.fullmatch(key):
        raise ConfigurationError(f"mask {str(spec)!r}: key must be a column name (got {key!r})")
    return DateShift(_number(spec, "days", pairs["days"], 1, _MAX_SHIFT_DAYS), key)
