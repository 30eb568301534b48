"""SQLite :class:`~gateway.audit.store.AuditStore` (the default, ``sqlite:<path>``).

Durability: the database runs in WAL mode with ``synchronous=FULL``, so each COMMIT
fsyncs the WAL before it returns; :meth:`SqliteAuditStore.append` returns only after its
COMMIT did.

Concurrency: an append is one ``BEGIN IMMEDIATE`` transaction that takes the file's write
lock, reads ``coalesce(max(idx) + 1, 0)``, advances ``audit_state.size`` from exactly that
value (compare-and-swap) and inserts the row, so indices are contiguous whoever writes.
Before that, writers queue: threads on a lock of the store, processes on an exclusive
``flock(2)`` of the sidecar file ``<path>-gwlock``. SQLite alone would be correct but
unfair: its busy handler sleeps up to 100 ms between attempts, so a process that commits
and begins again at once keeps the lock while the others sleep through the gaps (measured
here: one of two processes got over 1,200 consecutive appends while the other waited,
close to the busy timeout). A blocked ``flock`` is woken as soon as the holder unlocks.
Every wait is bounded by ``busy_timeout_s``; readers use their own pooled connections and
never block the writer (WAL).

The store also stats the database path on every operation and fails if the file there is
no longer the one its connection has open (deleted, moved, or replaced by something
else): writes to an unlinked file would be acknowledged and then vanish.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Self, TypeVar
from urllib.parse import quote

from gateway.audit.merkle import EMPTY_ROOT
from gateway.audit.record import AuditRecord, Outcome, leaf_hash_of
from gateway.audit.sequencer import Appended, Sequencer, TreeHead
from gateway.audit.signing import CheckpointSigner
from gateway.audit.store import (
    MAX_SEARCH_LIMIT,
    META_ROWS,
    SCHEMA_VERSION,
    ConnectionPool,
    EncodedRecord,
    KeyEpoch,
    SearchColumns,
    StoredEntry,
    StoredRow,
    check_consistency_args,
    check_current_key,
    check_proof_args,
    check_range,
    decode_stored,
    encode_batch,
    entries_checked,
    unavailable,
    validate_search,
    verify_rows,
)
from gateway.errors import AuditUnavailableError, ConfigurationError

__all__ = ["SqliteAuditStore"]

_T = TypeVar("_T")

#: The schema, one statement per entry (executed inside the creating transaction).
#: STRICT tables (SQLite >= 3.37) make SQLite enforce the column types.
_DDL: Final[tuple[str, ...]] = (
    "CREATE TABLE audit_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) STRICT",
    "CREATE TABLE audit_state ("
    " id INTEGER PRIMARY KEY CHECK (id = 0),"
    " size INTEGER NOT NULL CHECK (size >= 0),"
    " root BLOB NOT NULL CHECK (length(root) = 32)"
    ") STRICT",
    "CREATE TABLE audit_log ("
    " idx INTEGER PRIMARY KEY CHECK (idx >= 0),"
    " audit_id TEXT NOT NULL UNIQUE,"
    " time TEXT NOT NULL,"
    " department TEXT,"
    " system TEXT,"
    " purpose TEXT,"
    " outcome TEXT NOT NULL CHECK (outcome IN ('served', 'refused', 'failed')),"
    " datasets TEXT NOT NULL,"
    " sql TEXT,"
    " record BLOB NOT NULL,"
    " leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32)"
    ") STRICT",
    "CREATE INDEX audit_log_time ON audit_log (time)",
    "CREATE INDEX audit_log_department ON audit_log (department, idx)",
    "CREATE INDEX audit_log_system ON audit_log (system, idx)",
    "CREATE TABLE audit_checkpoints ("
    " seq INTEGER PRIMARY KEY,"
    " size INTEGER NOT NULL CHECK (size >= 0),"
    " origin TEXT NOT NULL,"
    " root BLOB NOT NULL CHECK (length(root) = 32),"
    " note TEXT NOT NULL,"
    " UNIQUE (origin, size)"
    ") STRICT",
    "CREATE INDEX audit_checkpoints_size ON audit_checkpoints (size)",
    "CREATE TABLE audit_keys ("
    " seq INTEGER PRIMARY KEY,"
    " from_size INTEGER NOT NULL CHECK (from_size >= 0),"
    " origin TEXT NOT NULL UNIQUE,"
    " vkey TEXT NOT NULL,"
    " handover TEXT"
    ") STRICT",
    # Append-only: a stray UPDATE/DELETE (a bug, a careless operator) is refused by the
    # database itself; someone who drops the triggers is caught by check() and by the
    # signed checkpoints held outside.
    *(
        f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}"
        f" BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        for table in ("audit_log", "audit_checkpoints", "audit_keys")
        for verb in ("UPDATE", "DELETE")
    ),
)

_TABLES: Final = frozenset(
    {"audit_meta", "audit_state", "audit_log", "audit_checkpoints", "audit_keys"}
)

_INSERT: Final = (
    "INSERT INTO audit_log (idx, audit_id, time, department, system, purpose, outcome,"
    " datasets, sql, record, leaf_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_ROWS: Final = (
    "SELECT idx, audit_id, time, department, system, purpose, outcome, datasets, sql,"
    " record, leaf_hash FROM audit_log ORDER BY idx"
)


class _FileLock:
    """Exclusive ``flock(2)`` on a sidecar file, with a bounded wait.

    ``flock`` cannot time out, so a contended acquisition blocks in a helper thread while
    the caller waits on a condition with a timeout. A caller that gives up leaves the
    helper blocked: the lock it eventually gets goes to the next caller of this process
    still waiting, or is released at once if none is. The kernel drops the lock if the
    process dies. Not reentrant; callers are serialised by the store's thread lock.
    """

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._cond = threading.Condition()
        self._held = False  # this process holds the flock
        self._pending = False  # a helper thread is blocked in flock()
        self._wanted = False  # a caller is waiting for the helper
        self._error: OSError | None = None
        self._closed = False

    def acquire(self, timeout: float) -> bool:
        """True once the lock is held; False after ``timeout`` seconds. Raises OSError if
        the lock file cannot be locked (or the lock was closed)."""
        with self._cond:
            if self._closed:
                raise OSError("audit write lock is closed")
            if not self._pending:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    self._pending = True
                    threading.Thread(
                        target=self._wait_blocking, name="audit-flock", daemon=True
                    ).start()
                else:
                    self._held = True
                    return True
            self._wanted = True
            try:
                self._cond.wait_for(lambda: self._held or self._error is not None, timeout)
            finally:
                self._wanted = False
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            return self._held

    def _wait_blocking(self) -> None:
        error: OSError | None = None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError as exc:
            error = exc
        with self._cond:
            self._pending = False
            if error is not None:
                self._error = error if self._wanted else None
            elif self._wanted and not self._closed:
                self._held = True
            else:
                # Nobody waits any more: holding it would block every other process.
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._cond.notify_all()
            self._close_fd_if_idle()

    def release(self) -> None:
        with self._cond:
            if self._held:
                self._held = False
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._close_fd_if_idle()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._close_fd_if_idle()

    def _close_fd_if_idle(self) -> None:
        if self._closed and not self._held and not self._pending and self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass(slots=True)
class _Handle:
    conn: sqlite3.Connection
    #: (st_dev, st_ino) of the file at the path when the connection was opened.
    identity: tuple[int, int]


class SqliteAuditStore:
    """Audit store in one SQLite file, shared safely by threads and processes.

    ``path`` must name a file in an existing directory; the file is created (mode 0600:
    the log holds SQL and officers' names) with the schema if it does not exist.
    Raises ConfigurationError for an unusable ``path`` or a file with another schema
    version, AuditUnavailableError when the file cannot be opened or initialised.

    Open one store per process, after any ``fork()``: a store used in a process other than
    the one that opened it raises AuditUnavailableError rather than share SQLite
    connections and the writer lock with its parent.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        signer: CheckpointSigner,
        *,
        busy_timeout_s: float = 5.0,
        max_idle: int = 4,
    ) -> None:
        text = os.fspath(path)
        if not text or text == ":memory:" or text.startswith("file:"):
            raise ConfigurationError(
                "sqlite audit location needs a file path (use 'memory:' for a test store)"
            )
        self._path = Path(text).absolute()
        self._uri = f"file:{quote(str(self._path), safe='/')}?mode=rw"
        self._busy_timeout_s = busy_timeout_s
        self._sequencer = Sequencer(signer)
        #: Largest tree size known to be committed (proofs are served up to it).
        self._committed = 0
        self._commit_lock = threading.Lock()
        self._pid = os.getpid()
        self._write_lock = threading.Lock()
        try:
            # Created here, with restrictive permissions, so that connections can use
            # mode=rw: a connection must never silently create a fresh empty log.
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            self._file_lock = _FileLock(self._path.with_name(self._path.name + "-gwlock"))
        except OSError as exc:
            raise unavailable(exc, f"cannot create the SQLite audit log {self._path}") from exc
        self._pool: ConnectionPool[_Handle] = ConnectionPool(
            self._connect, lambda h: h.conn.close(), max_idle=max_idle
        )
        try:
            self._run("initialising the SQLite audit log", self._initialise)
        except BaseException:
            self.close()
            raise

    # -- connections -------------------------------------------------------------------

    def _identity(self) -> tuple[int, int]:
        st = self._path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{self._path} is not a regular file")
        return (st.st_dev, st.st_ino)

    def _connect(self) -> _Handle:
        conn = sqlite3.connect(
            self._uri,
            uri=True,
            timeout=self._busy_timeout_s,
            isolation_level=None,  # no implicit transactions: we issue BEGIN/COMMIT
            check_same_thread=False,  # the pool hands a connection to one thread at a time
        )
        try:
            identity = self._identity()
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise ConfigurationError(
                    f"SQLite audit log {self._path} cannot use WAL mode (got {mode!r})"
                )
            # FULL: in WAL mode every COMMIT fsyncs the WAL, so a returned append survives
            # power loss (NORMAL would only survive a process crash).
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA trusted_schema = OFF")
        except BaseException:
            conn.close()
            raise
        return _Handle(conn, identity)

    def _run(self, what: str, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn`` on a pooled connection whose file is still the one at the path.

        AuditUnavailableError and ConfigurationError pass through; any other exception
        becomes AuditUnavailableError. A connection that saw an error is not reused.
        """
        self._check_process()
        try:
            handle, _ = self._pool.acquire()
        except (AuditUnavailableError, ConfigurationError):
            raise
        except Exception as exc:
            raise unavailable(exc, f"cannot open the SQLite audit log {self._path}") from exc
        ok = False
        try:
            if self._identity() != handle.identity:
                raise OSError(f"{self._path} was replaced or moved while open")
            result = fn(handle.conn)
            ok = True
            return result
        except (AuditUnavailableError, ConfigurationError):
            raise
        except Exception as exc:
            raise unavailable(exc, f"{what} ({self._path})") from exc
        finally:
            if ok:
                self._pool.release(handle)
            else:
                self._pool.discard(handle)

    def _check_process(self) -> None:
        if os.getpid() != self._pid:
            # SQLite connections and the flock descriptor must not cross fork(): a child
            # would share the parent's lock and corrupt the file. Open a store per process.
            raise unavailable(None, "audit store was opened before fork(); open it per process")

    @staticmethod
    def _rollback_quietly(conn: sqlite3.Connection) -> None:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the connection is discarded by _run anyway

    def _initialise(self, conn: sqlite3.Connection) -> None:
        # IMMEDIATE: two processes starting together must not both create the schema.
        conn.execute("BEGIN IMMEDIATE")
        try:
            present = {
                str(row[0])
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            ours = present & _TABLES
            if not ours:
                for statement in _DDL:
                    conn.execute(statement)
                conn.executemany("INSERT INTO audit_meta (key, value) VALUES (?, ?)", META_ROWS)
                signer = self._sequencer.signer
                conn.execute(
                    "INSERT INTO audit_state (id, size, root) VALUES (0, 0, ?)", (EMPTY_ROOT,)
                )
                conn.execute(
                    "INSERT INTO audit_keys (from_size, origin, vkey, handover)"
                    " VALUES (0, ?, ?, NULL)",
                    (signer.origin, signer.verifier.encode()),
                )
                conn.execute(
                    "INSERT INTO audit_checkpoints (size, origin, root, note) VALUES (0, ?, ?, ?)",
                    (signer.origin, EMPTY_ROOT, signer.sign(0, EMPTY_ROOT)),
                )
            elif ours != _TABLES:
                raise ConfigurationError(
                    f"SQLite audit log {self._path} is incomplete or of an older layout "
                    f"(has {sorted(ours)}); refusing to use it"
                )
            else:
                row = conn.execute(
                    "SELECT value FROM audit_meta WHERE key = 'schema_version'"
                ).fetchone()
                version = None if row is None else row[0]
                if version != SCHEMA_VERSION:
                    raise ConfigurationError(
                        f"SQLite audit log {self._path} has schema version {version!r}; "
                        f"this gateway writes only version {SCHEMA_VERSION!r}"
                    )
                check_current_key(self._current_key(conn), self._sequencer.signer)
            conn.execute("COMMIT")
        except BaseException:
            self._rollback_quietly(conn)
            raise

    @staticmethod
    def _current_key(conn: sqlite3.Connection) -> tuple[str, str] | None:
        row = conn.execute(
            "SELECT origin, vkey FROM audit_keys ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    @staticmethod
    def _read_state(conn: sqlite3.Connection) -> tuple[int, bytes]:
        row = conn.execute("SELECT size, root FROM audit_state WHERE id = 0").fetchone()
        if row is None:
            raise unavailable(None, "audit_state row is missing")
        return int(row[0]), bytes(row[1])

    @staticmethod
    def _read_entries(
        conn: sqlite3.Connection, start: int, end: int
    ) -> Iterator[tuple[int, bytes, bytes]]:
        for r in conn.execute(
            "SELECT idx, record, leaf_hash FROM audit_log WHERE idx >= ? AND idx < ? ORDER BY idx",
            (start, end),
        ):
            yield int(r[0]), bytes(r[1]), bytes(r[2])

    def _locked_write(self, what: str, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn`` inside BEGIN IMMEDIATE .. COMMIT holding both writer locks."""

        def tx(conn: sqlite3.Connection) -> _T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                self._rollback_quietly(conn)
                raise
            return result

        self._check_process()
        deadline = time.monotonic() + self._busy_timeout_s
        if not self._write_lock.acquire(timeout=self._busy_timeout_s):
            raise unavailable(None, "timed out waiting for the audit writer lock (threads)")
        try:
            try:
                locked = self._file_lock.acquire(max(0.0, deadline - time.monotonic()))
            except OSError as exc:
                raise unavailable(exc, "cannot lock the SQLite audit log") from exc
            if not locked:
                raise unavailable(None, "timed out waiting for the audit writer lock (processes)")
            try:
                return self._run(what, tx)
            finally:
                self._file_lock.release()
        finally:
            self._write_lock.release()

    # -- AuditStore --------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return self._sequencer.signer.origin

    def append(self, record: AuditRecord) -> int:
        """See :meth:`AuditStore.append`."""
        return self.append_batch([record]).first

    def append_batch(self, records: Sequence[AuditRecord | EncodedRecord]) -> Appended:
        """See :meth:`AuditStore.append_batch`: durable (WAL fsync'd) when it returns.

        Raises AuditUnavailableError on any failure, including a duplicate ``audit_id``,
        a busy database beyond ``busy_timeout_s``, a replaced file, a tree state that
        disagrees with the rows, or a log whose key was rotated by another process.
        """
        encoded = encode_batch(records)
        sequencer = self._sequencer
        started: list[int] = []

        def insert(conn: sqlite3.Connection) -> Appended:
            check_current_key(self._current_key(conn), sequencer.signer, writing=True)
            size, root = self._read_state(conn)
            sequencer.catch_up(size, root, lambda a, b: self._read_entries(conn, a, b))
            started.append(size)
            conn.executemany(
                _INSERT,
                [
                    (size + i, *columns, data, leaf)
                    for i, (columns, data, leaf) in enumerate(encoded)
                ],
            )
            # Read back from the entry before the batch: an open store must also notice
            # that the last committed entry was deleted or rewritten behind its back.
            back = list(self._read_entries(conn, max(size - 1, 0), size + len(encoded)))
            if size > 0:
                idx, data, _ = back.pop(0) if back else (-1, b"", b"")
                if idx != size - 1 or leaf_hash_of(data) != sequencer.leaf(size - 1):
                    raise unavailable(None, f"audit log entry {size - 1} changed or vanished")
            head = sequencer.seal(size, [data for _, data, _ in encoded], [d for _, d, _ in back])
            cur = conn.execute(
                "UPDATE audit_state SET size = ?, root = ? WHERE id = 0 AND size = ? AND root = ?",
                (head.size, head.root, size, root),
            )
            if cur.rowcount != 1:
                raise unavailable(None, "audit_state changed under the writer lock")
            conn.execute(
                "INSERT INTO audit_checkpoints (size, origin, root, note) VALUES (?, ?, ?, ?)",
                (head.size, sequencer.signer.origin, head.root, head.checkpoint),
            )
            return Appended(size, len(encoded), head)

        try:
            appended = self._locked_write("appending to the SQLite audit log", insert)
        except BaseException:
            # Forget the batch's leaves (sealed or not, the COMMIT did not happen). Never
            # below the batch's start: a detected rollback of the stored state must go on
            # being refused, not be adopted.
            if started:
                sequencer.rollback(started[0])
            raise
        with self._commit_lock:
            self._committed = max(self._committed, appended.head.size)
        return appended

    def _sync_tree(self, size: int) -> None:
        """Make the in-memory tree cover at least ``size`` *committed* entries (a batch
        may be sealed in the tree but not yet committed: no proofs for it)."""
        if self._pool.closed:
            raise unavailable(None, "audit store is closed")
        with self._commit_lock:
            if self._committed >= size:
                return
        with self._write_lock:

            def read(conn: sqlite3.Connection) -> None:
                conn.execute("BEGIN")  # one read snapshot for state and rows
                try:
                    state_size, root = self._read_state(conn)
                    self._sequencer.catch_up(
                        state_size, root, lambda a, b: self._read_entries(conn, a, b)
                    )
                finally:
                    self._rollback_quietly(conn)
                with self._commit_lock:
                    self._committed = max(self._committed, state_size)

            self._run("reading the SQLite audit log", read)
        with self._commit_lock:
            committed = self._committed
        if committed < size:
            raise ValueError(f"the log has {committed} entries, not {size}")

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """See :meth:`AuditStore.inclusion_proof`."""
        check_proof_args(index, size)
        self._sync_tree(size)
        return self._sequencer.inclusion_proof(index, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """See :meth:`AuditStore.consistency_proof`."""
        check_consistency_args(old_size, new_size)
        self._sync_tree(new_size)
        return self._sequencer.consistency_proof(old_size, new_size)

    def head(self) -> TreeHead:
        """See :meth:`AuditStore.head`."""

        def read(conn: sqlite3.Connection) -> TreeHead:
            row = conn.execute(
                "SELECT size, root, note FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            if row is None:
                raise unavailable(None, "audit log has no checkpoint")
            return TreeHead(int(row[0]), bytes(row[1]), str(row[2]))

        return self._run("reading the SQLite audit log head", read)

    def checkpoint(self, size: int) -> str | None:
        """See :meth:`AuditStore.checkpoint`."""

        def read(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT note FROM audit_checkpoints WHERE size = ? ORDER BY seq DESC LIMIT 1",
                (size,),
            ).fetchone()
            return None if row is None else str(row[0])

        return self._run("reading the SQLite audit log checkpoints", read)

    def checkpoints(self, start_size: int, limit: int = 100) -> list[str]:
        """See :meth:`AuditStore.checkpoints`."""

        def read(conn: sqlite3.Connection) -> list[str]:
            return [
                str(r[0])
                for r in conn.execute(
                    "SELECT note FROM audit_checkpoints WHERE size >= ? ORDER BY seq LIMIT ?",
                    (start_size, min(max(limit, 1), MAX_SEARCH_LIMIT)),
                )
            ]

        return self._run("reading the SQLite audit log checkpoints", read)

    def key_history(self) -> list[KeyEpoch]:
        """See :meth:`AuditStore.key_history`."""

        def read(conn: sqlite3.Connection) -> list[KeyEpoch]:
            return [
                KeyEpoch(str(r[0]), str(r[1]), int(r[2]), None if r[3] is None else str(r[3]))
                for r in conn.execute(
                    "SELECT origin, vkey, from_size, handover FROM audit_keys ORDER BY seq"
                )
            ]

        return self._run("reading the SQLite audit log keys", read)

    def rotate(self, new_signer: CheckpointSigner, handover: Callable[[TreeHead], str]) -> KeyEpoch:
        """See :meth:`AuditStore.rotate`."""
        sequencer = self._sequencer

        def switch(conn: sqlite3.Connection) -> KeyEpoch:
            check_current_key(self._current_key(conn), sequencer.signer, writing=True)
            size, root = self._read_state(conn)
            sequencer.catch_up(size, root, lambda a, b: self._read_entries(conn, a, b))
            final = TreeHead(size, root, sequencer.signer.sign(size, root))
            conn.execute(
                "INSERT OR IGNORE INTO audit_checkpoints (size, origin, root, note)"
                " VALUES (?, ?, ?, ?)",
                (size, sequencer.signer.origin, root, final.checkpoint),
            )
            epoch = KeyEpoch(new_signer.origin, new_signer.verifier.encode(), size, handover(final))
            conn.execute(
                "INSERT INTO audit_keys (from_size, origin, vkey, handover) VALUES (?, ?, ?, ?)",
                (epoch.from_size, epoch.origin, epoch.vkey, epoch.handover),
            )
            conn.execute(
                "INSERT INTO audit_checkpoints (size, origin, root, note) VALUES (?, ?, ?, ?)",
                (size, new_signer.origin, root, new_signer.sign(size, root)),
            )
            return epoch

        epoch = self._locked_write("rotating the SQLite audit log key", switch)
        sequencer.signer = new_signer
        return epoch

    def get(self, audit_id: str) -> tuple[int, AuditRecord] | None:
        """See :meth:`AuditStore.get`."""

        def read(conn: sqlite3.Connection) -> tuple[int, bytes, bytes] | None:
            row = conn.execute(
                "SELECT idx, record, leaf_hash FROM audit_log WHERE audit_id = ?", (audit_id,)
            ).fetchone()
            return None if row is None else (int(row[0]), bytes(row[1]), bytes(row[2]))

        found = self._run("reading the SQLite audit log", read)
        return None if found is None else decode_stored(*found)

    def entries(self, start: int, end: int) -> list[StoredEntry]:
        """See :meth:`AuditStore.entries`."""
        start, end = check_range(start, end)
        rows = self._run(
            "reading the SQLite audit log",
            lambda conn: list(self._read_entries(conn, start, end)),
        )
        return entries_checked(rows)

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
        """See :meth:`AuditStore.search`."""
        validate_search(since, until, limit, before)
        where: list[str] = []
        args: list[object] = []
        for clause, value in (
            ("department = ?", department),
            ("system = ?", system),
            ("outcome = ?", None if outcome is None else Outcome(outcome).value),
            ("time >= ?", since),
            ("time < ?", until),
            ("purpose = ?", purpose),
            # instr, not LIKE: '_' and '%' in a name or text are literal characters here.
            ("instr(datasets, ?) > 0", None if dataset is None else f" {dataset} "),
            ("instr(sql, ?) > 0", text),
            ("idx < ?", before),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        query = "SELECT idx, record, leaf_hash FROM audit_log"
        if where:
            # Only the fixed clauses above are joined; every value is a bound parameter.
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY idx DESC LIMIT ?"
        args.append(limit)

        def read(conn: sqlite3.Connection) -> list[tuple[int, bytes, bytes]]:
            return [
                (int(r[0]), bytes(r[1]), bytes(r[2])) for r in conn.execute(query, args).fetchall()
            ]

        rows = self._run("searching the SQLite audit log", read)
        return [decode_stored(*row) for row in rows]

    def size(self) -> int:
        """See :meth:`AuditStore.size`."""
        return self._run("reading the SQLite audit log size", lambda c: self._read_state(c)[0])

    def check(self) -> None:
        """See :meth:`AuditStore.check`. Reads inside one read transaction, so appends by
        other connections during the check neither block nor confuse it."""

        def rows(conn: sqlite3.Connection) -> Iterator[StoredRow]:
            for r in conn.execute(_SELECT_ROWS):
                yield StoredRow(
                    int(r[0]),
                    SearchColumns(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]),
                    bytes(r[9]),
                    bytes(r[10]),
                )

        def verify(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN")  # deferred: a WAL read snapshot, no write lock
            try:
                size, root = self._read_state(conn)
                verify_rows(rows(conn), state_size=size, state_root=root)
            except AuditUnavailableError as exc:
                raise AuditUnavailableError(
                    exc.detail, internal_detail=exc.internal_detail
                ) from exc
            finally:
                self._rollback_quietly(conn)

        self._run("checking the SQLite audit log", verify)

    def close(self) -> None:
        """See :meth:`AuditStore.close`."""
        self._pool.close()
        self._file_lock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
