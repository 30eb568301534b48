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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Self, TypeVar
from urllib.parse import quote

from gateway.audit.record import AuditRecord, Outcome, leaf_hash_of
from gateway.audit.store import (
    META_ROWS,
    SCHEMA_VERSION,
    ConnectionPool,
    StoredRow,
    decode_stored,
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
    " size INTEGER NOT NULL CHECK (size >= 0)"
    ") STRICT",
    "CREATE TABLE audit_log ("
    " idx INTEGER PRIMARY KEY CHECK (idx >= 0),"
    " audit_id TEXT NOT NULL UNIQUE,"
    " time TEXT NOT NULL,"
    " department TEXT,"
    " system TEXT,"
    " outcome TEXT NOT NULL CHECK (outcome IN ('served', 'refused', 'failed')),"
    " record BLOB NOT NULL,"
    " leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32)"
    ") STRICT",
    "CREATE INDEX audit_log_time ON audit_log (time)",
    "CREATE INDEX audit_log_department ON audit_log (department, idx)",
    "CREATE INDEX audit_log_system ON audit_log (system, idx)",
    # Append-only: a stray UPDATE/DELETE (a bug, a careless operator) is refused by the
    # database itself; someone who drops the triggers is caught by check() and, later,
    # by the signed checkpoints.
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log"
    " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log"
    " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "INSERT INTO audit_state (id, size) VALUES (0, 0)",
)

_TABLES: Final = frozenset({"audit_meta", "audit_state", "audit_log"})

_INSERT: Final = (
    "INSERT INTO audit_log (idx, audit_id, time, department, system, outcome, record,"
    " leaf_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_ROWS: Final = (
    "SELECT idx, audit_id, time, department, system, outcome, record, leaf_hash"
    " FROM audit_log ORDER BY idx"
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
        self, path: str | os.PathLike[str], *, busy_timeout_s: float = 5.0, max_idle: int = 4
    ) -> None:
        text = os.fspath(path)
        if not text or text == ":memory:" or text.startswith("file:"):
            raise ConfigurationError(
                "sqlite audit location needs a file path (use 'memory:' for a test store)"
            )
        self._path = Path(text).absolute()
        self._uri = f"file:{quote(str(self._path), safe='/')}?mode=rw"
        self._busy_timeout_s = busy_timeout_s
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
            elif ours != _TABLES:
                raise ConfigurationError(
                    f"SQLite audit log {self._path} is incomplete (has {sorted(ours)}); "
                    "refusing to use it"
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
            conn.execute("COMMIT")
        except BaseException:
            self._rollback_quietly(conn)
            raise

    # -- AuditStore --------------------------------------------------------------------

    def append(self, record: AuditRecord) -> int:
        """See :meth:`AuditStore.append`: durable (WAL fsync'd) when it returns.

        Raises AuditUnavailableError on any failure, including a duplicate ``audit_id``,
        a busy database beyond ``busy_timeout_s``, a replaced file, or an ``audit_state``
        that disagrees with the rows (a truncated log: the store then refuses to append
        until an operator has investigated).
        """
        try:
            data = record.canonical_bytes()
        except (TypeError, ValueError) as exc:
            raise unavailable(exc, "audit record cannot be encoded") from exc
        leaf = leaf_hash_of(data)
        params = (
            record.audit_id,
            record.time,
            record.department,
            record.system,
            record.outcome.value,
            data,
            leaf,
        )

        def insert(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT coalesce(max(idx) + 1, 0) FROM audit_log").fetchone()
                idx = int(row[0])
                # Compare-and-swap: the stored size must be exactly the next index, or
                # the log and its size disagree (rows removed behind our back).
                cur = conn.execute(
                    "UPDATE audit_state SET size = ? WHERE id = 0 AND size = ?", (idx + 1, idx)
                )
                if cur.rowcount != 1:
                    raise unavailable(
                        None, f"audit_state.size disagrees with next index {idx}; run check"
                    )
                conn.execute(_INSERT, (idx, *params))
                conn.execute("COMMIT")
            except BaseException:
                self._rollback_quietly(conn)
                raise
            return idx

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
                return self._run("appending to the SQLite audit log", insert)
            finally:
                self._file_lock.release()
        finally:
            self._write_lock.release()

    def get(self, audit_id: str) -> tuple[int, AuditRecord] | None:
        """See :meth:`AuditStore.get`."""

        def read(conn: sqlite3.Connection) -> tuple[int, bytes, bytes] | None:
            row = conn.execute(
                "SELECT idx, record, leaf_hash FROM audit_log WHERE audit_id = ?", (audit_id,)
            ).fetchone()
            return None if row is None else (int(row[0]), bytes(row[1]), bytes(row[2]))

        found = self._run("reading the SQLite audit log", read)
        return None if found is None else decode_stored(*found)

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
        """See :meth:`AuditStore.search`."""
        validate_search(since, until, limit)
        where: list[str] = []
        args: list[object] = []
        for clause, value in (
            ("department = ?", department),
            ("system = ?", system),
            ("outcome = ?", None if outcome is None else Outcome(outcome).value),
            ("time >= ?", since),
            ("time < ?", until),
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

        def read(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT size FROM audit_state WHERE id = 0").fetchone()
            if row is None:
                raise unavailable(None, "audit_state row is missing")
            return int(row[0])

        return self._run("reading the SQLite audit log size", read)

    def check(self) -> None:
        """See :meth:`AuditStore.check`. Reads inside one read transaction, so appends by
        other connections during the check neither block nor confuse it."""

        def rows(conn: sqlite3.Connection) -> Iterator[StoredRow]:
            for r in conn.execute(_SELECT_ROWS):
                yield StoredRow(int(r[0]), r[1], r[2], r[3], r[4], r[5], bytes(r[6]), bytes(r[7]))

        def verify(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN")  # deferred: a WAL read snapshot, no write lock
            try:
                state = conn.execute("SELECT size FROM audit_state WHERE id = 0").fetchone()
                if state is None:
                    raise AuditUnavailableError(
                        "audit_state row is missing", internal_detail="audit_state row is missing"
                    )
                verify_rows(rows(conn), state_size=int(state[0]))
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
