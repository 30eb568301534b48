"""The :class:`AuditStore` seam, the storage layout shared by every implementation, and
:func:`open_audit_store`.

Storage layout (SQLite and PostgreSQL; the memory store mirrors it)::

    audit_meta (key TEXT PRIMARY KEY, value TEXT)        schema_version = "1", ...
    audit_state(size BIGINT)                             exactly one row: rows in the log
    audit_log  (idx BIGINT PRIMARY KEY,                  0, 1, 2, ... with no gap
                audit_id TEXT UNIQUE, time TEXT, department TEXT, system TEXT,
                outcome TEXT,                            copies of record fields, for search
                record BLOB/BYTEA,                       AuditRecord.canonical_bytes()
                leaf_hash BLOB/BYTEA)                    SHA-256(0x00 || record), RFC 6962 §2.1

``idx`` is the RFC 6962 leaf index the Merkle log of the next milestone will use, so the
store, not the caller, assigns it: each append takes the next index inside one transaction
that also advances ``audit_state.size`` by compare-and-swap, so concurrent writers (threads
or processes) can neither reuse nor skip an index, and a failed append leaves neither a row
nor a gap. ``audit_state`` is where the tree head (size, root) will live. The
``audit_log`` rows are append-only: triggers refuse UPDATE and DELETE (and TRUNCATE on
PostgreSQL), and :meth:`AuditStore.check` re-derives every leaf hash from the stored bytes.

A store whose ``audit_meta.schema_version`` is not :data:`SCHEMA_VERSION` is refused with
:class:`~gateway.errors.ConfigurationError`: the gateway stops rather than write a second
format into a log whose entries must stay verifiable for years.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from typing import Final, Generic, NamedTuple, Protocol, TypeVar

from gateway.audit.record import AuditRecord, Outcome, is_audit_time, leaf_hash_of
from gateway.errors import AuditUnavailableError, ConfigurationError

__all__ = [
    "MAX_SEARCH_LIMIT",
    "SCHEMA_VERSION",
    "AuditStore",
    "ConnectionPool",
    "StoredRow",
    "decode_stored",
    "open_audit_store",
    "unavailable",
    "validate_search",
    "verify_rows",
]

#: Layout version written to ``audit_meta``; any other value makes opening fail.
SCHEMA_VERSION: Final = "1"

#: ``audit_meta`` rows written when a store is created. Only ``schema_version`` is
#: checked; the others tell a human (or an offline verifier) how to read the rows.
META_ROWS: Final[tuple[tuple[str, str], ...]] = (
    ("schema_version", SCHEMA_VERSION),
    ("record_encoding", "gateway canonical JSON, AuditRecord v1 (gateway/audit/record.py)"),
    ("leaf_hash", "SHA-256(0x00 || record), RFC 6962 section 2.1"),
)

#: Largest ``limit`` :meth:`AuditStore.search` accepts.
MAX_SEARCH_LIMIT: Final = 10_000

#: What a consumer is told when no audit record could be written or read.
UNAVAILABLE_DETAIL: Final = (
    "The audit log is unavailable, so the request was not carried out. Retry later."
)


class AuditStore(Protocol):
    """An append-only log of :class:`AuditRecord` values with contiguous indices.

    Implementations are safe to share between threads. Every method raises
    :class:`~gateway.errors.AuditUnavailableError` when the storage cannot be used
    (including after :meth:`close`); the database's own error text then travels only in
    ``internal_detail``.
    """

    def append(self, record: AuditRecord) -> int:
        """Store ``record`` as the next entry and return its index (0 for the first).

        When this returns, the record is durably committed (fsync'd) together with the
        advanced log size. Raises AuditUnavailableError on any failure, including a
        duplicate ``audit_id``; a failed append leaves no row and consumes no index.
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
        limit: int = 100,
    ) -> list[tuple[int, AuditRecord]]:
        """Records matching every given filter, newest (highest index) first, at most
        ``limit`` (1..MAX_SEARCH_LIMIT).

        ``since`` (inclusive) and ``until`` (exclusive) bound ``record.time`` and must be in
        the :func:`~gateway.audit.record.format_time` shape; ValueError otherwise.
        """
        ...

    def size(self) -> int:
        """Number of entries (= the next index)."""
        ...

    def check(self) -> None:
        """Re-read every row in index order from a consistent snapshot and verify that
        indices run 0, 1, 2, ... without a gap, each stored leaf hash equals
        ``SHA-256(0x00 || stored record bytes)``, the bytes are a canonical record whose
        fields agree with the searchable columns, and the stored size equals the row count.

        Raises AuditUnavailableError whose ``detail`` describes the first problem found.
        A consistent rewrite of a row together with its leaf hash is beyond this check:
        that is what the signed checkpoints of the Merkle log will catch.
        """
        ...

    def close(self) -> None:
        """Release connections. Idempotent; later calls of other methods raise
        AuditUnavailableError."""
        ...


class StoredRow(NamedTuple):
    """One ``audit_log`` row as read back from storage."""

    idx: int
    audit_id: str
    time: str
    department: str | None
    system: str | None
    outcome: str
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


def verify_rows(rows: Iterable[StoredRow], *, state_size: int) -> int:
    """The body of :meth:`AuditStore.check` for rows given in ascending ``idx`` order.

    Returns the number of rows verified; raises AuditUnavailableError naming the first
    problem.
    """
    expected = 0
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
                f"audit log row {row.idx}: record bytes are not a canonical v1 record ({exc})"
            ) from exc
        columns = (row.audit_id, row.time, row.department, row.system, row.outcome)
        fields = (
            record.audit_id,
            record.time,
            record.department,
            record.system,
            record.outcome.value,
        )
        if columns != fields:
            raise _problem(
                f"audit log row {row.idx}: searchable columns disagree with the record bytes"
            )
        expected += 1
    if state_size != expected:
        raise _problem(f"audit log size is {state_size} but {expected} rows are stored")
    return expected


def validate_search(since: str | None, until: str | None, limit: int) -> None:
    """Raise ValueError unless the search bounds are usable (see AuditStore.search)."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and not is_audit_time(value):
            raise ValueError(f"{name} must look like 2026-11-23T19:00:00.123456Z")
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError("limit must be an int")
    if not 1 <= limit <= MAX_SEARCH_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_SEARCH_LIMIT}")


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


def open_audit_store(location: str) -> AuditStore:
    """Open (creating if needed) the store named by ``location``:

    * ``memory:`` - a new, empty in-process store (tests and demos; not durable);
    * ``sqlite:<path>`` - a SQLite file (created with mode 0600 if missing; its directory
      must exist);
    * ``postgresql://...`` or ``postgres://...`` - a libpq URL; an optional ``schema``
      query parameter (default ``public``) names the schema holding the tables, e.g.
      ``postgresql://gw@db/gateway?schema=audit``. The schema is created if missing.

    Raises ConfigurationError for an unknown scheme or an existing store with another
    schema version, AuditUnavailableError when the storage cannot be reached.
    """
    if location == "memory:":
        from gateway.audit.memory import MemoryAuditStore

        return MemoryAuditStore()
    if location.startswith("sqlite:"):
        from gateway.audit.sqlite import SqliteAuditStore

        return SqliteAuditStore(location.removeprefix("sqlite:"))
    if location.startswith(("postgresql://", "postgres://")):
        from gateway.audit.postgres import PostgresAuditStore

        return PostgresAuditStore.from_location(location)
    raise ConfigurationError(
        "audit location must be 'memory:', 'sqlite:<path>' or a postgresql:// URL"
    )
