"""DuckDB backend (analytical extracts in a DuckDB file).

- **Read-only and sealed.** The file is opened with ``read_only=True`` and
  ``enable_external_access=false`` (no files, URLs, ATTACH, COPY, INSTALL/LOAD: verified
  to raise a permission error for ``read_csv('/etc/passwd')``; a quoted path used as a
  table name is not scanned either), extension auto-install/auto-load off, and
  ``lock_configuration=true`` so no statement can switch any of that back on.
- **Time limit.** A per-backend watchdog thread calls ``interrupt()`` on the cursor at
  the deadline (DuckDB raises InterruptException -> QueryTimeoutError); a result that
  arrives after the deadline is discarded.
- **One SELECT.** The text is parsed first and must hold exactly one SELECT statement
  (DuckDB's ``execute`` would otherwise run every statement in it).
- **Concurrency.** One database connection, opened on first use; each query runs on a
  cursor (DuckDB's per-thread duplicate connection) taken from a small pool, so a cursor
  is only ever used by one thread at a time and the number of concurrent queries is
  bounded by ``pool_size``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

import duckdb

from gateway.backends.base import (
    BackendResult,
    PoolStats,
    Watchdog,
    check_limits,
    query_error,
    result_in_time,
    timeout_error,
    unavailable_error,
    value_error,
)
from gateway.backends.pool import ConnectionPool
from gateway.errors import GatewayError

__all__ = ["DUCKDB_CONFIG", "DuckDBBackend"]

#: Options the database is opened with. ``lock_configuration`` freezes the others: no
#: ``SET`` statement can change them afterwards.
DUCKDB_CONFIG = MappingProxyType(
    {
        "enable_external_access": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "lock_configuration": True,
    }
)

# Consumer-safe names for DuckDB's exception classes (the class, never the message).
_CATEGORIES = MappingProxyType(
    {
        "ConversionException": "data conversion error",
        "OutOfRangeException": "value out of range",
        "BinderException": "binder error",
        "CatalogException": "unknown object",
        "ParserException": "syntax error",
        "PermissionException": "permission denied",
        "InvalidInputException": "invalid input",
        "NotImplementedException": "not implemented",
        "OutOfMemoryException": "out of memory",
        "ConstraintException": "constraint violation",
        "TypeMismatchException": "type mismatch",
        "DependencyException": "dependency error",
        "SyntaxException": "syntax error",
        "SequenceException": "sequence error",
        "InternalException": "internal error",
        "IOException": "I/O error",
    }
)


class DuckDBBackend:
    """A read-only DuckDB file. Thread-safe. Opens on first use: a missing or locked
    file surfaces as BackendUnavailableError then (or on ``ping``)."""

    def __init__(
        self, name: str, path: Path, *, pool_size: int = 4, max_wait_s: float = 3.0
    ) -> None:
        self.name = name
        self.kind = "duckdb"
        self.dialect = "duckdb"
        self.path = path.absolute()
        self._max_wait_s = max_wait_s
        self._lock = threading.Lock()
        self._database: duckdb.DuckDBPyConnection | None = None
        self._closed = False
        self._watchdog = Watchdog(f"gateway-duckdb-{name}")
        self._pool: ConnectionPool[duckdb.DuckDBPyConnection] = ConnectionPool(
            backend=name, factory=self._cursor, dispose=_dispose, max_size=pool_size
        )

    def execute(self, sql: str, *, max_rows: int, timeout_s: float) -> BackendResult:
        """See :class:`gateway.backends.base.Backend`. Raises QueryTimeoutError,
        BackendUnavailableError, BackendQueryError; ValueError for bad limits."""
        check_limits(max_rows, timeout_s)
        started = time.monotonic()
        deadline = started + timeout_s
        cursor = self._pool.acquire(min(timeout_s, self._max_wait_s))
        broken = False
        interrupted = False
        try:
            alarm = self._watchdog.schedule(deadline, cursor.interrupt)
            try:
                cursor.execute(self._single_select(cursor, sql))
                columns = tuple(d[0] for d in cursor.description or ())
                rows: list[tuple[Any, ...]] = cursor.fetchmany(max_rows) if max_rows else []
            finally:
                # Waits for an interrupt in progress, so the cursor is not reused under it.
                interrupted = alarm.cancel()
        except duckdb.Error as exc:
            if interrupted or isinstance(exc, duckdb.InterruptException):
                raise timeout_error(self.name, timeout_s, exc) from exc
            raise self._query_error(exc) from exc
        except GatewayError:
            raise  # raised on purpose above; the cursor is fine
        except BaseException:
            broken = True
            raise
        finally:
            self._pool.release(cursor, broken=broken)
        return result_in_time(
            self.name,
            columns,
            rows,
            started=started,
            deadline=deadline,
            timeout_s=timeout_s,
            interrupted=interrupted,
        )

    def ping(self) -> None:
        """Run ``SELECT 1``. Raises BackendUnavailableError."""
        self._pool.ping(
            self._max_wait_s, lambda cursor: cursor.execute("SELECT 1").fetchall(), duckdb.Error
        )

    def pool_stats(self) -> PoolStats:
        """See :class:`gateway.backends.base.ReportsPool`."""
        return self._pool.stats()

    def close(self) -> None:
        self._pool.close()
        self._watchdog.close()
        with self._lock:
            self._closed = True
            database, self._database = self._database, None
        if database is not None:
            database.close()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._closed:
                raise unavailable_error(self.name, "backend closed")
            if self._database is None:
                try:
                    self._database = duckdb.connect(
                        str(self.path), read_only=True, config=dict(DUCKDB_CONFIG)
                    )
                except duckdb.Error as exc:
                    # Missing file, lock held by a writer, not a DuckDB file, ...
                    raise unavailable_error(self.name, f"cannot open {self.path}", exc) from exc
            return self._database.cursor()

    def _single_select(self, cursor: duckdb.DuckDBPyConnection, sql: str) -> duckdb.Statement:
        # DuckDB's execute() runs every statement in the string and returns the last
        # result; parse first and accept exactly one SELECT.
        statements = cursor.extract_statements(sql)
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            kinds = ", ".join(str(s.type) for s in statements)
            raise query_error(
                self.name,
                "only a single SELECT statement is accepted",
                RuntimeError(f"statement types: {kinds}"),
            )
        return statements[0]

    def _query_error(self, exc: duckdb.Error) -> GatewayError:
        category = _CATEGORIES.get(type(exc).__name__, "database error")
        if isinstance(exc, duckdb.ConversionException) or (
            # A binder error about types: values compared or combined across types
            # (the allow-list already refused unknown functions and names).
            isinstance(exc, duckdb.BinderException) and "type" in str(exc).lower()
        ):
            return value_error(self.name, category, exc)
        return query_error(self.name, category, exc)


def _dispose(cursor: duckdb.DuckDBPyConnection) -> None:
    cursor.close()
