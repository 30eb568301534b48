"""The audit record and its canonical encoding.

One :class:`AuditRecord` is written for every request the gateway answers, whether it was
served, refused or failed. Its :meth:`AuditRecord.canonical_bytes` are what the store keeps
and what the (next-milestone) RFC 6962 Merkle log will commit to, so the encoding is
deliberately boring and fully specified:

* JSON (RFC 8259) encoded as UTF-8, non-ASCII characters kept as they are (no ``\\u``
  escapes for Chinese text), no BOM, no insignificant whitespace (``","`` and ``":"``);
* object members sorted by key in UTF-16 code-unit order (RFC 8785 §3.2.3; identical to
  code-point order for every key outside the astral planes), duplicate keys rejected;
* strings escaped as RFC 8785 §3.2.2.2 prescribes (only ``"``, ``\\`` and U+0000..U+001F,
  the latter as ``\\b \\t \\n \\f \\r`` or lowercase ``\\u00xx``);
* no floating-point numbers anywhere: integers only, within ±(2**53 − 1) so that every
  JSON implementation reads them exactly; ``true``/``false``/``null`` as usual;
* every field of the record is present (``null`` when absent), tuples become arrays,
  mappings become objects, and the top-level member ``"v"`` names the encoding version.

Decoding (:meth:`AuditRecord.from_canonical`) accepts only bytes that re-encode to exactly
themselves, so a stored record has one and only one byte representation.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, NoReturn

__all__ = [
    "ENCODING_VERSION",
    "LEAF_PREFIX",
    "AuditRecord",
    "Outcome",
    "canonical_json",
    "format_time",
    "is_audit_time",
    "leaf_hash_of",
    "new_audit_id",
]

#: The version of the canonical encoding this code writes. Version 3 added ``event`` (what
#: an administrative action changed: an application decided, a grant revoked, an account
#: created); version 2 added ``grants`` (approvals relied upon) and ``rows_root``
#: (commitment to the delivered rows). Versions 2 and 3 are read; version 1 logs predate
#: the Merkle log and are not.
ENCODING_VERSION: Final = 3

#: Versions :meth:`AuditRecord.from_canonical` accepts.
READABLE_VERSIONS: Final = frozenset({2, 3})

#: RFC 6962 §2.1: ``MTH({d(0)}) = SHA-256(0x00 || d(0))``. The 0x00 prefix for leaves
#: (0x01 for interior nodes) separates the two hash domains, so that no interior node can
#: be passed off as a leaf (second-preimage attack on the tree).
LEAF_PREFIX: Final = b"\x00"

#: Largest magnitude of an integer an IEEE-754 double holds exactly (RFC 8785 §3.2.2.3,
#: I-JSON RFC 7493 §2.2): anything larger would not survive a non-Python verifier.
_MAX_SAFE_INT: Final = 2**53 - 1

# [0-9], not \d: \d also matches other scripts' digits (e.g. "٢٠٢٦").
_TIME_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_SHA256_HEX_RE: Final = re.compile(r"[0-9a-f]{64}")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class Outcome(enum.StrEnum):
    """What happened to the request."""

    SERVED = "served"
    REFUSED = "refused"
    FAILED = "failed"


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC text with exactly six fractional digits, e.g.
    ``2026-11-23T19:00:00.123456Z``.

    The fixed width makes the text sort like the instant it names, which the stores rely
    on for ``since``/``until`` searches. Raises ValueError for a naive datetime (its zone
    would be a guess).
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("audit times must be timezone-aware datetimes")
    u = moment.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T"
        f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}Z"
    )


def is_audit_time(text: str) -> bool:
    """True when ``text`` is in exactly the :func:`format_time` shape."""
    if not isinstance(text, str) or _TIME_RE.fullmatch(text) is None:
        return False
    try:
        # Calendar check (month 1-12, day within month, hour < 24, ...); much cheaper
        # than strptime, and this runs for every stored record read back.
        datetime(
            int(text[0:4]),
            int(text[5:7]),
            int(text[8:10]),
            int(text[11:13]),
            int(text[14:16]),
            int(text[17:19]),
        )
    except ValueError:
        return False
    return True


def new_audit_id(now: datetime, *, random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """A UUIDv7 (RFC 9562 §5.7) string for a record created at ``now``.

    The 48-bit Unix-millisecond prefix makes ids sort by time; the 12 ``rand_a`` bits carry
    the sub-millisecond fraction (RFC 9562 §6.2 method 3), so ids from one clock also sort
    within a millisecond; 62 bits come from ``random_bytes`` (``os.urandom`` by default)
    for uniqueness across processes. Raises ValueError for a naive ``now`` or one outside
    1970..10889.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("new_audit_id needs a timezone-aware datetime")
    micros = (now - _EPOCH) // timedelta(microseconds=1)
    millis, sub_ms_us = divmod(micros, 1000)
    if not 0 <= millis < 2**48:
        raise ValueError("time outside the UUIDv7 range")
    rand_a = sub_ms_us * 4096 // 1000
    rand_b = int.from_bytes(random_bytes(8), "big") & ((1 << 62) - 1)
    value = (millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return str(uuid.UUID(int=value))


def _utf16_order(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _canonical_value(value: object, path: str) -> object:
    """Validate ``value`` for the canonical encoding and return it with every mapping
    rebuilt in canonical key order (dicts keep insertion order, so the C encoder of
    ``json`` then writes the members in that order). ``path`` names ``value`` in errors."""
    # bool before int: bool is an int subclass but encodes as true/false.
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
            raise ValueError(f"{path}: integer {value} is outside ±(2**53 - 1)")
        return int(value)
    if isinstance(value, float):
        raise TypeError(f"{path}: floats are not allowed in the canonical encoding")
    if isinstance(value, list | tuple):
        return [_canonical_value(item, f"{path}[]") for item in value]
    if isinstance(value, dict | MappingProxyType | Mapping):
        keys = list(value)
        for key in keys:
            if not isinstance(key, str):
                raise TypeError(f"{path}: object keys must be strings, got {type(key).__name__}")
        if all(key.isascii() for key in keys):
            keys.sort()  # for ASCII, code-point order is UTF-16 order
        else:
            # RFC 8785 §3.2.3 orders members by the UTF-16 code units of their names,
            # which differs from code-point order above U+FFFF.
            keys.sort(key=_utf16_order)
        return {key: _canonical_value(value[key], f"{path}.{key}") for key in keys}
    raise TypeError(f"{path}: {type(value).__name__} is not allowed in the canonical encoding")


def _dump(prepared: object) -> bytes:
    text = json.dumps(prepared, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # "strict" refuses lone surrogates (UnicodeEncodeError is a ValueError).
    return text.encode("utf-8", "strict")


def canonical_json(value: object) -> bytes:
    """The canonical encoding (see the module docstring) of a JSON-like value.

    Raises TypeError for a float, a non-string key or any type JSON cannot carry, and
    ValueError for an integer outside ±(2**53 − 1) or a string that is not valid Unicode
    (a lone surrogate cannot be encoded as UTF-8).
    """
    return _dump(_canonical_value(value, "$"))


def leaf_hash_of(data: bytes) -> bytes:
    """RFC 6962 §2.1 leaf hash of an entry: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def _reject_float(text: str) -> NoReturn:
    raise ValueError(f"floats are not allowed in an audit record: {text}")


def _reject_constant(text: str) -> NoReturn:
    raise ValueError(f"non-JSON constant {text} in an audit record")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r} in an audit record")
        result[key] = value
    return result


def _check_optional_str(name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"AuditRecord.{name} must be str or None, got {type(value).__name__}")


def _check_optional_int(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"AuditRecord.{name} must be int or None, got {type(value).__name__}")
    if not -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
        raise ValueError(f"AuditRecord.{name} is outside ±(2**53 - 1)")


def _str_tuple(name: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, tuple | list):
        raise TypeError(f"AuditRecord.{name} must be a tuple of str, got {type(value).__name__}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"AuditRecord.{name} must hold only str, got {type(item).__name__}")
    return items


def _str_mapping(name: str, value: object) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise TypeError(f"AuditRecord.{name} must be a mapping of str to str")
    copy: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise TypeError(f"AuditRecord.{name} must map str to str")
        copy[key] = item
    # A read-only copy: the record is a value, and later mutation of the caller's dict
    # must not change what canonical_bytes() says the record was.
    return MappingProxyType(copy)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """Everything the gateway knows about one request, fixed at the moment it answered.

    Construction validates every field (TypeError for a wrong type, including any float;
    ValueError for a malformed ``time``, ``response_sha256``, ``status``, ``outcome`` or an
    unknown ``v``), so any record that exists can be encoded. ``tables`` and
    ``row_filters`` accept lists and are stored as tuples; ``decisions`` and ``rules`` are
    copied into read-only mappings (which also makes records unhashable; key them by
    ``audit_id``).
    """

    #: Time-ordered unique id, normally :func:`new_audit_id`.
    audit_id: str
    #: When the gateway answered, as :func:`format_time` writes it.
    time: str
    request_id: str
    trace_id: str
    #: None when authentication failed (and likewise for system/officer/purpose).
    department: str | None
    system: str | None
    officer: str | None
    purpose: str | None
    client_ip: str | None
    #: The consumer's SQL as received.
    sql: str | None
    rewritten_sql: str | None
    backend: str | None
    policy_version: str | None
    #: ``dataset.table`` names touched.
    tables: tuple[str, ...]
    #: ``dataset.table.column`` → ``allow`` | ``mask:<kind>`` | ``deny``.
    decisions: Mapping[str, str]
    #: ``dataset.table.column`` → the matched policy rule, for explanations.
    rules: Mapping[str, str]
    #: Bound row-filter SQL that was applied.
    row_filters: tuple[str, ...]
    max_rows: int | None
    row_count: int | None
    truncated: bool
    #: Lowercase hex SHA-256 of the exact response bytes (without the receipt, which can
    #: only exist after this record was committed; see gateway/audit/receipt.py).
    response_sha256: str | None
    #: Lowercase hex RFC 6962 root over the salted hashes of the delivered rows, sorted
    #: (gateway/audit/rows.py): proves later whether one row was or was not delivered.
    rows_root: str | None
    #: Approvals/grants the decision relied upon (policy rules of conditional datasets,
    #: later the ids of approved requests), sorted; empty when none was needed.
    grants: tuple[str, ...]
    outcome: Outcome
    #: HTTP status returned.
    status: int
    error_code: str | None
    #: Detail shown to the client.
    reason: str | None
    #: Diagnostic text (e.g. a database error); never sent to clients.
    internal_reason: str | None
    duration_us: int | None
    #: What an administrative action changed (a JSON object: ``type`` plus the details),
    #: or None for a data access. Absent from version 2 records.
    event: Mapping[str, Any] | None = None
    #: Version of the canonical encoding.
    v: int = ENCODING_VERSION

    def __post_init__(self) -> None:
        for name in ("audit_id", "time", "request_id", "trace_id"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"AuditRecord.{name} must be str, got {type(value).__name__}")
        if not self.audit_id:
            raise ValueError("AuditRecord.audit_id must not be empty")
        if not is_audit_time(self.time):
            raise ValueError(
                "AuditRecord.time must be RFC 3339 UTC with microseconds, "
                "e.g. 2026-11-23T19:00:00.123456Z (use format_time)"
            )
        for name in (
            "department",
            "system",
            "officer",
            "purpose",
            "client_ip",
            "sql",
            "rewritten_sql",
            "backend",
            "policy_version",
            "response_sha256",
            "rows_root",
            "error_code",
            "reason",
            "internal_reason",
        ):
            _check_optional_str(name, getattr(self, name))
        for name in ("response_sha256", "rows_root"):
            value = getattr(self, name)
            if value is not None and not _SHA256_HEX_RE.fullmatch(value):
                raise ValueError(f"AuditRecord.{name} must be 64 lowercase hex digits")
        for name in ("max_rows", "row_count", "duration_us"):
            _check_optional_int(name, getattr(self, name))
        if not isinstance(self.truncated, bool):
            raise TypeError("AuditRecord.truncated must be bool")
        if isinstance(self.status, bool) or not isinstance(self.status, int):
            raise TypeError("AuditRecord.status must be int")
        if not 100 <= self.status <= 599:
            raise ValueError("AuditRecord.status must be an HTTP status (100..599)")
        if isinstance(self.v, bool) or not isinstance(self.v, int):
            raise TypeError("AuditRecord.v must be int")
        if self.v not in READABLE_VERSIONS:
            raise ValueError(f"unsupported audit record encoding version {self.v}")
        if self.event is not None:
            if self.v < 3:
                raise ValueError("AuditRecord.event needs encoding version 3")
            if not isinstance(self.event, Mapping):
                raise TypeError("AuditRecord.event must be a JSON object (a mapping)")
            # A canonical copy: later changes to the caller's dict cannot change the record.
            frozen = _canonical_value(self.event, "event")
            object.__setattr__(self, "event", MappingProxyType(frozen))  # type: ignore[arg-type]
        if not isinstance(self.outcome, str):
            raise TypeError("AuditRecord.outcome must be an Outcome")
        object.__setattr__(self, "outcome", Outcome(self.outcome))
        object.__setattr__(self, "tables", _str_tuple("tables", self.tables))
        object.__setattr__(self, "row_filters", _str_tuple("row_filters", self.row_filters))
        object.__setattr__(self, "grants", _str_tuple("grants", self.grants))
        object.__setattr__(self, "decisions", _str_mapping("decisions", self.decisions))
        object.__setattr__(self, "rules", _str_mapping("rules", self.rules))

    def to_json_object(self) -> dict[str, object]:
        """The record as a JSON-ready dict: every field, plain types, members (and those
        of ``decisions``/``rules``) in canonical order. Raises as :meth:`canonical_bytes`."""
        out: dict[str, object] = {}
        for name in _FIELDS_OF[self.v]:
            value = getattr(self, name)
            kind = type(value)
            # Fast path for the common scalar types; everything else (ints with their
            # range check, tuples, mappings, and any float smuggled past __post_init__)
            # goes through the general validator.
            if value is None or kind is str or kind is bool:
                out[name] = value
            elif kind is Outcome:
                out[name] = value.value
            else:
                out[name] = _canonical_value(value, name)
        return out

    def canonical_bytes(self) -> bytes:
        """The canonical encoding of the record (see the module docstring).

        Deterministic: equal records give identical bytes on every platform. Raises
        TypeError if a float found its way into the record, ValueError for an
        out-of-range integer or a string with a lone surrogate.
        """
        return _dump(self.to_json_object())

    def leaf_hash(self) -> bytes:
        """RFC 6962 §2.1 leaf hash ``SHA-256(0x00 || canonical_bytes())``, 32 bytes."""
        return leaf_hash_of(self.canonical_bytes())

    @classmethod
    def from_canonical(cls, data: bytes) -> AuditRecord:
        """Decode bytes written by :meth:`canonical_bytes`.

        Guarantees ``AuditRecord.from_canonical(b).canonical_bytes() == b``: input that is
        valid JSON but not in canonical form (other key order, whitespace, escapes, a
        float, a duplicate key, a missing or extra member, another ``v``) raises ValueError.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError("from_canonical needs bytes")
        raw = bytes(data)
        try:
            text = raw.decode("utf-8", "strict")
            obj = json.loads(
                text,
                parse_float=_reject_float,
                parse_constant=_reject_constant,
                object_pairs_hook=_unique_object,
            )
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a canonical audit record: {exc}") from exc
        if not isinstance(obj, dict):
            raise ValueError("not a canonical audit record: top level is not an object")
        version = obj.get("v")
        if version not in READABLE_VERSIONS or isinstance(version, bool):
            raise ValueError(f"unsupported audit record encoding version {version!r}")
        expected = frozenset(_FIELDS_OF[version])
        if obj.keys() != expected:
            missing = sorted(expected - obj.keys())
            extra = sorted(obj.keys() - expected)
            raise ValueError(f"audit record members differ: missing {missing}, extra {extra}")
        for name in ("tables", "row_filters", "grants"):
            if not isinstance(obj[name], list):
                raise ValueError(f"audit record member {name} must be an array")
        for name in ("decisions", "rules"):
            if not isinstance(obj[name], dict):
                raise ValueError(f"audit record member {name} must be an object")
        if obj.get("event") is not None and not isinstance(obj["event"], dict):
            raise ValueError("audit record member event must be an object or null")
        try:
            record = cls(**obj)
        except TypeError as exc:
            raise ValueError(f"not a canonical audit record: {exc}") from exc
        if record.canonical_bytes() != raw:
            raise ValueError("audit record bytes are not in canonical form")
        return record


#: Field names in canonical (sorted) order; all ASCII, so code-point order is RFC 8785's.
_SORTED_FIELDS: Final[tuple[str, ...]] = tuple(sorted(f.name for f in fields(AuditRecord)))
#: The members of each readable version (version 2 has no ``event``).
_FIELDS_OF: Final[Mapping[int, tuple[str, ...]]] = MappingProxyType(
    {
        2: tuple(f for f in _SORTED_FIELDS if f != "event"),
        3: _SORTED_FIELDS,
    }
)
