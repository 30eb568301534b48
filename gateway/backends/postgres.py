"""PostgreSQL backend: psycopg 3 and a psycopg_pool connection pool.

One query is one network round trip, sent as a pipeline::

    BEGIN READ ONLY; SET LOCAL statement_timeout = <ms>; <sql>; ROLLBACK

- **Read-only** twice: every connection starts with ``default_transaction_read_only=on``
  and each query runs in an explicit ``READ ONLY`` transaction (SQLSTATE 25006 on a
  write). Give the gateway a role with SELECT privileges only as well.
- **No lasting session changes.** The transaction is rolled back, which also undoes
  session settings the statement changed (``set_config(..., false)``, ``SET``); a
  statement that returns no result set is refused and its connection closed.
- **One statement.** Pipeline mode uses the extended query protocol, which refuses a
  string holding several statements; the SQL is sent without parameters, so psycopg
  never looks at ``%`` in it.
- **Time limit** ``SET LOCAL statement_timeout``, scoped to the transaction so it cannot
  leak to the next user of the connection; SQLSTATE 57014 -> QueryTimeoutError. The wait
  for a connection counts against the same limit.
- **Down server.** The pool opens lazily and connects on demand; no connection within
  the wait raises BackendUnavailableError, never a hang. A pooled connection found dead
  (server restarted) is dropped and the query retried once on a fresh one; it is
  read-only, so running it again is harmless.
- **DSN.** A libpq URI (:mod:`gateway.dsn`); its optional ``?schema=`` becomes the
  session's ``search_path``, so the catalog's unqualified table names resolve there.
- Server-side prepared statements are off (``prepare_threshold=None``) so that a
  transaction-pooling PgBouncer in front of the database works.

Not covered here: a superuser (or a member of ``pg_write_server_files`` /
``pg_read_server_files``) can still ``COPY ... TO '<file>'`` or call ``pg_read_file()``
inside a read-only transaction. The SQL validator rejects both; the deployment must also
connect as a least-privilege role.

Result rows are fetched in full by libpq before ``max_rows`` are taken; the rewriter's
LIMIT (``max_rows`` at most) is what bounds the transfer.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, TypeAlias

import psycopg
import psycopg_pool
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from gateway.backends.base import (
    VALUE_SQLSTATES,
    BackendResult,
    PoolStats,
    check_limits,
    query_error,
    result_in_time,
    retry_on_fresh_connection,
    sqlstate_category,
    timeout_error,
    unavailable_error,
    value_error,
)
from gateway.dsn import Dsn, parse_dsn
from gateway.errors import ConfigurationError, GatewayError

__all__ = ["PostgresBackend", "postgres_connect_args"]

# Connection-level SQLSTATEs: the query may well be fine, the server or session is not.
_UNAVAILABLE_SQLSTATES = frozenset(
    {
        "25P03",  # idle_in_transaction_session_timeout ended the session
        "28000",  # invalid authorization
        "28P01",  # invalid password
        "3D000",  # database does not exist
        "53300",  # too many connections
        "57P01",  # admin shutdown
        "57P02",  # crash shutdown
        "57P03",  # cannot connect now (starting up, recovery)
        "57P05",  # idle_session_timeout
    }
)
_QUERY_CANCELED = "57014"
# Sessions are closed by the server if they sit in a transaction this long (ms): a
# backstop against a connection leaked mid-transaction holding locks.
_SESSION_OPTIONS = (
    "-c default_transaction_read_only=on -c idle_in_transaction_session_timeout=60000"
)

Connection: TypeAlias = psycopg.Connection[tuple[Any, ...]]


def postgres_connect_args(
    dsn: Dsn, *, connect_timeout_s: float, read_only: bool
) -> tuple[str, dict[str, Any]]:
    """``(conninfo, keyword arguments)`` for ``psycopg.connect`` (or a pool) as the
    gateway connects: autocommit, named ``gateway`` unless the DSN names itself, the
    DSN's ``?schema=`` as the session's ``search_path``, a connect timeout unless the DSN
    sets one, and with ``read_only`` the read-only session defaults of the backend. The
    DSN's own ``options`` are kept. Raises ConfigurationError for a malformed URI
    (without quoting it: psycopg's message may hold the password)."""
    conninfo, schema = dsn.postgres_conninfo()
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error:
        raise ConfigurationError(f"{dsn.what}: malformed PostgreSQL DSN") from None
    options = [str(params.get("options") or "")]
    if schema is not None:
        options.append(f"-c search_path={schema}")  # a plain identifier (gateway.dsn)
    if read_only:
        options.append(_SESSION_OPTIONS)
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "application_name": params.get("application_name") or "gateway",
        "options": " ".join(o for o in options if o),
        "connect_timeout": params.get("connect_timeout") or max(2, math.ceil(connect_timeout_s)),
    }
    return conninfo, kwargs


class PostgresBackend:
    """A PostgreSQL database reached through a DSN. Thread-safe.

    ``connect_timeout_s`` applies when the DSN sets none; ``max_wait_s`` caps how long a
    query waits for a pooled connection (less if its own time limit is shorter).
    Raises ConfigurationError for a malformed DSN.
    """

    def __init__(
        self,
        name: str,
        dsn: str,
        *,
        pool_size: int = 4,
        connect_timeout_s: float = 3.0,
        max_wait_s: float = 3.0,
    ) -> None:
        self.name = name
        self.kind = "postgres"
        self.dialect = "postgres"
        parsed = parse_dsn(dsn, kinds=("postgres",), what=f"backend {name!r}")
        conninfo, kwargs = postgres_connect_args(
            parsed, connect_timeout_s=connect_timeout_s, read_only=True
        )
        # Autocommit (set above): transactions are explicit, inside the pipeline.
        kwargs["prepare_threshold"] = None
        self._max_wait_s = max_wait_s
        self._pool: psycopg_pool.ConnectionPool[Connection] = psycopg_pool.ConnectionPool(
            conninfo,
            min_size=0,
            max_size=pool_size,
            open=False,
            kwargs=kwargs,
            name=f"gateway-{name}",
            timeout=max_wait_s,
        )
        self._lock = threading.Lock()
        self._opened = False
        self._closed = False

    def execute(self, sql: str, *, max_rows: int, timeout_s: float) -> BackendResult:
        """See :class:`gateway.backends.base.Backend`. Raises QueryTimeoutError,
        BackendUnavailableError, BackendQueryError; ValueError for bad limits."""
        check_limits(max_rows, timeout_s)
        started = time.monotonic()
        deadline = started + timeout_s
        for attempt in (1, 2):
            conn = self._getconn(deadline)
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise timeout_error(self.name, timeout_s)
                cursor = conn.cursor()
                control = conn.cursor()  # the gateway's own statements around the query
                limit_ms = max(1, math.ceil(remaining * 1000))
                with conn.pipeline():
                    control.execute("BEGIN READ ONLY")
                    control.execute(f"SET LOCAL statement_timeout = {limit_ms}")
                    cursor.execute(sql)
                    # ROLLBACK, not COMMIT: a read-only transaction has nothing to keep,
                    # and it undoes any session setting the statement may have changed
                    # (SET, set_config(..., false)) before the next user of the connection.
                    control.execute("ROLLBACK")
                if cursor.description is None:
                    # Not a query (SET, PREPARE, COPY ... TO file): refuse it, and retire
                    # the session with whatever it changed that ROLLBACK cannot undo.
                    conn.close()
                    raise query_error(self.name, "statement returned no result set", None)
                columns = tuple(col.name for col in cursor.description or ())
                rows = cursor.fetchmany(max_rows) if max_rows else []
            except psycopg.Error as exc:
                error = self._classify(exc, timeout_s, deadline)
                dead = conn.closed or conn.broken
                if retry_on_fresh_connection(error, stale=dead, attempt=attempt, deadline=deadline):
                    continue  # a stale pooled connection: once more on a fresh one
                raise error from exc
            finally:
                self._putconn(conn)
            return result_in_time(
                self.name, columns, rows, started=started, deadline=deadline, timeout_s=timeout_s
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def ping(self) -> None:
        """Run ``SELECT 1``. Raises BackendUnavailableError."""
        conn = self._getconn(time.monotonic() + self._max_wait_s)
        try:
            conn.execute("SELECT 1").fetchall()
        except psycopg.Error as exc:
            raise unavailable_error(self.name, "ping failed", exc) from exc
        finally:
            self._putconn(conn)

    def pool_stats(self) -> PoolStats:
        """See :class:`gateway.backends.base.ReportsPool` (psycopg_pool's own counters)."""
        stats = self._pool.get_stats()
        size = int(stats.get("pool_size", 0))
        return PoolStats(
            size=size,
            in_use=max(0, size - int(stats.get("pool_available", 0))),
            max_size=int(stats.get("pool_max", self._pool.max_size)),
        )

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            opened = self._opened
        if opened:
            self._pool.close(timeout=5.0)

    def _getconn(self, deadline: float) -> Connection:
        with self._lock:
            if self._closed:
                raise unavailable_error(self.name, "backend closed")
            if not self._opened:
                # Starts the pool's workers; connections are made on demand.
                self._pool.open(wait=False)
                self._opened = True
        wait = min(deadline - time.monotonic(), self._max_wait_s)
        try:
            return self._pool.getconn(timeout=max(wait, 0.001))
        except psycopg_pool.PoolTimeout as exc:
            raise unavailable_error(
                self.name, f"no connection within {wait:.2f} s (server down or pool busy)", exc
            ) from exc
        except psycopg_pool.PoolClosed as exc:
            raise unavailable_error(self.name, "backend closed", exc) from exc

    def _putconn(self, conn: Connection) -> None:
        if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
            try:
                conn.rollback()  # after an error inside the pipeline's transaction
            except psycopg.Error:
                conn.close()  # broken: the pool discards closed connections
        self._pool.putconn(conn)

    def _classify(self, exc: psycopg.Error, timeout_s: float, deadline: float) -> GatewayError:
        sqlstate = exc.sqlstate
        if sqlstate == _QUERY_CANCELED:
            if time.monotonic() >= deadline:
                return timeout_error(self.name, timeout_s, exc)
            return query_error(self.name, "query cancelled by the server", exc)
        if (
            sqlstate in _UNAVAILABLE_SQLSTATES
            or (sqlstate or "").startswith("08")
            or (
                sqlstate is None
                and isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
            )
        ):
            return unavailable_error(self.name, sqlstate or "connection failed", exc)
        if sqlstate is None and isinstance(exc, psycopg.DataError):
            # Raised by psycopg itself, e.g. a date PostgreSQL has and Python has not.
            return query_error(self.name, "value not representable by the driver", exc)
        if sqlstate in VALUE_SQLSTATES:
            return value_error(self.name, sqlstate_category(sqlstate), exc)
        return query_error(self.name, sqlstate_category(sqlstate), exc)
