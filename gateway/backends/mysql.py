"""MariaDB / MySQL backend: PyMySQL connections in a small thread-safe pool.

- **Read-only.** Every session runs ``SET SESSION TRANSACTION READ ONLY`` when it
  connects; with autocommit each statement is its own read-only transaction, so writes
  and DDL fail with error 1792 (verified on MariaDB 10.11, including CREATE TABLE,
  CREATE TEMPORARY TABLE and CREATE DATABASE). A statement that returns no result set
  (``SET SESSION TRANSACTION READ WRITE`` *is* allowed in a read-only session) is refused
  and its connection closed, so no session change reaches the next query. ``LOCAL
  INFILE`` is off and the multi-statement flag is not set.
- **Not covered here:** ``SELECT ... INTO OUTFILE`` and ``LOAD_FILE()`` work in a
  read-only session for an account with the FILE privilege. The SQL validator rejects
  them; the deployment must also use a SELECT-only account without FILE (and set
  ``secure_file_priv``).
- **Raw text.** ``cursor.execute(sql)`` without arguments: PyMySQL only %-formats when
  arguments are given, so ``LIKE 'a%'`` reaches the server untouched.
- **Time limit**, three layers:

  1. the server's own limit, set as a session variable and only re-sent when it
     changes: MariaDB ``max_statement_time`` (seconds), MySQL ``max_execution_time``
     (milliseconds; the server kind is read from the handshake);
  2. a socket read timeout of limit + 0.5 s, should the server stop answering; the
     connection is then dropped;
  3. the clock: some interrupted MariaDB functions return a value instead of failing
     (``BENCHMARK()`` returns 0; ``SLEEP()`` returns 1 when killed), so a result that
     arrives after the deadline raises QueryTimeoutError instead of being returned.

  Warnings that mean "this result is incomplete" (interrupted query, or a recursive CTE
  cut short by ``max_recursive_iterations``) also fail the query rather than return
  partial rows.
- **Down server** -> BackendUnavailableError within the connect timeout (3 s unless the
  DSN says otherwise). A dead pooled connection is dropped and the query retried once.

DSN: ``mysql://user:password@host:port/database`` (or ``mariadb://``), user and
password percent-encoded; query parameters ``unix_socket``, ``connect_timeout``,
``ssl_ca``, ``ssl_cert``, ``ssl_key``, ``ssl_verify_cert``, ``ssl_verify_identity``
(parsed by :mod:`gateway.dsn`).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

import pymysql
import pymysql.cursors

from gateway.backends.base import (
    BackendResult,
    PoolStats,
    check_limits,
    query_error,
    result_in_time,
    retry_on_fresh_connection,
    sqlstate_category,
    timeout_error,
    unavailable_error,
)
from gateway.backends.pool import ConnectionPool
from gateway.dsn import MySQLParams, parse_dsn
from gateway.errors import BackendUnavailableError, GatewayError

__all__ = ["MySQLBackend", "connect_mysql"]

# Extra time the socket waits beyond the query's limit: long enough that the server's
# own limit (which keeps the connection usable) normally fires first.
_READ_TIMEOUT_GRACE_S = 0.5
_TIMEOUT_ERRORS = frozenset({1969, 3024})  # MariaDB max_statement_time, MySQL max_execution_time
_INTERRUPTED = 1317  # "Query execution was interrupted" (KILL QUERY, or a limit)
#: 1260: a STRING_AGG (GROUP_CONCAT) value was cut at group_concat_max_len.
_INCOMPLETE_RESULT_WARNINGS = frozenset({1260, 1317, 1931, 1969, 3024})
#: Session settings for PostgreSQL's answers: AVG and division keep as many digits as
#: MariaDB allows (its default, 4, made AVG(x) 986.3963 where the others give
#: 986.3963274674828), and STRING_AGG values up to 16 MiB (a longer one fails the query
#: through warning 1260 instead of coming back cut).
_SESSION_SETTINGS = (
    "SET SESSION TRANSACTION READ ONLY",
    "SET SESSION div_precision_increment = 30",
    "SET SESSION group_concat_max_len = 16777216",
)
_CONNECTION_ERRORS = frozenset(
    {
        1040,  # too many connections
        1044,  # access denied to database
        1045,  # access denied for user
        1049,  # unknown database
        1053,  # server shutdown in progress
        1927,  # connection was killed
        2002,  # can't connect through socket
        2003,  # can't connect to server
        2005,  # unknown host
        2006,  # server has gone away
        2013,  # lost connection during query
        2055,  # lost connection (system error)
        4031,  # disconnected by the server because of inactivity
    }
)


class _Connection:
    """A pooled PyMySQL connection and what the gateway knows about its session."""

    __slots__ = ("is_mariadb", "raw", "timeout_s", "uses")

    def __init__(self, raw: pymysql.connections.Connection[Any]) -> None:
        self.raw = raw
        # The handshake's version string, e.g. "5.5.5-10.11.19-MariaDB-0+deb12u1".
        info = str(raw.get_server_info())  # type: ignore[no-untyped-call]  # untyped in the stub
        self.is_mariadb = "mariadb" in info.lower()
        self.timeout_s: float | None = None  # the server-side limit now set on the session
        self.uses = 0

    def set_time_limit(self, timeout_s: float) -> None:
        """Set the server-side limit (one round trip, only when it changes) and the
        socket backstop."""
        if timeout_s != self.timeout_s:
            with self.raw.cursor() as cursor:
                if self.is_mariadb:
                    cursor.execute(f"SET SESSION max_statement_time = {timeout_s:.6f}")
                else:
                    ms = max(1, math.ceil(timeout_s * 1000))
                    cursor.execute(f"SET SESSION max_execution_time = {ms}")
            self.timeout_s = timeout_s
        # PyMySQL reads this private attribute before every packet it receives; there is
        # no public per-query read timeout. Tested in tests/unit/backends.
        self.raw._read_timeout = timeout_s + _READ_TIMEOUT_GRACE_S  # type: ignore[attr-defined]


class MySQLBackend:
    """A MariaDB or MySQL database. Thread-safe. Raises ConfigurationError for a
    malformed DSN; connects lazily."""

    def __init__(self, name: str, dsn: str, *, pool_size: int = 4, max_wait_s: float = 3.0) -> None:
        self.name = name
        self.kind = "mysql"
        self.dialect = "mysql"
        self._params = parse_dsn(dsn, kinds=("mysql",), what=f"backend {name!r}").mysql_params()
        self._max_wait_s = max_wait_s
        self._pool: ConnectionPool[_Connection] = ConnectionPool(
            backend=name, factory=self._connect, dispose=_dispose, max_size=pool_size
        )

    def execute(self, sql: str, *, max_rows: int, timeout_s: float) -> BackendResult:
        """See :class:`gateway.backends.base.Backend`. Raises QueryTimeoutError,
        BackendUnavailableError, BackendQueryError; ValueError for bad limits."""
        check_limits(max_rows, timeout_s)
        started = time.monotonic()
        deadline = started + timeout_s
        for attempt in (1, 2):
            conn = self._pool.acquire(min(timeout_s, self._max_wait_s))
            broken = False
            reused = conn.uses > 0
            conn.uses += 1
            try:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise timeout_error(self.name, timeout_s)
                # Rounded to whole milliseconds so that a steady limit is not re-sent.
                conn.set_time_limit(math.ceil(remaining * 1000) / 1000)
                with conn.raw.cursor() as cursor:
                    cursor.execute(sql)  # no args: PyMySQL leaves '%' alone
                    if cursor.description is None:
                        # Not a query: SET (even SET SESSION TRANSACTION READ WRITE is
                        # allowed in a read-only session), SELECT ... INTO. Refuse it and
                        # retire the session with whatever it changed.
                        broken = True
                        raise query_error(self.name, "statement returned no result set", None)
                    columns = tuple(d[0] for d in cursor.description or ())
                    rows = list(cursor.fetchmany(max_rows)) if max_rows else []
                    warnings = cursor.warning_count
                if warnings:
                    self._check_warnings(conn, timeout_s)
            except pymysql.MySQLError as exc:
                error = self._classify(exc, timeout_s, deadline)
                broken = not conn.raw.open or isinstance(error, BackendUnavailableError)
                if retry_on_fresh_connection(
                    error, stale=reused, attempt=attempt, deadline=deadline
                ):
                    continue  # a stale pooled connection: once more on a fresh one
                raise error from exc
            except GatewayError:
                raise  # raised above on purpose; the connection is fine
            except BaseException:
                broken = True  # state unknown: never hand this connection out again
                raise
            finally:
                self._pool.release(conn, broken=broken)
            # e.g. BENCHMARK() or SLEEP() cut short by the limit return a value.
            return result_in_time(
                self.name, columns, rows, started=started, deadline=deadline, timeout_s=timeout_s
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def ping(self) -> None:
        """Round trip to the server. Raises BackendUnavailableError."""
        self._pool.ping(
            self._max_wait_s, lambda conn: conn.raw.ping(reconnect=False), pymysql.MySQLError
        )

    def pool_stats(self) -> PoolStats:
        """See :class:`gateway.backends.base.ReportsPool`."""
        return self._pool.stats()

    def close(self) -> None:
        self._pool.close()

    def _connect(self) -> _Connection:
        try:
            raw = connect_mysql(self._params)
        except pymysql.MySQLError as exc:
            raise unavailable_error(self.name, "cannot connect", exc) from exc
        try:
            with raw.cursor() as cursor:
                for statement in _SESSION_SETTINGS:
                    cursor.execute(statement)
            return _Connection(raw)
        except pymysql.MySQLError as exc:
            _close_quietly(raw)
            raise unavailable_error(self.name, "cannot set up the session", exc) from exc

    def _check_warnings(self, conn: _Connection, timeout_s: float) -> None:
        # Only paid when the server reported warnings; ordinary ones (a truncated cast)
        # pass, the ones that mean the rows are incomplete fail the query.
        with conn.raw.cursor() as cursor:
            cursor.execute("SHOW WARNINGS")
            codes = {int(row[1]) for row in cursor.fetchall()}
        bad = codes & _INCOMPLETE_RESULT_WARNINGS
        if not bad:
            return
        if bad == {1931}:
            raise query_error(
                self.name,
                "result incomplete: recursion limit reached",
                RuntimeError(f"warnings {sorted(codes)}"),
            )
        if bad == {1260}:
            raise query_error(
                self.name,
                "result incomplete: a STRING_AGG value was cut",
                RuntimeError(f"warnings {sorted(codes)}"),
            )
        raise timeout_error(self.name, timeout_s, RuntimeError(f"warnings {sorted(codes)}"))

    def _classify(self, exc: pymysql.MySQLError, timeout_s: float, deadline: float) -> GatewayError:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        late = time.monotonic() >= deadline
        if code in _TIMEOUT_ERRORS or (code in {_INTERRUPTED, 2013} and late):
            # 2013 after the deadline: the socket backstop gave up on the server.
            return timeout_error(self.name, timeout_s, exc)
        if code in _CONNECTION_ERRORS or isinstance(exc, pymysql.InterfaceError):
            return unavailable_error(self.name, f"error {code}", exc)
        sqlstate = getattr(exc, "sqlstate", None)
        category = sqlstate_category(sqlstate) if sqlstate else "database error"
        # MariaDB's own error numbers identify the engine: they stay internal.
        engine_code = f"error {code}" if code is not None else ""
        return query_error(self.name, category, exc, engine_code=engine_code)


def connect_mysql(
    params: MySQLParams, *, select_database: bool = True
) -> pymysql.connections.Connection[Any]:
    """A PyMySQL connection as the gateway makes them: utf8mb4, autocommit, no
    ``LOCAL INFILE``, no multi-statements, the DSN's TLS and timeouts. The backend makes
    the session read-only on top; the demo loader (``select_database=False``) connects
    before the database exists. Raises ``pymysql.MySQLError``."""
    return pymysql.connect(
        host=params.host,
        port=params.port,
        user=params.user,
        password=params.password,
        database=params.database if select_database else None,
        unix_socket=params.unix_socket,
        ssl=params.ssl,
        charset="utf8mb4",
        autocommit=True,
        local_infile=False,
        connect_timeout=params.connect_timeout_s,
        write_timeout=max(params.connect_timeout_s, 10.0),
        cursorclass=pymysql.cursors.Cursor,
    )


def _close_quietly(raw: pymysql.connections.Connection[Any]) -> None:
    with contextlib.suppress(pymysql.MySQLError):
        raw.close()


def _dispose(conn: _Connection) -> None:
    if conn.raw.open:
        _close_quietly(conn.raw)
