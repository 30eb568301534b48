"""The audit store seam: :class:`AuditAppender` (what writes the log) and
:class:`AuditReader` (what reads it), the values they exchange, and the contract's
argument checks.

Every implementation (:class:`~gateway.audit.store.sql.SqlAuditStore` over SQLite or
PostgreSQL, :class:`~gateway.audit.store.memory.MemoryAuditStore`) is an append-only
RFC 6962 Merkle log of :class:`~gateway.audit.record.AuditRecord` values, safe to share
between threads. Every method raises :class:`~gateway.errors.AuditUnavailableError` when
the storage cannot be used (including after ``close``); the database's own error text
then travels only in ``internal_detail``.

The two sides are separate so that each user names what it needs: the group committer
and key rotation append, the auditors' API, bundles and the CLI read. Both sides are kept
small on purpose: a later tiled or archived log (bounded-memory trees, streamed exports,
record bytes removed past retention while leaves and checkpoints stay) changes how the
reader finds entries, not what it promises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple, Protocol

from gateway.audit.record import AuditRecord, Outcome, is_audit_time
from gateway.audit.signing import CheckpointSigner
from gateway.errors import AuditUnavailableError
from gateway.i18n import msg

__all__ = [
    "MAX_EXPORT_ENTRIES",
    "MAX_SEARCH_LIMIT",
    "UNAVAILABLE_DETAIL",
    "Appended",
    "ArchiveMark",
    "AuditAppender",
    "AuditArchiver",
    "AuditReader",
    "AuditStore",
    "EncodedRecord",
    "KeyEpoch",
    "SearchColumns",
    "SearchQuery",
    "StoredEntry",
    "TreeHead",
    "check_archive_range",
    "check_consistency_args",
    "check_proof_args",
    "check_range",
    "search_columns",
    "unavailable",
]

#: Most entries :meth:`AuditReader.entries` returns in one call.
MAX_EXPORT_ENTRIES: Final = 100_000

#: Largest ``limit`` of a :class:`SearchQuery`.
MAX_SEARCH_LIMIT: Final = 10_000

#: What a consumer is told when no audit record could be written or read.
UNAVAILABLE_DETAIL: Final = (
    "The audit log is unavailable, so the request was not carried out. Retry later."
)


def unavailable(exc: BaseException | None, what: str) -> AuditUnavailableError:
    """An AuditUnavailableError with the public detail and ``what`` plus the cause's own
    text (which may quote database internals) as ``internal_detail`` only."""
    internal = what if exc is None else f"{what}: {type(exc).__name__}: {exc}"
    return AuditUnavailableError(
        msg("The audit log is unavailable, so the request was not carried out. Retry later."),
        internal_detail=internal,
    )


# ------------------------------------------------------------------------------ values


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A signed tree head: ``checkpoint`` is the C2SP signed note for (size, root)."""

    size: int
    root: bytes
    checkpoint: str


@dataclass(frozen=True, slots=True)
class Appended:
    """Result of appending a batch: the first index used and the checkpoint covering it."""

    first: int
    count: int
    head: TreeHead


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One log entry as stored: index, canonical record bytes, leaf hash.

    ``record`` is empty for an entry archived past retention (``gateway audit archive``):
    its bytes live in a verified archive bundle; its leaf hash stays, so the tree, its
    checkpoints and every later proof are unchanged."""

    idx: int
    record: bytes
    leaf_hash: bytes

    @property
    def archived(self) -> bool:
        return not self.record


@dataclass(frozen=True, slots=True)
class KeyEpoch:
    """One signing key's span of the log: checkpoints of sizes >= ``from_size`` (until the
    next epoch's ``from_size``) are signed by ``vkey`` under ``origin``."""

    origin: str
    vkey: str
    from_size: int
    #: Signed by the previous and this key (None for the first epoch).
    handover: str | None


class SearchColumns(NamedTuple):
    """The searchable copies of record fields stored next to the record bytes."""

    audit_id: str
    time: str
    department: str | None
    system: str | None
    purpose: str | None
    outcome: str
    #: `` ds1 ds2 `` - the datasets touched, space-delimited on both sides so that a
    #: substring search for `` ds `` matches whole names only.
    datasets: str
    sql: str | None


def search_columns(record: AuditRecord) -> SearchColumns:
    """The searchable columns of ``record`` (what every store keeps beside its bytes)."""
    datasets = sorted({table.split(".", 1)[0] for table in record.tables})
    return SearchColumns(
        record.audit_id,
        record.time,
        record.department,
        record.system,
        record.purpose,
        record.outcome.value,
        " " + " ".join(datasets) + " " if datasets else " ",
        record.sql,
    )


class EncodedRecord(NamedTuple):
    """A record ready to store: searchable columns, canonical bytes, leaf hash."""

    columns: SearchColumns
    data: bytes
    leaf: bytes


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """Which records :meth:`AuditReader.search` returns: those matching every given
    filter, newest (highest index) first, at most ``limit`` (1..MAX_SEARCH_LIMIT).

    ``since`` (inclusive) and ``until`` (exclusive) bound ``record.time`` and must be in
    the :func:`~gateway.audit.record.format_time` shape. ``dataset`` matches records that
    touched any table of that dataset; ``text`` is a case-sensitive substring of the
    consumer's SQL as stored (``""`` matches every record that has SQL); ``before`` pages:
    only indices below it. Construction raises ValueError or TypeError for unusable
    bounds, so a query that exists is valid.
    """

    department: str | None = None
    system: str | None = None
    outcome: Outcome | None = None
    since: str | None = None
    until: str | None = None
    dataset: str | None = None
    purpose: str | None = None
    text: str | None = None
    before: int | None = None
    limit: int = 100

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and not is_audit_time(value):
                raise ValueError(f"{name} must look like 2026-11-23T19:00:00.123456Z")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int):
            raise TypeError("limit must be an int")
        if not 1 <= self.limit <= MAX_SEARCH_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_SEARCH_LIMIT}")
        if self.before is not None and (
            isinstance(self.before, bool) or not isinstance(self.before, int)
        ):
            raise TypeError("before must be an int")
        if self.outcome is not None:
            # A plain string is accepted if it names an outcome (ValueError otherwise).
            object.__setattr__(self, "outcome", Outcome(self.outcome))

    @property
    def datasets_needle(self) -> str | None:
        """What ``dataset`` looks like inside :attr:`SearchColumns.datasets`."""
        return None if self.dataset is None else f" {self.dataset} "

    def matches(self, idx: int, columns: SearchColumns) -> bool:
        """Whether the entry at ``idx`` with these searchable columns is selected."""
        needle = self.datasets_needle
        return not (
            (self.before is not None and idx >= self.before)
            or (self.department is not None and columns.department != self.department)
            or (self.system is not None and columns.system != self.system)
            or (self.outcome is not None and columns.outcome != self.outcome.value)
            or (self.since is not None and columns.time < self.since)
            or (self.until is not None and columns.time >= self.until)
            or (self.purpose is not None and columns.purpose != self.purpose)
            or (needle is not None and needle not in columns.datasets)
            or (self.text is not None and (columns.sql is None or self.text not in columns.sql))
        )


# ------------------------------------------------------------------------- the seam


class AuditAppender(Protocol):
    """The write side: what the group committer and key rotation need."""

    @property
    def origin(self) -> str:
        """The log origin the current signing key signs checkpoints for."""
        ...

    def append(self, record: AuditRecord) -> int:
        """Append one record (a batch of one) and return its index."""
        ...

    def append_batch(self, records: Sequence[AuditRecord | EncodedRecord]) -> Appended:
        """Store ``records`` at the next contiguous indices, in order, and sign a
        checkpoint covering them, all in one durable transaction (see
        :mod:`gateway.audit.sequencer`). When this returns, the records and the checkpoint
        are committed (fsync'd). Raises AuditUnavailableError on any failure, including a
        duplicate ``audit_id``; a failed batch leaves no row and consumes no index.
        """
        ...

    def rotate(self, new_signer: CheckpointSigner, handover: Callable[[TreeHead], str]) -> KeyEpoch:
        """Switch to ``new_signer`` (a new origin) at the current size. ``handover`` is
        given the final head signed by the old key and returns the hand-over note signed
        by both keys; it is stored with the new epoch in the same transaction."""
        ...

    def add_cosigned(self, size: int, origin: str, note: str) -> None:
        """Keep ``note``, the stored checkpoint of ``size`` entries with the witnesses'
        cosignature lines added (:mod:`gateway.audit.witnessing` checks them first).
        Append-only; not part of the tree. Raises AuditUnavailableError."""
        ...

    def close(self) -> None:
        """Release connections. Idempotent; later calls of other methods raise
        AuditUnavailableError."""
        ...


class AuditReader(Protocol):
    """The read side: records, the signed heads, proofs and key history."""

    @property
    def origin(self) -> str:
        """The log origin the current signing key signs checkpoints for."""
        ...

    def get(self, audit_id: str) -> tuple[int, AuditRecord] | None:
        """The index and record stored under ``audit_id``, or None.

        The record is decoded from the stored bytes after their leaf hash was re-checked;
        a mismatch raises AuditUnavailableError rather than return a doubtful record.
        """
        ...

    def search(self, query: SearchQuery) -> list[tuple[int, AuditRecord]]:
        """The records ``query`` selects, newest first (see :class:`SearchQuery`), each
        decoded from its stored bytes after the leaf hash was re-checked."""
        ...

    def entries(self, start: int, end: int) -> list[StoredEntry]:
        """Stored entries ``start <= idx < end`` in index order (at most
        MAX_EXPORT_ENTRIES), their leaf hashes re-checked against the bytes."""
        ...

    def size(self) -> int:
        """Number of entries (= the next index)."""
        ...

    def head(self) -> TreeHead:
        """The latest signed tree head. An empty log has a signed head of size 0."""
        ...

    def checkpoint(self, size: int) -> str | None:
        """The stored signed checkpoint for exactly ``size`` entries, or None."""
        ...

    def checkpoints(self, start_size: int, limit: int = 100) -> list[str]:
        """Stored checkpoints with size >= ``start_size``, oldest first."""
        ...

    def cosigned(self, max_size: int | None = None) -> str | None:
        """The cosigned checkpoint of the largest size (at most ``max_size``) stored by
        :meth:`AuditAppender.add_cosigned`, the latest stored of that size; or None."""
        ...

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 6962 audit path for entry ``index`` in the tree of the first ``size``
        entries (``0 <= index < size <= self.size()``; ValueError otherwise)."""
        ...

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 6962 consistency proof between two tree sizes (ValueError if not
        ``0 <= old_size <= new_size <= self.size()``)."""
        ...

    def key_history(self) -> list[KeyEpoch]:
        """Every origin/key this log has been signed with, oldest first, with the signed
        hand-over note that introduced each later one."""
        ...

    def check(self) -> None:
        """Re-read every row in index order from a consistent snapshot and verify that
        indices run 0, 1, 2, ... without a gap, each stored leaf hash equals
        ``SHA-256(0x00 || stored record bytes)``, the bytes are a canonical record whose
        fields agree with the searchable columns, the stored size equals the row count
        and the stored root is the Merkle root of the rows.

        Raises AuditUnavailableError whose ``detail`` describes the first problem found.
        A consistent rewrite of rows, root and checkpoints together needs the signing key;
        without it, the offline verifier (``gateway audit verify``) catches it against
        any checkpoint or receipt held outside.
        """
        ...

    def close(self) -> None:
        """Release connections. Idempotent; later calls of other methods raise
        AuditUnavailableError."""
        ...


@dataclass(frozen=True, slots=True)
class ArchiveMark:
    """Records ``start .. upto-1`` moved to the archive bundle ``name`` (SHA-256
    ``sha256`` of its bytes), whose proofs lead to ``checkpoint``."""

    start: int
    upto: int
    name: str
    sha256: str
    archived_at: str
    checkpoint: str


def check_archive_range(mark: ArchiveMark, *, archived_upto: int, size: int) -> None:
    """ValueError unless ``mark`` continues the archived prefix within the log."""
    if mark.start != archived_upto:
        raise ValueError(
            f"an archive must start where the last one ended ({archived_upto}), not at {mark.start}"
        )
    if not mark.start < mark.upto <= size:
        raise ValueError(f"cannot archive {mark.start}..{mark.upto - 1} of a log of {size}")


class AuditArchiver(Protocol):
    """Retention: the record bytes of a prefix of the log move to archive bundles."""

    def archives(self) -> list[ArchiveMark]:
        """Every archive made, oldest first (they cover ``0 .. upto-1`` without a gap)."""
        ...

    def mark_archived(self, mark: ArchiveMark) -> None:
        """Record ``mark`` and remove the bytes and searchable copies of its records, in
        one transaction; their leaf hashes stay. Call only once the archive bundle is
        written and verified (:mod:`gateway.audit.archive` does). ValueError if ``mark``
        does not continue the archived prefix; AuditUnavailableError on storage
        failure (then nothing changed)."""
        ...


class AuditStore(AuditAppender, AuditReader, Protocol):
    """Both sides, for the places that need them together: the composition root, the
    group committer (it appends, then proves inclusion for receipts), the CLI."""


# ------------------------------------------------------------------- argument checks


def _non_negative(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer")
    return value


def check_proof_args(index: int, size: int) -> None:
    """ValueError unless ``0 <= index < size`` (integers)."""
    if not _non_negative("index", index) < _non_negative("size", size):
        raise ValueError("index must be below size")


def check_consistency_args(old_size: int, new_size: int) -> None:
    """ValueError unless ``0 <= old_size <= new_size`` (integers)."""
    if _non_negative("old_size", old_size) > _non_negative("new_size", new_size):
        raise ValueError("old_size must not exceed new_size")


def check_range(start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` of an export, ``end`` capped at MAX_EXPORT_ENTRIES after
    ``start``; ValueError unless ``0 <= start <= end``."""
    start = _non_negative("start", start)
    end = _non_negative("end", end)
    if end < start:
        raise ValueError("end must not be below start")
    return start, min(end, start + MAX_EXPORT_ENTRIES)
