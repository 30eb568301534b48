"""SQLite dialect of the audit store (the default, ``sqlite:<path>``).

Durability: the database runs in WAL mode with ``synchronous=FULL``, so each COMMIT
fsyncs the WAL before it returns; an append returns only after its COMMIT did.

Concurrency: an append is one ``BEGIN IMMEDIATE`` transaction, which takes the file's
write lock (the algorithm is :class:`~gateway.audit.store.sql.SqlAuditStore`'s). Before
that, writers queue: threads on the store's lock, processes on an exclusive ``flock(2)``
of the sidecar file ``<path>-gwlock``. SQLite alone would be correct but unfair: its busy
handler sleeps up to 100 ms between attempts, so a process that commits and begins again
at once keeps the lock while the others sleep through the gaps (measured here: one of two
processes got over 1,200 consecutive appends while the other waited, close to the busy
timeout). A blocked ``flock`` is woken as soon as the holder unlocks. Every wait is
bounded by ``busy_timeout_s``.

Connections: one writer connection, used only by the holder of the store's writer lock
(so it needs no pool: the lock is what serialises it), and a fresh connection for each
read. Opening one costs about 0.1 ms, reads are off the request path (the auditors' API,
``/readyz``, the CLI), and a connection per read shares nothing between threads, leaks
nothing when a thread ends, and - WAL - never blocks the writer or another reader.

The dialect also stats the database path for every operation and fails if the file there
is no longer the one the store opened (deleted, moved, or replaced by something else):
writes to an unlinked file would be acknowledged and then vanish.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from gateway.audit.signing import CheckpointSigner
from gateway.audit.store.protocol import unavailable
from gateway.audit.store.sql import InsertRow, SqlAuditStore
from gateway.errors import ConfigurationError

__all__ = ["SqliteDialect", "open_sqlite_store"]

#: Cosigned checkpoints (schema version 3; also what upgrading a version 2 store runs).
_COSIGNED_DDL: Final[tuple[str, ...]] = (
    "CREATE TABLE audit_cosigned ("
    " seq INTEGER PRIMARY KEY,"
    " size INTEGER NOT NULL CHECK (size >= 0),"
    " origin TEXT NOT NULL,"
    " note TEXT NOT NULL"
    ") STRICT",
    "CREATE INDEX audit_cosigned_size ON audit_cosigned (size)",
    *(
        f"CREATE TRIGGER audit_cosigned_no_{verb.lower()} BEFORE {verb} ON audit_cosigned"
        " BEGIN SELECT RAISE(ABORT, 'audit_cosigned is append-only'); END"
        for verb in ("UPDATE", "DELETE")
    ),
)

#: Archives (schema version 4; also what upgrading runs): the ranges whose record bytes
#: moved to verified archive bundles, and the one UPDATE audit_log allows - removing the
#: bytes (and the searchable copies) of a row an archive covers, its leaf hash kept.
_ARCHIVE_DDL: Final[tuple[str, ...]] = (
    "CREATE TABLE audit_archives ("
    " seq INTEGER PRIMARY KEY,"
    " start INTEGER NOT NULL CHECK (start >= 0),"
    " upto INTEGER NOT NULL CHECK (upto > start),"
    " name TEXT NOT NULL,"
    " sha256 TEXT NOT NULL,"
    " archived_at TEXT NOT NULL,"
    " checkpoint TEXT NOT NULL"
    ") STRICT",
    *(
        f"CREATE TRIGGER audit_archives_no_{verb.lower()} BEFORE {verb} ON audit_archives"
        " BEGIN SELECT RAISE(ABORT, 'audit_archives is append-only'); END"
        for verb in ("UPDATE", "DELETE")
    ),
    "DROP TRIGGER IF EXISTS audit_log_no_update",
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log WHEN NOT ("
    " NEW.idx = OLD.idx AND NEW.audit_id = OLD.audit_id AND NEW.time = OLD.time"
    " AND NEW.outcome = OLD.outcome AND NEW.leaf_hash = OLD.leaf_hash"
    " AND length(NEW.record) = 0 AND NEW.department IS NULL AND NEW.system IS NULL"
    " AND NEW.purpose IS NULL AND NEW.datasets = '' AND NEW.sql IS NULL"
    " AND OLD.idx < (SELECT COALESCE(MAX(upto), 0) FROM audit_archives))"
    " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only (only rows an archive covers"
    " may lose their bytes)'); END",
)

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
    *_COSIGNED_DDL,
    *_ARCHIVE_DDL,
)

_INSERT: Final = (
    "INSERT INTO audit_log (idx, audit_id, time, department, system, purpose, outcome,"
    " datasets, sql, record, leaf_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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


class SqliteDialect:
    """The audit log in one SQLite file, shared safely by threads and processes.

    ``path`` must name a file in an existing directory; the file is created (mode 0600:
    the log holds SQL and officers' names) if it does not exist. Raises
    AuditUnavailableError when it cannot be created.
    """

    begin_write: Final = "BEGIN IMMEDIATE"
    #: Deferred: a WAL read snapshot from the first read on, no write lock.
    begin_snapshot: Final = "BEGIN"
    unbounded: Final[tuple[str, ...]] = ()
    #: The write lock is the file's, taken by BEGIN IMMEDIATE.
    lock_state: Final = ""
    state_id: Final = 0
    ddl: Final = _DDL
    cosigned_ddl: Final = _COSIGNED_DDL
    archive_ddl: Final = _ARCHIVE_DDL

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 5.0) -> None:
        self._path = Path(path).absolute()
        self.where = f"SQLite audit log {self._path}"
        self.lock_timeout_s = busy_timeout_s
        self._uri = f"file:{quote(str(self._path), safe='/')}?mode=rw"
        self._writer: sqlite3.Connection | None = None
        try:
            # Created here, with restrictive permissions, so that connections can use
            # mode=rw: a connection must never silently create a fresh empty log.
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            self._identity = self._stat_identity()
            self._file_lock = _FileLock(self._path.with_name(self._path.name + "-gwlock"))
        except OSError as exc:
            raise unavailable(exc, f"cannot create the SQLite audit log {self._path}") from exc

    # -- statements -----------------------------------------------------------------------

    @staticmethod
    def q(text: str) -> str:
        return text.replace("{t}", "")

    @staticmethod
    def contains(column: str) -> str:
        # instr, not LIKE: '_' and '%' in a name or text are literal characters here.
        return f"instr({column}, ?) > 0"

    @staticmethod
    def to_text(value: str | None) -> str | None:
        return value

    @staticmethod
    def from_text(value: str | None) -> str | None:
        return value

    # -- connections ----------------------------------------------------------------------

    def _stat_identity(self) -> tuple[int, int]:
        st = self._path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{self._path} is not a regular file")
        return (st.st_dev, st.st_ino)

    def _check_identity(self) -> None:
        if self._stat_identity() != self._identity:
            raise OSError(f"{self._path} was replaced or moved while open")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._uri,
            uri=True,
            timeout=self.lock_timeout_s,
            isolation_level=None,  # no implicit transactions: the store issues BEGIN/COMMIT
            check_same_thread=False,  # the writer is used by one lock holder at a time
        )
        try:
            self._check_identity()
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
        return conn

    def acquire(self, *, writer: bool) -> sqlite3.Connection:
        if not writer:
            return self._connect()
        if self._writer is None:
            self._writer = self._connect()
        else:
            self._check_identity()
        return self._writer

    def release(self, conn: sqlite3.Connection, *, writer: bool, ok: bool) -> None:
        if writer and ok:
            return  # kept for the next holder of the writer lock
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        conn.close()
        if writer and conn is self._writer:
            self._writer = None

    @staticmethod
    def is_stale(conn: sqlite3.Connection) -> bool:
        return False  # a local file: nothing dies under a connection and comes back

    def forget_idle(self) -> None:
        pass

    @staticmethod
    def in_transaction(conn: sqlite3.Connection) -> bool:
        return conn.in_transaction

    # -- locks and schema -----------------------------------------------------------------

    @contextlib.contextmanager
    def process_lock(self, deadline: float) -> Iterator[None]:
        try:
            locked = self._file_lock.acquire(max(0.0, deadline - time.monotonic()))
        except OSError as exc:
            raise unavailable(exc, "cannot lock the SQLite audit log") from exc
        if not locked:
            raise unavailable(None, "timed out waiting for the audit writer lock (processes)")
        try:
            yield
        finally:
            self._file_lock.release()

    @contextlib.contextmanager
    def init_transaction(self, conn: sqlite3.Connection) -> Iterator[None]:
        # IMMEDIATE: two processes starting together must not both create the schema.
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("COMMIT")

    @staticmethod
    def tables(conn: sqlite3.Connection) -> set[str]:
        return {
            str(row[0])
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }

    @staticmethod
    def insert_rows(conn: sqlite3.Connection, rows: Sequence[InsertRow]) -> None:
        conn.executemany(
            _INSERT, [(idx, *columns, data, leaf) for idx, columns, data, leaf in rows]
        )

    @staticmethod
    @contextlib.contextmanager
    def stream(conn: sqlite3.Connection, query: Any) -> Iterator[Iterable[Any]]:
        yield conn.execute(query)

    def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(sqlite3.Error):
                writer.close()
        self._file_lock.close()


def open_sqlite_store(
    path: str | os.PathLike[str], signer: CheckpointSigner, *, busy_timeout_s: float = 5.0
) -> SqlAuditStore[sqlite3.Connection]:
    """The audit store in the SQLite file ``path`` (see :class:`SqliteDialect`). Raises
    ConfigurationError for a file with another layout or key, AuditUnavailableError when
    the file cannot be created, opened or initialised."""
    return SqlAuditStore(SqliteDialect(path, busy_timeout_s=busy_timeout_s), signer)
