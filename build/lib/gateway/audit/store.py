"""The :class:`AuditStore` seam, the storage layout shared by every implementation, and
:func:`open_audit_store`.

Storage layout (SQLite and PostgreSQL; the memory store mirrors it)::

    audit_meta  (key TEXT PRIMARY KEY, value TEXT)       schema_version = "2", ...
    audit_state (size BIGINT, root BLOB)                 one row: the tree head (size, root)
    audit_log   (idx BIGINT PRIMARY KEY,                 0, 1, 2, ... with no gap
                 audit_id TEXT UNIQUE, time, department, system, purpose, outcome,
                 datasets TEXT, sql TEXT,                copies of record fields, for search
                 record BLOB/BYTEA,                      AuditRecord.canonical_bytes()
                 leaf_hash BLOB/BYTEA)                   SHA-256(0x00 || record), RFC 6962
    audit_checkpoints (size BIGINT PRIMARY KEY,          one signed note per committed batch
                 root BLOB, origin TEXT, note TEXT)
    audit_keys  (from_size BIGINT PRIMARY KEY,           signing-key epochs (key rotation)
                 origin TEXT UNIQUE, vkey TEXT, handover TEXT)

The ``audit_log`` rows are the leaves of an RFC 6962 Merkle tree; ``audit_state`` holds its
head and advances only by compare-and-swap inside the transaction that inserts a batch and
its signed checkpoint (see :mod:`gateway.audit.sequencer`), so two writers can never fork
the tree and a checkpoint exists only for durable entries. Rows, checkpoints and key
epochs are append-only: triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL).

A store whose ``audit_meta.schema_version`` is not :data:`SCHEMA_VERSION` is refused with
:class:`~gateway.errors.ConfigurationError`: the gateway stops rather than write a second
format into a log whose entries must stay verifiable for years.
"""

from __future__ import annotations

import contextlib
import hmac
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, NamedTuple, Protocol, TypeVar

from gateway.audit.merkle import MerkleTree
from gateway.audit.record import AuditRecord, Outcome, is_audit_time, leaf_hash_of
from gateway.audit.sequencer import Appended, TreeHead
from gateway.audit.signing import CheckpointSigner
from gateway.errors import AuditUnavailableError, ConfigurationError

__all__ = [
    "MAX_EXPORT_ENTRIES",
    "MAX_SEARCH_LIMIT",
    "SCHEMA_VERSION",
    "AuditStore",
    "ConnectionPool",
    "EncodedRecord",
    "KeyEpoch",
    "SearchColumns",
    "StoredEntry",
    "StoredRow",
    "decode_stored",
    "encode_record",
    "open_audit_store",
    "search_columns",
    "unavailable",
    "validate_search",
    "verify_rows",
]

#: Layout version written to ``audit_meta``; any other value makes opening fail.
SCHEMA_VERSION: Final = "2"

#: ``audit_meta`` rows written when a store is created. Only ``schema_version`` is
#: checked; the others tell a human (or an offline verifier) how to read the rows.
META_ROWS: Final[tuple[tuple[str, str], ...]] = (
    ("schema_version", SCHEMA_VERSION),
    ("record_encoding", "gateway canonical JSON, AuditRecord v2 (gateway/audit/record.py)"),
    ("leaf_hash", "SHA-256(0x00 || record), RFC 6962 section 2.1"),
    ("tree", "RFC 6962 Merkle tree over leaf_hash in idx order; root in audit_state"),
    ("checkpoint", "C2SP tlog-checkpoint in a C2SP signed note (Ed25519)"),
)

#: Most entries :meth:`AuditStore.entries` returns in one call.
MAX_EXPORT_ENTRIES: Final = 100_000

#: Largest ``limit`` :meth:`AuditStore.search` accepts.
MAX_SEARCH_LIMIT: Final = 10_000

#: What a consumer is told when no audit record could be written or read.
UNAVAILABLE_DETAIL: Final = (
    "The audit log is unavailable, so the request was not carried out. Retry later."
)


class AuditStore(Protocol):
    """An append-only RFC 6962 Merkle log of :class:`AuditRecord` values.

    Implementations are safe to share between threads. Every method raises
    :class:`~gateway.errors.AuditUnavailableError` when the storage cannot be used
    (including after :meth:`close`); the database's own error text then travels only in
    ``internal_detail``.
    """

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

    def get(self, audit_id: str) -> tuple[int, AuditRecord] | None:
        """The index and record stored under ``audit_id``, or None.

        The record is decoded from the stored bytes after their leaf hash was re-checked;
        a mismatch raises AuditUnavailableError rather than return a doubtful record.
        """
        ...

    def search(
        self,
        *,
        department: str | None = None,
        system: str | None = None,
        outcome: Outcome | None = None,
        since: str | None = None,
        until: str | None = None,
        dataset: str | None = None,
        purpose: str | None = None,
        text: str | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[tuple[int, AuditRecord]]:
        """Records matching every given filter, newest (highest index) first, at most
        ``limit`` (1..MAX_SEARCH_LIMIT).

        ``since`` (inclusive) and ``until`` (exclusive) bound ``record.time`` and must be in
        the :func:`~gateway.audit.record.format_time` shape; ValueError otherwise.
        ``dataset`` matches records that touched any table of that dataset; ``text`` is a
        case-sensitive substring of the consumer's SQL as stored; ``before`` pages: only
        indices below it.
        """
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

    def rotate(self, new_signer: CheckpointSigner, handover: Callable[[TreeHead], str]) -> KeyEpoch:
        """Switch to ``new_signer`` (a new origin) at the current size. ``handover`` is
        given the final head signed by the old key and returns the hand-over note signed
        by both keys; it is stored with the new epoch in the same transaction."""
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
class StoredEntry:
    """One log entry as stored: index, canonical record bytes, leaf hash."""

    idx: int
    record: bytes
    leaf_hash: bytes


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


class StoredRow(NamedTuple):
    """One ``audit_log`` row as read back from storage."""

    idx: int
    columns: SearchColumns
    record: bytes
    leaf_hash: bytes


def unavailable(exc: BaseException | None, what: str) -> AuditUnavailableError:
    """An AuditUnavailableError with the public detail and ``what`` plus the cause's own
    text (which may quote database internals) as ``internal_detail`` only."""
    internal = what if exc is None else f"{what}: {type(exc).__name__}: {exc}"
    return AuditUnavailableError(UNAVAILABLE_DETAIL, internal_detail=internal)


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


def _problem(detail: str) -> AuditUnavailableError:
    # check() is an operator's tool: the description of the problem is the point, and
    # it names only indices, never record contents.
    return AuditUnavailableError(detail, internal_detail=detail)


def verify_rows(rows: Iterable[StoredRow], *, state_size: int, state_root: bytes) -> int:
    """The body of :meth:`AuditStore.check` for rows given in ascending ``idx`` order.

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


class EncodedRecord(NamedTuple):
    """A record ready to store: searchable columns, canonical bytes, leaf hash."""

    columns: SearchColumns
    data: bytes
    leaf: bytes


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


def check_current_key(
    current: tuple[str, str] | None, signer: CheckpointSigner, *, writing: bool = False
) -> None:
    """Refuse a store whose current (origin, verifier key) is not ``signer``'s: one
    origin never has two keys, and a rotated log is not extended with the old key."""
    if current == (signer.origin, signer.verifier.encode()):
        return
    found = "none" if current is None else f"{current[0]!r}"
    message = (
        f"the audit log is signed by the key of origin {found}, not by the configured key "
        f"{signer.origin!r}; configure the log's current key (after a rotation, restart "
        "with the new key)"
    )
    if writing:
        raise unavailable(None, message)
    raise ConfigurationError(message)


def _non_negative(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer")
    return value


def check_proof_args(index: int, size: int) -> None:
    if not _non_negative("index", index) < _non_negative("size", size):
        raise ValueError("index must be below size")


def check_consistency_args(old_size: int, new_size: int) -> None:
    if _non_negative("old_size", old_size) > _non_negative("new_size", new_size):
        raise ValueError("old_size must not exceed new_size")


def check_range(start: int, end: int) -> tuple[int, int]:
    start = _non_negative("start", start)
    end = _non_negative("end", end)
    if end < start:
        raise ValueError("end must not be below start")
    return start, min(end, start + MAX_EXPORT_ENTRIES)


def entries_checked(rows: Iterable[tuple[int, bytes, bytes]]) -> list[StoredEntry]:
    """StoredEntry values after re-deriving each leaf hash from the stored bytes."""
    out: list[StoredEntry] = []
    for idx, data, leaf in rows:
        if not hmac.compare_digest(leaf_hash_of(data), leaf):
            raise unavailable(None, f"audit log row {idx}: leaf hash does not match the record")
        out.append(StoredEntry(idx, data, leaf))
    return out


def validate_search(
    since: str | None, until: str | None, limit: int, before: int | None = None
) -> None:
    """Raise ValueError unless the search bounds are usable (see AuditStore.search)."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and not is_audit_time(value):
            raise ValueError(f"{name} must look like 2026-11-23T19:00:00.123456Z")
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError("limit must be an int")
    if not 1 <= limit <= MAX_SEARCH_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_SEARCH_LIMIT}")
    if before is not None and (isinstance(before, bool) or not isinstance(before, int)):
        raise TypeError("before must be an int")


C = TypeVar("C")


class ConnectionPool(Generic[C]):
    """A small thread-safe pool: connections are created on demand, each is used by one
    thread at a time, and up to ``max_idle`` are kept for reuse.

    No background threads and no waiting: a pool never blocks a request on another
    request's connection, and a failing ``connect`` surfaces at once to the caller.
    """

    def __init__(
        self,
        connect: Callable[[], C],
        dispose: Callable[[C], None],
        *,
        max_idle: int = 8,
    ) -> None:
        self._connect = connect
        self._dispose = dispose
        self._max_idle = max_idle
        self._idle: list[C] = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def acquire(self) -> tuple[C, bool]:
        """A connection for the calling thread and whether it was reused (a reused one
        may have gone stale). Raises AuditUnavailableError once closed; ``connect``'s own
        exceptions propagate."""
        with self._lock:
            if self._closed:
                raise unavailable(None, "audit store is closed")
            if self._idle:
                return self._idle.pop(), True
        return self._connect(), False

    def release(self, conn: C) -> None:
        """Give back a healthy connection (disposed of if the pool is full or closed)."""
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        self.discard(conn)

    def discard(self, conn: C) -> None:
        """Dispose of a connection that must not be reused; never raises."""
        # A broken connection may fail to close; it is gone either way.
        with contextlib.suppress(Exception):
            self._dispose(conn)

    def close_idle(self) -> None:
        """Dispose of the idle connections (after one was found dead: its siblings most
        likely died with it)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            self.discard(conn)

    def close(self) -> None:
        """Dispose of idle connections; busy ones are disposed of when released."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            self.discard(conn)


def open_audit_store(location: str, signer: CheckpointSigner) -> AuditStore:
    """Open (creating if needed) the store named by ``location``:

    * ``memory:`` - a new, empty in-process store (tests and demos; not durable);
    * ``sqlite:<path>`` - a SQLite file (created with mode 0600 if missing; its directory
      must exist);
    * ``postgresql://...`` or ``postgres://...`` - a libpq URL; an optional ``schema``
      query parameter (default ``public``) names the schema holding the tables, e.g.
      ``postgresql://gw@db/gateway?schema=audit``. The schema is created if missing.

    ``signer`` signs the checkpoints; it must be the log's current key (a store created
    by another key is refused: rotate with ``gateway audit rotate-key`` instead).

    Raises ConfigurationError for an unknown scheme, an existing store with another
    schema version or signing key, AuditUnavailableError when the storage cannot be
    reached.
    """
    if location == "memory:":
        from gateway.audit.memory import MemoryAuditStore

        return MemoryAuditStore(signer)
    if location.startswith("sqlite:"):
        from gateway.audit.sqlite import SqliteAuditStore

        return SqliteAuditStore(location.removeprefix("sqlite:"), signer)
    if location.startswith(("postgresql://", "postgres://")):
        from gateway.audit.postgres import PostgresAuditStore

        return PostgresAuditStore.from_location(location, signer)
    raise ConfigurationError(
        "audit location must be 'memory:', 'sqlite:<path>' or a postgresql:// URL"
    )
