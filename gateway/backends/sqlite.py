"""SQLite backend (the embedded demo database, small departmental extracts).

Read-only, three times over:

1. the file is opened with ``mode=ro`` (a URI), so the OS-level handle cannot write;
2. ``PRAGMA query_only = ON``;
3. an authorizer allows only SELECT, column reads, function calls and recursive CTEs, so
   ``ATTACH``, ``PRAGMA``, ``BEGIN`` and every kind of write are refused when prepared.

Extension loading stays disabled (the default, never switched on, and ``load_extension``
is also refused by the authorizer); ``trusted_schema = OFF`` keeps views and triggers in a
provider's file from calling functions with side effects; no database may be attached.

Time limit: a progress handler, called every few hundred VM instructions, aborts the
statement once the deadline has passed (SQLITE_INTERRUPT -> QueryTimeoutError); the busy
timeout (waiting on a writer's lock) is set to the same limit.

Connections are pooled; each is created with ``check_same_thread=False`` but used by one
thread at a time.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gateway.backends.base import (
    BackendResult,
    PoolStats,
    check_limits,
    query_error,
    result_in_time,
    timeout_error,
    unavailable_error,
)
from gateway.backends.pool import ConnectionPool
from gateway.errors import BackendUnavailableError, GatewayError

__all__ = ["SQLiteBackend"]

_ALLOWED_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
_DENIED_FUNCTIONS = frozenset({"load_extension"})
# VM instructions between deadline checks: about 10-50 µs of work, so the handler costs
# well under 1 % and a timeout overshoots by far less than a millisecond.
_PROGRESS_INTERVAL = 1000
# Error names (prefixes cover extended codes such as SQLITE_IOERR_READ) that mean the
# file cannot be used right now, rather than that the query is wrong.
_UNAVAILABLE_PREFIXES = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_CANTOPEN",
    "SQLITE_NOTADB",
    "SQLITE_CORRUPT",
    "SQLITE_IOERR",
    "SQLITE_PROTOCOL",
)
_CATEGORIES = MappingProxyType(
    {
        "SQLITE_AUTH": "statement not permitted on a read-only connection",
        "SQLITE_READONLY": "read-only database",
        "SQLITE_ERROR": "SQL error",
        "SQLITE_TOOBIG": "value too big",
        "SQLITE_NOMEM": "out of memory",
        "SQLITE_MISMATCH": "datatype mismatch",
        "SQLITE_CONSTRAINT": "constraint violation",
        "SQLITE_RANGE": "parameter out of range",
    }
)


class _Connection:
    """A pooled sqlite3 connection plus the per-query state its callbacks read."""

    __slots__ = ("busy_timeout_ms", "deadline", "internal", "raw")

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw
        self.deadline = math.inf  # no limit while the gateway runs its own statements
        self.internal = False  # True while the gateway itself sets a PRAGMA
        self.busy_timeout_ms = -1

    def progress(self) -> int:
        # Non-zero aborts the running statement with SQLITE_INTERRUPT.
        return 1 if time.monotonic() >= self.deadline else 0

    def authorize(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None
    ) -> int:
        if self.internal and action == sqlite3.SQLITE_PRAGMA:
            return sqlite3.SQLITE_OK
        if action not in _ALLOWED_ACTIONS:
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    def set_busy_timeout(self, timeout_s: float) -> None:
        ms = max(1, math.ceil(timeout_s * 1000))
        if ms == self.busy_timeout_ms:
            return  # the usual case: every query carries the same limit
        self.internal = True
        try:
            self.raw.execute(f"PRAGMA busy_timeout = {ms}")
        finally:
            self.internal = False
        self.busy_timeout_ms = ms


class SQLiteBackend:
    """A read-only SQLite file. Thread-safe. Connections open lazily, so a missing file
    surfaces as BackendUnavailableError on first use (or ``ping``), not here."""

    def __init__(
        self,
        name: str,
        path: Path,
        *,
        functions: Sequence[tuple[str, int, Callable[..., Any]]] = (),
        pool_size: int = 4,
    ) -> None:
        self.name = name
        self.kind = "sqlite"
        self.dialect = "sqlite"
        self.path = path.absolute()
        self._functions = tuple(functions)
        self._pool: ConnectionPool[_Connection] = ConnectionPool(
            backend=name, factory=self._connect, dispose=_dispose, max_size=pool_size
        )

    def execute(self, sql: str, *, max_rows: int, timeout_s: float) -> BackendResult:
        """See :class:`gateway.backends.base.Backend`. Raises QueryTimeoutError,
        BackendUnavailableError, BackendQueryError; ValueError for bad limits."""
        check_limits(max_rows, timeout_s)
        started = time.monotonic()
        deadline = started + timeout_s
        conn = self._pool.acquire(timeout_s)
        broken = False
        try:
            conn.set_busy_timeout(timeout_s)
            conn.deadline = deadline
            try:
                cursor = conn.raw.execute(sql)
                try:
                    columns = tuple(d[0] for d in cursor.description or ())
                    rows: list[tuple[Any, ...]] = cursor.fetchmany(max_rows) if max_rows else []
                finally:
                    # Resets the statement, which ends its read transaction: an unfinished
                    # SELECT would otherwise keep a shared lock and block writers.
                    cursor.close()
            finally:
                conn.deadline = math.inf
        except (sqlite3.Error, sqlite3.Warning) as exc:
            error = self._classify(exc, timeout_s, deadline)
            broken = isinstance(error, BackendUnavailableError)
            raise error from exc
        except BaseException:
            broken = True  # state unknown (e.g. KeyboardInterrupt mid-fetch): do not reuse
            raise
        finally:
            self._pool.release(conn, broken=broken)
        # The handler only runs between VM steps; never hand out a late result.
        return result_in_time(
            self.name, columns, rows, started=started, deadline=deadline, timeout_s=timeout_s
        )

    def ping(self) -> None:
        """Open (or reuse) a connection and read the schema. Raises
        BackendUnavailableError."""
        self._pool.ping(
            5.0,
            lambda conn: conn.raw.execute("SELECT count(*) FROM sqlite_master").fetchone(),
            sqlite3.Error,
        )

    def pool_stats(self) -> PoolStats:
        """See :class:`gateway.backends.base.ReportsPool`."""
        return self._pool.stats()

    def close(self) -> None:
        self._pool.close()

    def _connect(self) -> _Connection:
        uri = f"{self.path.as_uri()}?mode=ro"
        try:
            raw = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise unavailable_error(self.name, f"cannot open {self.path}", exc) from exc
        try:
            raw.execute("PRAGMA query_only = ON")
            raw.execute("PRAGMA trusted_schema = OFF")
            raw.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
            for fname, nargs, func in self._functions:
                raw.create_function(fname, nargs, func, deterministic=True)
            conn = _Connection(raw)
            # Installed last: the PRAGMAs above would be refused by it.
            raw.set_authorizer(conn.authorize)
            raw.set_progress_handler(conn.progress, _PROGRESS_INTERVAL)
        except sqlite3.Error as exc:
            raw.close()
            raise unavailable_error(self.name, f"cannot set up {self.path}", exc) from exc
        return conn

    def _classify(self, exc: Exception, timeout_s: float, deadline: float) -> GatewayError:
        code = getattr(exc, "sqlite_errorname", None) or ""
        if code == "SQLITE_INTERRUPT" and time.monotonic() >= deadline:
            return timeout_error(self.name, timeout_s, exc)
        if code.startswith(_UNAVAILABLE_PREFIXES):
            return unavailable_error(self.name, code, exc)
        if not code:
            # ProgrammingError and friends come from the sqlite3 module, not the engine,
            # e.g. "You can only execute one statement at a time."
            return query_error(self.name, "statement rejected by the driver", exc)
        base = next((k for k in _CATEGORIES if code.startswith(k)), None)
        # The SQLITE_* code names the engine: it stays internal.
        category = _CATEGORIES[base] if base else "database error"
        return query_error(self.name, category, exc, engine_code=code)


def _dispose(conn: _Connection) -> None:
    conn.raw.close()
