"""A record's stored form and back: encoding once for the writer, decoding only after the
leaf hash was re-derived from the stored bytes, and the row-by-row check every store's
``check()`` runs.

Shared by every store, so that they keep and vouch for exactly the same values.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from gateway.audit.record import AuditRecord, leaf_hash_of
from gateway.audit.store.protocol import (
    EncodedRecord,
    SearchColumns,
    StoredEntry,
    search_columns,
    unavailable,
)
from gateway.errors import AuditUnavailableError
from gateway.tlog.rfc6962 import MerkleTree

__all__ = [
    "StoredRow",
    "checked_leaf",
    "decode_stored",
    "encode_batch",
    "encode_record",
    "entries_checked",
    "verify_rows",
]


class StoredRow(NamedTuple):
    """One ``audit_log`` row as read back from storage."""

    idx: int
    columns: SearchColumns
    record: bytes
    leaf_hash: bytes


def encode_record(record: AuditRecord) -> EncodedRecord:
    """Encode once (the group committer does it in the request's thread, so the single
    writer thread does not). Raises AuditUnavailableError if ``record`` cannot be encoded."""
    try:
        data = record.canonical_bytes()
    except (TypeError, ValueError) as exc:
        raise unavailable(exc, "audit record cannot be encoded") from exc
    return EncodedRecord(search_columns(record), data, leaf_hash_of(data))


def encode_batch(records: Sequence[AuditRecord | EncodedRecord]) -> list[EncodedRecord]:
    """:func:`encode_record` of each record not encoded yet, in order. Raises
    AuditUnavailableError for an empty batch, a record that cannot be encoded or two
    records with the same ``audit_id``."""
    if not records:
        raise unavailable(None, "empty audit batch")
    out: list[EncodedRecord] = []
    seen: set[str] = set()
    for record in records:
        encoded = record if isinstance(record, EncodedRecord) else encode_record(record)
        if encoded.columns.audit_id in seen:
            raise unavailable(None, f"duplicate audit_id {encoded.columns.audit_id} in one batch")
        seen.add(encoded.columns.audit_id)
        out.append(encoded)
    return out


def checked_leaf(idx: int, data: bytes, stored_leaf: bytes) -> bytes:
    """The leaf hash of a stored row, re-derived from its bytes; an archived row (no
    bytes: they were moved to a verified archive) stands for its stored leaf. Raises
    AuditUnavailableError when the bytes do not hash to the stored leaf."""
    leaf = bytes(stored_leaf)
    if not data:
        return leaf
    if not hmac.compare_digest(leaf_hash_of(bytes(data)), leaf):
        raise unavailable(None, f"audit log row {idx}: leaf hash does not match the record")
    return leaf


def decode_stored(idx: int, record: bytes, leaf_hash: bytes) -> tuple[int, AuditRecord]:
    """Decode one stored record after re-deriving its leaf hash from the stored bytes.

    Raises AuditUnavailableError if the hash differs or the bytes are not a canonical
    record: a reader never gets a record the log cannot vouch for.
    """
    data = bytes(record)
    if leaf_hash_of(data) != bytes(leaf_hash):
        raise unavailable(None, f"audit log row {idx}: leaf hash does not match the record")
    try:
        return idx, AuditRecord.from_canonical(data)
    except (TypeError, ValueError) as exc:
        raise unavailable(exc, f"audit log row {idx}: record bytes are not canonical") from exc


def entries_checked(rows: Iterable[tuple[int, bytes, bytes]]) -> list[StoredEntry]:
    """StoredEntry values after re-deriving each leaf hash from the stored bytes
    (archived entries keep their stored leaf and empty bytes)."""
    return [
        StoredEntry(idx, bytes(data), checked_leaf(idx, data, leaf)) for idx, data, leaf in rows
    ]


def _problem(detail: str) -> AuditUnavailableError:
    # check() is an operator's tool: the description of the problem is the point, and
    # it names only indices, never record contents.
    return AuditUnavailableError(detail, internal_detail=detail)


def verify_rows(
    rows: Iterable[StoredRow], *, state_size: int, state_root: bytes, archived_upto: int = 0
) -> int:
    """The body of :meth:`AuditReader.check` for rows given in ascending ``idx`` order;
    rows below ``archived_upto`` (what the archives cover) must have no bytes left, and
    only they.

    Returns the number of rows verified; raises AuditUnavailableError naming the first
    problem.
    """
    expected = 0
    tree = MerkleTree()
    for row in rows:
        if row.idx != expected:
            raise _problem(
                f"audit log is not contiguous: expected index {expected}, found {row.idx}"
            )
        data = bytes(row.record)
        if not data:
            # Archived: only below the archive mark, as one prefix of the log.
            if row.idx >= archived_upto:
                raise _problem(
                    f"audit log row {row.idx} has no record bytes but no archive covers it "
                    f"(archived up to {archived_upto}): its record was removed"
                )
            tree.append(bytes(row.leaf_hash))
            expected += 1
            continue
        if row.idx < archived_upto:
            raise _problem(
                f"audit log row {row.idx} is covered by an archive but still holds its bytes"
            )
        if leaf_hash_of(data) != bytes(row.leaf_hash):
            raise _problem(
                f"audit log row {row.idx}: stored leaf hash does not match "
                "SHA-256(0x00 || stored record bytes)"
            )
        try:
            record = AuditRecord.from_canonical(data)
        except (TypeError, ValueError) as exc:
            raise _problem(
                f"audit log row {row.idx}: record bytes are not a canonical v2 record ({exc})"
            ) from exc
        if tuple(row.columns) != tuple(search_columns(record)):
            raise _problem(
                f"audit log row {row.idx}: searchable columns disagree with the record bytes"
            )
        tree.append(bytes(row.leaf_hash))
        expected += 1
    if state_size != expected:
        raise _problem(f"audit log size is {state_size} but {expected} rows are stored")
    if not hmac.compare_digest(tree.root(), bytes(state_root)):
        raise _problem(f"audit log root in audit_state does not match the {expected} rows")
    return expected
