"""The one SQL audit store: append, rotate, search and read the log over a :class:`SqlDialect`
(SQLite in :mod:`~gateway.audit.store.sqlite`, PostgreSQL in
:mod:`~gateway.audit.store.postgres`).

Storage layout (the memory store mirrors it)::

    audit_meta  (key TEXT PRIMARY KEY, value TEXT)       schema_version = "3", ...
    audit_state (size BIGINT, root BLOB)                 one row: the tree head (size, root)
    audit_log   (idx BIGINT PRIMARY KEY,                 0, 1, 2, ... with no gap
                 audit_id TEXT UNIQUE, time, department, system, purpose, outcome,
                 datasets TEXT, sql TEXT,                copies of record fields, for search
                 record BLOB/BYTEA,                      AuditRecord.canonical_bytes()
                 leaf_hash BLOB/BYTEA)                   SHA-256(0x00 || record), RFC 6962
    audit_checkpoints (seq, size, origin, root, note)    one signed note per committed batch
    audit_keys  (seq, from_size, origin UNIQUE,          signing-key epochs (key rotation)
                 vkey, handover)
    audit_cosigned (seq, size, origin, note)             checkpoints with witnesses'
                                                         cosignatures (version 3, witnessing.py)
    audit_archives (seq, start, upto, name, sha256,      ranges whose record bytes moved to a
                    archived_at, checkpoint)             verified archive (version 4, archive.py)

The ``audit_log`` rows are the leaves of an RFC 6962 Merkle tree; ``audit_state`` holds its
head and advances only by compare-and-swap inside the transaction that inserts a batch and
its signed checkpoint, so two writers can never fork the tree and a checkpoint exists only
for durable entries. An append is one transaction (see :mod:`gateway.audit.sequencer`)::

    lock      this process's writers queue on the store's lock, processes on the
              dialect's (SQLite: flock + BEGIN IMMEDIATE; PostgreSQL: the state row lock)
    read      audit_state (size, root), then the current key (a rotation committed by
              another process while this one waited is seen, and the old key refused)
    catch up  Sequencer.catch_up: rows other processes appended since this one looked
    insert    the batch at size .. size+n-1 (SQLite executemany, PostgreSQL binary COPY)
    read back from size-1 on: a removed or rewritten last entry stops the append
    seal      Sequencer.seal hashes the bytes read back and signs the new head
    advance   UPDATE audit_state ... WHERE size = old AND root = old; INSERT checkpoint
    COMMIT    never retried: its outcome may be unknown

A process that finds itself far behind (another appended many entries meanwhile) releases
the locks and catches up from a read snapshot first, so that it does not hold up every
other writer while it reads them. Any failure drops the batch's leaves from the in-memory
tree again; if COMMIT's outcome is unknown and it did commit, the next catch-up reads the
batch back from storage. Rows, checkpoints and key epochs are append-only: triggers refuse
UPDATE and DELETE (and TRUNCATE on PostgreSQL).

A store whose ``audit_meta.schema_version`` is not :data:`SCHEMA_VERSION` is refused with
:class:`~gateway.errors.ConfigurationError`: the gateway stops rather than write a second
format into a log whose entries must stay verifiable for years. The exceptions are
versions 2 and 3, which differ only by lacking ``audit_cosigned`` / ``audit_archives``
(and the archive-aware UPDATE trigger): opening them adds those (nothing else changes, so
every entry and checkpoint stays as it was).

Archiving (:mod:`gateway.audit.archive`) is the one change to stored rows: once a verified
archive bundle holds records ``start .. upto-1``, their bytes and searchable copies are
removed in the transaction that records the archive; their leaf hashes stay, so the tree,
every checkpoint and every later proof are unchanged. Triggers allow exactly that UPDATE
(below the highest archived ``upto``) and nothing else; ``check`` proves that only rows
an archive covers lost their bytes.

The dialect seam is where later storage work plugs in: a tiled tree or a checkpoint series
adds tables and statements of its own, and an archive that removes record bytes past
retention changes :meth:`SqlAuditStore.entries` and ``check``, not the append algorithm.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final, Generic, Protocol, Self, TypeVar

from gateway.audit.record import AuditRecord, leaf_hash_of
from gateway.audit.sequencer import SequencedStore, Sequencer
from gateway.audit.signing import CheckpointSigner
from gateway.audit.store.codec import (
    StoredRow,
    decode_stored,
    encode_batch,
    entries_checked,
    verify_rows,
)
from gateway.audit.store.protocol import (
    MAX_SEARCH_LIMIT,
    Appended,
    ArchiveMark,
    EncodedRecord,
    KeyEpoch,
    SearchColumns,
    SearchQuery,
    StoredEntry,
    TreeHead,
    check_archive_range,
    check_range,
    search_columns,
    unavailable,
)
from gateway.errors import AuditUnavailableError, ConfigurationError
from gateway.tlog.rfc6962 import EMPTY_ROOT

__all__ = [
    "LOCKED_CATCH_UP_MAX",
    "META_ROWS",
    "SCHEMA_VERSION",
    "TABLES",
    "CommitOutcomeUnknownError",
    "SqlAuditStore",
    "SqlConnection",
    "SqlDialect",
    "check_current_key",
]

#: Layout version written to ``audit_meta``; any other value makes opening fail.
SCHEMA_VERSION: Final = "4"
#: The layouts that opening upgrades in place, with the tables each lacks.
_UPGRADABLE: Final = {
    "2": frozenset({"audit_cosigned", "audit_archives"}),
    "3": frozenset({"audit_archives"}),
}

#: ``audit_meta`` rows written when a store is created. Only ``schema_version`` is
#: checked; the others tell a human (or an offline verifier) how to read the rows.
META_ROWS: Final[tuple[tuple[str, str], ...]] = (
    ("schema_version", SCHEMA_VERSION),
    ("record_encoding", "gateway canonical JSON, AuditRecord v2 (gateway/audit/record.py)"),
    ("leaf_hash", "SHA-256(0x00 || record), RFC 6962 section 2.1"),
    ("tree", "RFC 6962 Merkle tree over leaf_hash in idx order; root in audit_state"),
    ("checkpoint", "C2SP tlog-checkpoint in a C2SP signed note (Ed25519)"),
    ("cosigned", "audit_cosigned: checkpoints with C2SP tlog-cosignature/v1 witness lines"),
    (
        "archives",
        "audit_archives: ranges whose record bytes moved to verified archive bundles "
        "(gateway audit archive); their leaf hashes stay in audit_log",
    ),
)

#: The tables of the layout; a schema holding some but not all of them is refused.
TABLES: Final = frozenset(
    {
        "audit_meta",
        "audit_state",
        "audit_log",
        "audit_checkpoints",
        "audit_keys",
        "audit_cosigned",
        "audit_archives",
    }
)

#: Most entries an append catches up on while it holds the writer locks (see module doc).
LOCKED_CATCH_UP_MAX: Final = 10_000

#: Rows read per statement when catching up or exporting (bounded memory and time).
READ_CHUNK: Final = 5_000

_T = TypeVar("_T")


class SqlCursor(Protocol):
    """What the store reads of a DB-API cursor (sqlite3 and psycopg both fit)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class SqlConnection(Protocol):
    """What the store does with a connection: ``execute`` a statement of its dialect."""

    def execute(self, query: Any, params: Any = ..., /) -> SqlCursor: ...


C = TypeVar("C", bound=SqlConnection)


class CommitOutcomeUnknownError(Exception):
    """COMMIT was sent but its result never arrived: never retry."""


#: One row to insert: its index, searchable columns, record bytes and leaf hash.
InsertRow = tuple[int, SearchColumns, bytes, bytes]


class SqlDialect(Protocol[C]):
    """How one database keeps the layout: its statements, locks and connections.

    Statements are written once, in :class:`SqlAuditStore`, with ``?`` placeholders and
    ``{t}`` before every table name; :meth:`q` turns them into the driver's form.
    """

    @property
    def where(self) -> str:
        """How messages name the storage (internal details only), e.g. ``SQLite audit
        log /var/lib/gateway/audit.sqlite``."""
        ...

    @property
    def lock_timeout_s(self) -> float:
        """Longest wait, in seconds, for this process's other writers and for other
        processes' (the dialect's process lock)."""
        ...

    @property
    def begin_write(self) -> str:
        """Starts a write transaction (SQLite takes the file's write lock with it)."""
        ...

    @property
    def begin_snapshot(self) -> str:
        """Starts a consistent read snapshot."""
        ...

    @property
    def unbounded(self) -> tuple[str, ...]:
        """Statements run after :attr:`begin_snapshot` by ``check`` (no time limit)."""
        ...

    @property
    def lock_state(self) -> str:
        """Appended to the state read of a write transaction (PostgreSQL: the row lock
        that queues other processes' writers)."""
        ...

    @property
    def state_id(self) -> object:
        """The id of the one ``audit_state`` row (a bound parameter)."""
        ...

    @property
    def ddl(self) -> tuple[str, ...]:
        """The schema's DDL, in the ``{t}`` convention, run when a store is created."""
        ...

    @property
    def cosigned_ddl(self) -> tuple[str, ...]:
        """The DDL of ``audit_cosigned`` alone (part of :attr:`ddl`): upgrading version 2."""
        ...

    @property
    def archive_ddl(self) -> tuple[str, ...]:
        """The DDL of ``audit_archives`` and the archive-aware UPDATE trigger of
        ``audit_log`` (part of :attr:`ddl`): upgrading versions 2 and 3."""
        ...

    def q(self, text: str) -> Any:
        """``text`` (``?`` placeholders, ``{t}`` table prefix) as the driver's query."""
        ...

    def contains(self, column: str) -> str:
        """A condition "``column`` contains the bound ``?`` literally" (no LIKE escapes)."""
        ...

    def to_text(self, value: str | None) -> str | None:
        """``value`` as the database's text columns hold it (an injective mapping)."""
        ...

    def from_text(self, value: str | None) -> str | None:
        """The inverse of :meth:`to_text` (a value equal to no column if malformed)."""
        ...

    def acquire(self, *, writer: bool) -> C:
        """A connection for one operation. ``writer=True`` is asked for only by the holder
        of the store's writer lock. Raises whatever connecting raises."""
        ...

    def release(self, conn: C, *, writer: bool, ok: bool) -> None:
        """Give ``conn`` back; ``ok=False`` (it saw an error) rolls back and discards it."""
        ...

    def is_stale(self, conn: C) -> bool:
        """Whether ``conn`` died under the operation (a retry on another may succeed)."""
        ...

    def forget_idle(self) -> None:
        """Drop idle connections that died with the one found stale."""
        ...

    def process_lock(self, deadline: float) -> AbstractContextManager[None]:
        """Hold the lock that queues writers of other processes (until ``deadline``)."""
        ...

    def init_transaction(self, conn: C) -> AbstractContextManager[None]:
        """One transaction in which no other process creates the schema concurrently."""
        ...

    def tables(self, conn: C) -> set[str]:
        """The names of :data:`TABLES` present in the store's schema."""
        ...

    def insert_rows(self, conn: C, rows: Sequence[InsertRow]) -> None:
        """Insert the batch into ``audit_log`` (triggers and constraints apply)."""
        ...

    def stream(self, conn: C, query: Any) -> AbstractContextManager[Iterable[Any]]:
        """The rows of ``query`` in bounded memory (inside a snapshot)."""
        ...

    def in_transaction(self, conn: C) -> bool:
        """Whether ``conn`` is inside a transaction."""
        ...

    def close(self) -> None:
        """Release every connection and lock; idempotent."""
        ...


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


@dataclass(frozen=True, slots=True)
class _Statements:
    """The store's statements, in the dialect's form (built once per store)."""

    state: Any
    state_locked: Any
    current_key: Any
    entries: Any
    advance: Any
    insert_checkpoint: Any
    insert_checkpoint_once: Any
    insert_key: Any
    insert_meta: Any
    insert_state: Any
    schema_version: Any
    get: Any
    rows: Any
    head: Any
    checkpoint: Any
    checkpoints: Any
    keys: Any
    insert_cosigned: Any
    cosigned: Any
    upgrade_meta: Any
    archived_upto: Any
    archives: Any
    insert_archive: Any
    strip: Any

    @classmethod
    def of(cls, d: SqlDialect[Any]) -> _Statements:
        state = "SELECT size, root FROM {t}audit_state"
        checkpoint = (
            "INSERT INTO {t}audit_checkpoints (size, origin, root, note) VALUES (?, ?, ?, ?)"
        )
        return cls(
            state=d.q(state),
            state_locked=d.q(state + d.lock_state),
            current_key=d.q("SELECT origin, vkey FROM {t}audit_keys ORDER BY seq DESC LIMIT 1"),
            entries=d.q(
                "SELECT idx, record, leaf_hash FROM {t}audit_log"
                " WHERE idx >= ? AND idx < ? ORDER BY idx"
            ),
            advance=d.q("UPDATE {t}audit_state SET size = ?, root = ? WHERE size = ? AND root = ?"),
            insert_checkpoint=d.q(checkpoint),
            insert_checkpoint_once=d.q(checkpoint + " ON CONFLICT (origin, size) DO NOTHING"),
            insert_key=d.q(
                "INSERT INTO {t}audit_keys (from_size, origin, vkey, handover) VALUES (?, ?, ?, ?)"
            ),
            insert_meta=d.q("INSERT INTO {t}audit_meta (key, value) VALUES (?, ?)"),
            insert_state=d.q("INSERT INTO {t}audit_state (id, size, root) VALUES (?, 0, ?)"),
            schema_version=d.q("SELECT value FROM {t}audit_meta WHERE key = 'schema_version'"),
            get=d.q("SELECT idx, record, leaf_hash FROM {t}audit_log WHERE audit_id = ?"),
            rows=d.q(
                "SELECT idx, audit_id, time, department, system, purpose, outcome, datasets,"
                " sql, record, leaf_hash FROM {t}audit_log ORDER BY idx"
            ),
            head=d.q("SELECT size, root, note FROM {t}audit_checkpoints ORDER BY seq DESC LIMIT 1"),
            checkpoint=d.q(
                "SELECT note FROM {t}audit_checkpoints WHERE size = ? ORDER BY seq DESC LIMIT 1"
            ),
            checkpoints=d.q(
                "SELECT note FROM {t}audit_checkpoints WHERE size >= ? ORDER BY seq LIMIT ?"
            ),
            keys=d.q("SELECT origin, vkey, from_size, handover FROM {t}audit_keys ORDER BY seq"),
            insert_cosigned=d.q(
                "INSERT INTO {t}audit_cosigned (size, origin, note) VALUES (?, ?, ?)"
            ),
            cosigned=d.q(
                "SELECT note FROM {t}audit_cosigned WHERE size <= ?"
                " ORDER BY size DESC, seq DESC LIMIT 1"
            ),
            upgrade_meta=d.q(
                "UPDATE {t}audit_meta SET value = ? WHERE key = 'schema_version' AND value = ?"
            ),
            archived_upto=d.q("SELECT COALESCE(MAX(upto), 0) FROM {t}audit_archives"),
            archives=d.q(
                "SELECT start, upto, name, sha256, archived_at, checkpoint"
                " FROM {t}audit_archives ORDER BY seq"
            ),
            insert_archive=d.q(
                "INSERT INTO {t}audit_archives (start, upto, name, sha256, archived_at,"
                " checkpoint) VALUES (?, ?, ?, ?, ?, ?)"
            ),
            strip=d.q(
                "UPDATE {t}audit_log SET record = ?, department = NULL, system = NULL,"
                " purpose = NULL, datasets = '', sql = NULL WHERE idx >= ? AND idx < ?"
            ),
        )


def _fetch_all(statement: Any, values: Sequence[object], conn: SqlConnection) -> list[Any]:
    return conn.execute(statement, values).fetchall()


class SqlAuditStore(SequencedStore, Generic[C]):
    """The audit store over ``dialect``, shared safely by threads and processes.

    Creates the schema if the storage holds none of its tables. Raises ConfigurationError
    for a store with another schema version, an incomplete one, or one whose current key
    is not ``signer``'s; AuditUnavailableError when the storage cannot be reached or
    initialised (the dialect is closed then).

    Open one store per process, after any ``fork()``: a store used in a process other than
    the one that opened it raises AuditUnavailableError rather than share connections
    and locks with its parent.
    """

    def __init__(self, dialect: SqlDialect[C], signer: CheckpointSigner) -> None:
        self.dialect = dialect
        self._sql = _Statements.of(dialect)
        self._sequencer = Sequencer(signer)
        self._pid = os.getpid()
        self._closed = False
        #: Serialises this process's writers (and tree catch-ups) before the process lock.
        self._write_lock = threading.Lock()
        #: A tree size this process knows is committed; the tree holds at least as many.
        #: Written under the writer lock only.
        self._committed = 0
        #: See :data:`LOCKED_CATCH_UP_MAX`.
        self._locked_catch_up_max = LOCKED_CATCH_UP_MAX
        try:
            self._run("initialising the audit log", self._initialise, writer=True)
        except BaseException:
            dialect.close()
            raise

    # -- connections and locks ------------------------------------------------------------

    def _check_usable(self) -> None:
        if os.getpid() != self._pid:
            # Connections and locks must not cross fork(): a child would share the parent's
            # and corrupt both. Open the store in each worker process instead.
            raise unavailable(None, "audit store was opened before fork(); open it per process")
        if self._closed:
            raise unavailable(None, "audit store is closed")

    def _run(self, what: str, fn: Callable[[C], _T], *, writer: bool = False) -> _T:
        """Run ``fn`` on a connection of the dialect, retrying once on another connection
        when this one died under it and ``fn`` had not sent COMMIT (until then the server
        cannot have committed anything).

        AuditUnavailableError and ConfigurationError pass through; any other exception
        becomes AuditUnavailableError. A connection that saw an error is not reused.
        """
        self._check_usable()
        dialect = self.dialect
        for attempt in (1, 2):
            try:
                conn = dialect.acquire(writer=writer)
            except (AuditUnavailableError, ConfigurationError):
                raise
            except Exception as exc:
                raise unavailable(exc, f"cannot connect to the {dialect.where}") from exc
            ok = False
            try:
                result = fn(conn)
                ok = True
                return result
            except (AuditUnavailableError, ConfigurationError):
                raise
            except Exception as exc:
                retry = attempt == 1 and not isinstance(exc, CommitOutcomeUnknownError)
                if retry and dialect.is_stale(conn):
                    dialect.forget_idle()
                    continue
                raise unavailable(exc, f"{what} ({dialect.where})") from exc
            finally:
                dialect.release(conn, writer=writer, ok=ok)
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def _writer(self) -> Iterator[float]:
        """This process's writer lock; yields the deadline for the process lock."""
        self._check_usable()
        timeout = self.dialect.lock_timeout_s
        deadline = time.monotonic() + timeout
        if not self._write_lock.acquire(timeout=timeout):
            raise unavailable(None, "timed out waiting for the audit writer lock (threads)")
        try:
            yield deadline
        finally:
            self._write_lock.release()

    def _locked(self, what: str, fn: Callable[[C], _T], deadline: float) -> _T:
        """Run ``fn`` (which opens the write transaction) holding the process lock; call
        with the writer lock held."""
        with self.dialect.process_lock(deadline):
            return self._run(what, fn, writer=True)

    def _rollback_quietly(self, conn: C) -> None:
        with contextlib.suppress(Exception):  # the connection is discarded on error anyway
            if self.dialect.in_transaction(conn):
                conn.execute("ROLLBACK")

    @staticmethod
    def _commit(conn: C) -> None:
        try:
            conn.execute("COMMIT")
        except Exception as exc:
            # Whatever went wrong, COMMIT reached (or may have reached) the database:
            # never retry, or the batch could be written twice.
            raise CommitOutcomeUnknownError(f"{type(exc).__name__}: {exc}") from exc

    # -- schema ---------------------------------------------------------------------------

    def _initialise(self, conn: C) -> None:
        dialect = self.dialect
        with dialect.init_transaction(conn):
            present = dialect.tables(conn) & TABLES
            if not present:
                self._create(conn)
                return
            if "audit_meta" in present:
                # An older layout is named by its version, not as "incomplete".
                row = conn.execute(self._sql.schema_version).fetchone()
                version = None if row is None else row[0]
                lacking = _UPGRADABLE.get(str(version))
                if lacking is not None and present == TABLES - lacking:
                    self._upgrade(conn, str(version), lacking)
                    present = set(TABLES)
                    version = SCHEMA_VERSION
                if version != SCHEMA_VERSION:
                    raise ConfigurationError(
                        f"{dialect.where} has schema version {version!r}; this gateway "
                        f"writes only version {SCHEMA_VERSION!r}"
                    )
            if present != TABLES:
                raise ConfigurationError(
                    f"{dialect.where} is incomplete or of an older layout "
                    f"(has {sorted(present)}); refusing to use it"
                )
            check_current_key(self._current_key(conn), self._sequencer.signer)

    def _upgrade(self, conn: C, version: str, lacking: frozenset[str]) -> None:
        """Versions 2 and 3 to 4: add what they lack (``audit_cosigned``,
        ``audit_archives``); entries and checkpoints are untouched."""
        statements = (self.dialect.cosigned_ddl if "audit_cosigned" in lacking else ()) + (
            self.dialect.archive_ddl
        )
        for statement in statements:
            conn.execute(self.dialect.q(statement))
        conn.execute(self._sql.upgrade_meta, (SCHEMA_VERSION, version))
        for row in META_ROWS[-len(lacking) :]:
            conn.execute(self._sql.insert_meta, row)

    def _create(self, conn: C) -> None:
        for statement in self.dialect.ddl:
            conn.execute(self.dialect.q(statement))
        for row in META_ROWS:
            conn.execute(self._sql.insert_meta, row)
        signer = self._sequencer.signer
        conn.execute(self._sql.insert_state, (self.dialect.state_id, EMPTY_ROOT))
        conn.execute(self._sql.insert_key, (0, signer.origin, signer.verifier.encode(), None))
        conn.execute(
            self._sql.insert_checkpoint, (0, signer.origin, EMPTY_ROOT, signer.sign(0, EMPTY_ROOT))
        )

    # -- reading helpers ------------------------------------------------------------------

    def _current_key(self, conn: C) -> tuple[str, str] | None:
        row = conn.execute(self._sql.current_key).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def _read_state(self, conn: C, *, lock: bool = False) -> tuple[int, bytes]:
        row = conn.execute(self._sql.state_locked if lock else self._sql.state).fetchone()
        if row is None:
            raise unavailable(None, "audit_state row is missing")
        return int(row[0]), bytes(row[1])

    def _read_entries(self, conn: C, start: int, end: int) -> Iterator[tuple[int, bytes, bytes]]:
        """``(idx, record, leaf_hash)`` for ``start <= idx < end``, one bounded statement
        per chunk (rows below the committed size never change, so chunks agree)."""
        for low in range(start, end, READ_CHUNK):
            high = min(end, low + READ_CHUNK)
            rows = conn.execute(self._sql.entries, (low, high)).fetchall()
            for r in rows:
                yield int(r[0]), bytes(r[1]), bytes(r[2])
            if len(rows) < high - low:
                return  # a gap: the sequencer names it

    def _catch_up(self, conn: C, size: int, root: bytes) -> None:
        """Bring the tree to the stored ``(size, root)``; call with the writer lock held."""
        self._sequencer.catch_up(size, root, lambda a, b: self._read_entries(conn, a, b))
        self._committed = max(self._committed, size)

    def _catch_up_snapshot(self, conn: C) -> None:
        """Bring the tree up to the committed state from one read snapshot, without the
        process lock. Call with the writer lock held."""
        conn.execute(self.dialect.begin_snapshot)
        try:
            self._catch_up(conn, *self._read_state(conn))
        finally:
            self._rollback_quietly(conn)

    def _cover(self, size: int) -> None:
        """Make the in-memory tree cover at least ``size`` *committed* entries (ValueError
        if the log has fewer): a batch sealed in the tree but not committed has no proofs."""
        self._check_usable()
        if size <= self._committed:
            return
        with self._writer():
            if size > self._committed:
                self._run("reading the audit log", self._catch_up_snapshot, writer=True)
        if size > self._committed:
            raise ValueError(f"the log has {self._committed} entries, not {size}")

    # -- AuditAppender (origin, append and the proofs: SequencedStore) --------------------

    def append_batch(self, records: Sequence[AuditRecord | EncodedRecord]) -> Appended:
        """See :meth:`AuditAppender.append_batch`: durable when it returns.

        Raises AuditUnavailableError on any failure, including a duplicate ``audit_id``,
        a lock wait beyond the dialect's timeout, a replaced file, a tree state that
        disagrees with the rows (the store then refuses to append until an operator has
        investigated), or a log whose key was rotated by another process.
        """
        encoded = encode_batch(records)
        what = "appending to the audit log"
        with self._writer() as deadline:
            for attempt in range(3):
                insert = functools.partial(self._insert, encoded=encoded, may_lag=attempt == 2)
                appended = self._locked(what, insert, deadline)
                if appended is not None:
                    return appended
                self._run("catching up with the audit log", self._catch_up_snapshot, writer=True)
        raise AssertionError("unreachable")  # pragma: no cover

    def _insert(self, conn: C, encoded: list[EncodedRecord], may_lag: bool) -> Appended | None:
        """The append transaction (see the module docstring); None when this process is
        too far behind to catch up while holding the locks."""
        sequencer = self._sequencer
        conn.execute(self.dialect.begin_write)
        # Lock first, then read the key: a rotation committed while this waited is
        # visible to the statements that follow the lock.
        size, root = self._read_state(conn, lock=True)
        check_current_key(self._current_key(conn), sequencer.signer, writing=True)
        if not may_lag and size - sequencer.size > self._locked_catch_up_max:
            conn.execute("ROLLBACK")  # catch up without holding up other writers
            return None
        # Not inside the try below: a failed catch-up must not roll the tree back (that
        # would forget a rollback of the stored state it just detected).
        self._catch_up(conn, size, root)
        try:
            self.dialect.insert_rows(
                conn, [(size + i, e.columns, e.data, e.leaf) for i, e in enumerate(encoded)]
            )
            stored = self._read_back(conn, size, len(encoded))
            head = sequencer.seal(size, [e.data for e in encoded], stored)
            cur = conn.execute(self._sql.advance, (head.size, head.root, size, root))
            if cur.rowcount != 1:
                raise unavailable(None, "audit_state changed under the writer lock")
            conn.execute(
                self._sql.insert_checkpoint,
                (head.size, sequencer.signer.origin, head.root, head.checkpoint),
            )
            self._commit(conn)
        except BaseException:
            # Entries below ``size`` are verified and committed; the batch may not be (if
            # COMMIT's outcome is unknown and it did commit, the next catch-up re-reads it).
            sequencer.rollback(size)
            raise
        self._committed = max(self._committed, head.size)
        return Appended(size, len(encoded), head)

    def _read_back(self, conn: C, size: int, count: int) -> list[bytes]:
        """The batch's bytes as stored, after checking that the last committed entry is
        still there unchanged: a removed or rewritten tail is noticed here, at no extra
        round trip (``check`` finds the rest)."""
        back = list(self._read_entries(conn, max(size - 1, 0), size + count))
        if size:
            if (
                not back
                or back[0][0] != size - 1
                or leaf_hash_of(back[0][1]) != self._sequencer.leaf(size - 1)
            ):
                raise unavailable(
                    None, f"audit log entry {size - 1} was removed or changed; run check"
                )
            back = back[1:]
        return [data for _, data, _ in back]

    def rotate(self, new_signer: CheckpointSigner, handover: Callable[[TreeHead], str]) -> KeyEpoch:
        """See :meth:`AuditAppender.rotate`."""
        sequencer = self._sequencer
        sql = self._sql

        def switch(conn: C) -> KeyEpoch:
            conn.execute(self.dialect.begin_write)
            size, root = self._read_state(conn, lock=True)
            check_current_key(self._current_key(conn), sequencer.signer, writing=True)
            self._catch_up(conn, size, root)
            final = TreeHead(size, root, sequencer.signer.sign(size, root))
            # A batch may already have left the old key's checkpoint at exactly this size.
            conn.execute(
                sql.insert_checkpoint_once, (size, sequencer.signer.origin, root, final.checkpoint)
            )
            epoch = KeyEpoch(new_signer.origin, new_signer.verifier.encode(), size, handover(final))
            conn.execute(
                sql.insert_key, (epoch.from_size, epoch.origin, epoch.vkey, epoch.handover)
            )
            conn.execute(
                sql.insert_checkpoint, (size, new_signer.origin, root, new_signer.sign(size, root))
            )
            self._commit(conn)
            return epoch

        with self._writer() as deadline:
            epoch = self._locked("rotating the audit log key", switch, deadline)
            sequencer.signer = new_signer
        return epoch

    # -- AuditReader ----------------------------------------------------------------------

    def get(self, audit_id: str) -> tuple[int, AuditRecord] | None:
        """See :meth:`AuditReader.get`."""

        def read(conn: C) -> tuple[int, bytes, bytes] | None:
            row = conn.execute(self._sql.get, (self.dialect.to_text(audit_id),)).fetchone()
            return None if row is None else (int(row[0]), bytes(row[1]), bytes(row[2]))

        found = self._run("reading the audit log", read)
        # An archived record's bytes are in its archive bundle, not here.
        return None if found is None or not found[1] else decode_stored(*found)

    def search(self, query: SearchQuery) -> list[tuple[int, AuditRecord]]:
        """See :meth:`AuditReader.search`.

        The database narrows by the searchable columns; the decoded record has the last
        word (:meth:`SearchQuery.matches`), because a mapped needle can match across an
        escape in a stored column (PostgreSQL text holding U+0000, see
        :mod:`~gateway.audit.store.postgres`). Pages on until ``limit`` records match.
        """
        conditions, args = self._search_conditions(query)
        found: list[tuple[int, AuditRecord]] = []
        bound = query.before
        while True:
            want = query.limit - len(found)
            where = conditions if bound is None else [*conditions, "idx < ?"]
            text = "SELECT idx, record, leaf_hash FROM {t}audit_log"
            if where:
                # Only the fixed conditions above are joined; every value is a parameter.
                text += " WHERE " + " AND ".join(where)
            statement = self.dialect.q(text + " ORDER BY idx DESC LIMIT ?")
            values = [*args, *([] if bound is None else [bound]), want]
            rows = self._run(
                "searching the audit log", functools.partial(_fetch_all, statement, values)
            )
            for row in rows:
                if not row[1]:
                    continue  # archived: its bytes are in its archive bundle
                idx, record = decode_stored(int(row[0]), bytes(row[1]), bytes(row[2]))
                if query.matches(idx, search_columns(record)):
                    found.append((idx, record))
            if len(rows) < want or len(found) >= query.limit:
                return found
            bound = int(rows[-1][0])

    def _search_conditions(self, query: SearchQuery) -> tuple[list[str], list[object]]:
        d = self.dialect
        conditions: list[str] = []
        args: list[object] = []
        for condition, value in (
            ("department = ?", d.to_text(query.department)),
            ("system = ?", d.to_text(query.system)),
            ("outcome = ?", None if query.outcome is None else query.outcome.value),
            ("time >= ?", query.since),
            ("time < ?", query.until),
            ("purpose = ?", d.to_text(query.purpose)),
            (d.contains("datasets"), d.to_text(query.datasets_needle)),
            (d.contains("sql"), d.to_text(query.text)),
        ):
            if value is not None:
                conditions.append(condition)
                args.append(value)
        return conditions, args

    def entries(self, start: int, end: int) -> list[StoredEntry]:
        """See :meth:`AuditReader.entries`."""
        start, end = check_range(start, end)
        rows = self._run(
            "reading the audit log", lambda conn: list(self._read_entries(conn, start, end))
        )
        return entries_checked(rows)

    def size(self) -> int:
        """See :meth:`AuditReader.size`."""
        return self._run("reading the audit log size", lambda conn: self._read_state(conn)[0])

    def head(self) -> TreeHead:
        """See :meth:`AuditReader.head`."""

        def read(conn: C) -> TreeHead:
            row = conn.execute(self._sql.head).fetchone()
            if row is None:
                raise unavailable(None, "audit log has no checkpoint")
            return TreeHead(int(row[0]), bytes(row[1]), str(row[2]))

        return self._run("reading the audit log head", read)

    def checkpoint(self, size: int) -> str | None:
        """See :meth:`AuditReader.checkpoint`."""

        def read(conn: C) -> str | None:
            row = conn.execute(self._sql.checkpoint, (size,)).fetchone()
            return None if row is None else str(row[0])

        return self._run("reading the audit log checkpoints", read)

    def checkpoints(self, start_size: int, limit: int = 100) -> list[str]:
        """See :meth:`AuditReader.checkpoints`."""
        bounded = min(max(limit, 1), MAX_SEARCH_LIMIT)

        def read(conn: C) -> list[str]:
            return [str(r[0]) for r in conn.execute(self._sql.checkpoints, (start_size, bounded))]

        return self._run("reading the audit log checkpoints", read)

    def add_cosigned(self, size: int, origin: str, note: str) -> None:
        """See :meth:`AuditAppender.add_cosigned`."""

        def insert(conn: C) -> None:
            conn.execute(self.dialect.begin_write)
            conn.execute(self._sql.insert_cosigned, (size, origin, note))
            self._commit(conn)

        # Not under the writer lock: a cosignature is not part of the tree.
        self._run("storing a cosigned checkpoint", insert, writer=False)

    def cosigned(self, max_size: int | None = None) -> str | None:
        """See :meth:`AuditReader.cosigned`."""
        bound = 2**62 if max_size is None else max_size

        def read(conn: C) -> str | None:
            row = conn.execute(self._sql.cosigned, (bound,)).fetchone()
            return None if row is None else str(row[0])

        return self._run("reading the cosigned checkpoints", read)

    def key_history(self) -> list[KeyEpoch]:
        """See :meth:`AuditReader.key_history`."""

        def read(conn: C) -> list[KeyEpoch]:
            return [
                KeyEpoch(str(r[0]), str(r[1]), int(r[2]), None if r[3] is None else str(r[3]))
                for r in conn.execute(self._sql.keys)
            ]

        return self._run("reading the audit log keys", read)

    def check(self) -> None:
        """See :meth:`AuditReader.check`. Reads one snapshot, streamed, so that appends by
        other connections during the check neither block nor confuse it."""
        dialect = self.dialect

        def stored(rows: Iterable[Any]) -> Iterator[StoredRow]:
            for r in rows:
                columns = SearchColumns._make(dialect.from_text(value) for value in r[1:9])
                yield StoredRow(int(r[0]), columns, bytes(r[9]), bytes(r[10]))

        def verify(conn: C) -> None:
            conn.execute(dialect.begin_snapshot)
            try:
                for statement in dialect.unbounded:
                    conn.execute(statement)
                size, root = self._read_state(conn)
                upto = int(conn.execute(self._sql.archived_upto).fetchone()[0])
                with dialect.stream(conn, self._sql.rows) as rows:
                    verify_rows(stored(rows), state_size=size, state_root=root, archived_upto=upto)
            finally:
                self._rollback_quietly(conn)

        self._run("checking the audit log", verify)

    # -- AuditArchiver --------------------------------------------------------------------

    def archives(self) -> list[ArchiveMark]:
        """See :meth:`AuditArchiver.archives`."""

        def read(conn: C) -> list[ArchiveMark]:
            return [
                ArchiveMark(int(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]))
                for r in conn.execute(self._sql.archives)
            ]

        return self._run("reading the audit archives", read)

    def mark_archived(self, mark: ArchiveMark) -> None:
        """See :meth:`AuditArchiver.mark_archived`."""

        def strip(conn: C) -> None:
            conn.execute(self.dialect.begin_write)
            # The state row's lock (PostgreSQL; SQLite's write lock is the file's) makes
            # two archive runs take turns, so both cannot read the same archive mark.
            size, _root = self._read_state(conn, lock=True)
            upto = int(conn.execute(self._sql.archived_upto).fetchone()[0])
            check_archive_range(mark, archived_upto=upto, size=size)
            conn.execute(
                self._sql.insert_archive,
                (mark.start, mark.upto, mark.name, mark.sha256, mark.archived_at, mark.checkpoint),
            )
            stripped = conn.execute(self._sql.strip, (b"", mark.start, mark.upto)).rowcount
            if stripped != mark.upto - mark.start:
                raise unavailable(
                    None, f"archiving {mark.start}..{mark.upto - 1} changed {stripped} rows"
                )
            self._commit(conn)

        # Not under the writer lock: old rows only, which appends never touch.
        self._run("archiving audit records", strip, writer=False)

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """See :meth:`AuditReader.close`."""
        self._closed = True
        self.dialect.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
