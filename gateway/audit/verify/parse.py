"""Reading the evidence's JSON: hashes, sizes, entries and key epochs.

Nothing here trusts anything yet: a member that does not have the shape the bundle format
prescribes (:mod:`gateway.audit.bundle`) is a :class:`MalformedError` or a failed check,
never a crash, because for an auditor "this evidence is broken" is a finding.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from gateway.audit.record import AuditRecord, leaf_hash_of
from gateway.audit.verify.report import Checks
from gateway.tlog.note import Verifier

__all__ = [
    "EpochEntry",
    "MalformedError",
    "ParsedEntry",
    "hash_list",
    "json_size",
    "parse_entries",
    "parse_epochs",
    "short_root",
]

_HASH_SIZE: Final = 32


class MalformedError(ValueError):
    """A member of the evidence does not have the shape the format prescribes."""


def hash_list(value: object, what: str) -> list[bytes]:
    """A JSON list of standard-base64 32-byte hashes."""
    if not isinstance(value, list):
        raise MalformedError(f"{what} is not a list of base64 hashes")
    return [_hash(item, f"{what}: hash {n}") for n, item in enumerate(value)]


def _hash(item: object, what: str) -> bytes:
    if not isinstance(item, str):
        raise MalformedError(f"{what} is not a string")
    try:
        raw = base64.b64decode(item.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise MalformedError(f"{what} is not valid base64") from None
    if len(raw) != _HASH_SIZE:
        raise MalformedError(f"{what} is {len(raw)} bytes, not {_HASH_SIZE}")
    # As the signed notes do: one value, one spelling (no stray trailing bits).
    if base64.b64encode(raw).decode("ascii") != item:
        raise MalformedError(f"{what} is not canonical base64")
    return raw


def json_size(value: object) -> int | None:
    """A non-negative JSON integer (bool is not one), or None."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def short_root(root: bytes) -> str:
    """The first characters of a root's base64, for messages."""
    return base64.b64encode(root).decode("ascii")[:12] + "…"


# ---------------------------------------------------------------------------- entries


@dataclass
class ParsedEntry:
    """One entry of a bundle: its index, record bytes and their leaf hash."""

    position: int
    index: int
    data: bytes
    leaf: bytes
    #: None when the text is not a canonical record, or when decoding was deferred
    #: (``decode_records=False``) and nothing needed this entry's fields yet.
    record: AuditRecord | None
    proof: list[bytes] | None
    decoded: bool = True

    def fields(self) -> AuditRecord | None:
        """The decoded record, decoding it now if that was deferred."""
        if not self.decoded:
            self.decoded = True
            try:
                self.record = AuditRecord.from_canonical(self.data)
            except (TypeError, ValueError):
                self.record = None
        return self.record


def _entry_data(position: int, item: object) -> tuple[int, bytes]:
    """``(index, record bytes)`` of a bundle entry; MalformedError names what is wrong."""
    where = f"entry at position {position}"
    if not isinstance(item, Mapping):
        raise MalformedError(f"{where} is not an object")
    index, text = json_size(item.get("index")), item.get("record")
    if index is None:
        raise MalformedError(f"{where} has no valid index")
    if not isinstance(text, str):
        raise MalformedError(f"entry {index} has no record text")
    try:
        return index, text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedError(f"entry {index}: the record text is not valid Unicode") from None


def _decode(index: int, data: bytes, checks: Checks) -> tuple[AuditRecord | None, bool]:
    """``(record or None, whether it is canonical)``, failing a ``records`` check if not."""
    try:
        return AuditRecord.from_canonical(data), True
    except (TypeError, ValueError) as exc:
        checks.fail(
            "records",
            f"entry {index}: the record text is not a canonical audit record ({exc}); "
            "it was edited or corrupted",
        )
        return None, False


def parse_entries(
    raw: list[object], complete: bool, checks: Checks, decode_records: bool = True
) -> list[ParsedEntry]:
    """The bundle's entries that can be read at all (the others fail a check). Partial
    bundles carry an inclusion proof per entry; complete ones do not need any."""
    entries: list[ParsedEntry] = []
    bad_records = 0
    archived = 0
    for position, item in enumerate(raw):
        if complete and isinstance(item, Mapping) and "archived" in item:
            # Archived past retention: the record is in its archive bundle; the leaf
            # hash still rebuilds the tree (gateway/audit/bundle.py).
            try:
                entries.append(_archived_entry(position, item))
                archived += 1
            except MalformedError as exc:
                checks.fail("records", str(exc))
            continue
        try:
            index, data = _entry_data(position, item)
        except MalformedError as exc:
            checks.fail("records", str(exc))
            continue
        record: AuditRecord | None = None
        # Integrity rests on the leaf hashes alone; decoding every record (about 50 µs
        # each) only adds "each text is a canonical v2 record", so a fast full-log check
        # may defer it to the entries the user's evidence names.
        if decode_records:
            record, canonical = _decode(index, data, checks)
            bad_records += not canonical
        proof: list[bytes] | None = None
        if not complete:
            try:
                proof = hash_list(
                    item.get("inclusion_proof") if isinstance(item, Mapping) else None,
                    f"entry {index}: inclusion proof",
                )
            except MalformedError as exc:
                checks.fail("inclusion", str(exc))
        leaf = leaf_hash_of(data)
        entries.append(ParsedEntry(position, index, data, leaf, record, proof, decode_records))
    if entries and not bad_records and decode_records:
        held = len(entries) - archived
        checks.ok(
            "records",
            f"all {held} records are canonical audit records"
            + (f"; {archived} archived entries stand as their leaf hashes" if archived else ""),
        )
    return entries


def _archived_entry(position: int, item: Mapping[str, object]) -> ParsedEntry:
    index = json_size(item.get("index"))
    if index is None:
        raise MalformedError(f"entry at position {position} has no valid index")
    if "record" in item:
        raise MalformedError(f"entry {index} is both archived and a record")
    leaf = _hash(item.get("archived"), f"entry {index}: archived leaf hash")
    return ParsedEntry(position, index, b"", leaf, None, None)


# ------------------------------------------------------------------------- key epochs


@dataclass(frozen=True, slots=True)
class EpochEntry:
    """One well-formed item of a bundle's ``"keys"`` (not trusted yet)."""

    origin: str
    key: Verifier
    from_size: int
    handover: str | None


def _epoch(item: object) -> EpochEntry:
    if not isinstance(item, Mapping):
        raise MalformedError("is not an object")
    origin, vkey = item.get("origin"), item.get("vkey")
    from_size, handover = json_size(item.get("from_size")), item.get("handover")
    if not isinstance(origin, str) or not isinstance(vkey, str) or from_size is None:
        raise MalformedError("needs a string origin and vkey and a non-negative from_size")
    if handover is not None and not isinstance(handover, str):
        raise MalformedError("has a hand-over that is not a note (string)")
    try:
        key = Verifier.parse(vkey)
    except ValueError as exc:
        raise MalformedError(f"has an unusable key: {exc}") from None
    if key.name != origin:
        raise MalformedError(f"has a key named {key.name!r}, not its origin {origin!r}")
    return EpochEntry(origin, key, from_size, handover)


def parse_epochs(raw: list[object], checks: Checks) -> list[EpochEntry | None]:
    """Each item of ``"keys"`` parsed, or None (with a failed ``keys`` check) where it is
    malformed: a None breaks the chain of hand-overs there."""
    out: list[EpochEntry | None] = []
    for n, item in enumerate(raw):
        try:
            out.append(_epoch(item))
        except MalformedError as exc:
            checks.fail("keys", f"key epoch {n} {exc}")
            out.append(None)
    return out
