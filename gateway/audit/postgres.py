"""PostgreSQL :class:`~gateway.audit.store.AuditStore` (``postgresql://...?schema=...``).

Durability: every session sets ``synchronous_commit = on``, so COMMIT returns only after
the WAL record is flushed on the server (and on synchronous standbys, if configured).

Concurrency: an append is one transaction::

    BEGIN
    UPDATE audit_state SET size = size + 1 RETURNING size - 1      -- idx; row lock held
    INSERT INTO audit_log ... SELECT idx, ...
        WHERE (SELECT coalesce(max(idx) + 1, 0) FROM audit_log) = idx
    COMMIT

The single ``audit_state`` row is the sequencer: its row lock queues concurrent appenders
(of any process) until the holder commits or rolls back, and a rollback undoes the
increment too, so indices stay contiguous. Under READ COMMITTED the INSERT takes a fresh
snapshot after the lock was granted, so its guard sees every committed row and refuses to
write if ``audit_state`` and the rows disagree (a truncated log).

Connections come from a small pool. A pooled connection found dead (a server restart) is
retried once on a fresh connection, but only when the failure happened before COMMIT was
sent: until then the server cannot have committed anything. A failure during COMMIT is
reported as unavailable and never retried (the outcome is unknown; at worst a record
exists for a response that was not sent, never the reverse).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import Any, Final, Self, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

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

__all__ = ["PostgresAuditStore"]

_T = TypeVar("_T")
_Conn = psycopg.Connection[tuple[Any, ...]]

_SCHEMA_RE: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_TABLES: Final = frozenset({"audit_meta", "audit_state", "audit_log"})
#: First key of the advisory lock that serialises schema creation (ASCII "gwau").
_INIT_LOCK_KEY: Final = 0x67776175

_DDL: Final[tuple[str, ...]] = (
    "CREATE TABLE {s}.audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE {s}.audit_state ("
    " id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),"
    " size BIGINT NOT NULL CHECK (size >= 0))",
    # COLLATE "C": times and ids compare bytewise, as their fixed-width text requires,
    # whatever the database's locale.
    "CREATE TABLE {s}.audit_log ("
    " idx BIGINT PRIMARY KEY CHECK (idx >= 0),"
    ' audit_id TEXT COLLATE "C" NOT NULL UNIQUE,'
    ' time TEXT COLLATE "C" NOT NULL,'
    " department TEXT,"
    " system TEXT,"
    " outcome TEXT NOT NULL CHECK (outcome IN ('served', 'refused', 'failed')),"
    " record BYTEA NOT NULL,"
    " leaf_hash BYTEA NOT NULL CHECK (octet_length(leaf_hash) = 32))",
    "CREATE INDEX audit_log_time ON {s}.audit_log (time)",
    "CREATE INDEX audit_log_department ON {s}.audit_log (department, idx)",
    "CREATE INDEX audit_log_system ON {s}.audit_log (system, idx)",
    # Append-only, enforced by the database for every role that does not disable
    # triggers; check() and the future signed checkpoints catch those who do.
    "CREATE FUNCTION {s}.audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    " $$BEGIN RAISE EXCEPTION 'audit_log is append-only'; END$$",
    "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON {s}.audit_log"
    " FOR EACH ROW EXECUTE FUNCTION {s}.audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON {s}.audit_log"
    " FOR EACH STATEMENT EXECUTE FUNCTION {s}.audit_log_append_only()",
    "INSERT INTO {s}.audit_state (id, size) VALUES (TRUE, 0)",
)


class _CommitOutcomeUnknownError(Exception):
    """COMMIT was sent but its result never arrived: never retry."""


class PostgresAuditStore:
    """Audit store in a PostgreSQL schema, shared safely by threads and processes.

    ``conninfo`` is any libpq connection string; ``schema`` (default ``public``) must be a
    plain lowercase identifier and is created with the tables if missing. Raises
    ConfigurationError for a bad schema name or an existing store with another schema
    version, AuditUnavailableError when the server cannot be reached or initialised.

    Open one store per process, after any ``fork()``: a store used in a process other than
    the one that opened it raises AuditUnavailableError (libpq connections must not be
    shared across fork).
    """

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "public",
        connect_timeout_s: int = 5,
        lock_timeout_ms: int = 5_000,
        statement_timeout_ms: int = 30_000,
        max_idle: int = 8,
    ) -> None:
        if _SCHEMA_RE.fullmatch(schema) is None:
            raise ConfigurationError(
                f"audit schema {schema!r} must be a lowercase identifier ([a-z_][a-z0-9_]*)"
            )
        self._conninfo = conninfo
        self._schema = schema
        self._pid = os.getpid()
        self._connect_timeout_s = connect_timeout_s
        self._lock_timeout_ms = lock_timeout_ms
        self._statement_timeout_ms = statement_timeout_ms
        s = sql.Identifier(schema)

        def q(text: str) -> sql.Composed:
            return sql.SQL(text).format(s=s)

        self._q = q
        self._sql_advance = q(
            "UPDATE {s}.audit_state SET size = size + 1 WHERE id RETURNING size - 1"
        )
        self._sql_insert = q(
            "INSERT INTO {s}.audit_log"
            " (idx, audit_id, time, department, system, outcome, record, leaf_hash)"
            " SELECT %(idx)s::bigint, %(audit_id)s::text, %(time)s::text,"
            " %(department)s::text, %(system)s::text, %(outcome)s::text,"
            " %(record)s::bytea, %(leaf_hash)s::bytea"
            " WHERE (SELECT coalesce(max(idx) + 1, 0) FROM {s}.audit_log) = %(idx)s::bigint"
        )
        self._sql_get = q("SELECT idx, record, leaf_hash FROM {s}.audit_log WHERE audit_id = %s")
        self._sql_size = q("SELECT size FROM {s}.audit_state WHERE id")
        self._sql_rows = q(
            "SELECT idx, audit_id, time, department, system, outcome, record, leaf_hash"
            " FROM {s}.audit_log ORDER BY idx"
        )
        self._pool: ConnectionPool[_Conn] = ConnectionPool(
            self._connect, lambda c: c.close(), max_idle=max_idle
        )
        try:
            self._run("initialising the PostgreSQL audit log", self._initialise)
        except BaseException:
            self._pool.close()
            raise

    @classmethod
    def from_location(cls, location: str) -> PostgresAuditStore:
        """Open a store from a ``postgresql://`` URL whose optional ``schema`` query
        parameter names the schema (it is removed before the URL reaches libpq, which
        would reject it). Raises as the constructor does, and ConfigurationError for a
        repeated ``schema`` parameter."""
        parts = urlsplit(location)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        schemas = [value for key, value in pairs if key == "schema"]
        if len(schemas) > 1:
            raise ConfigurationError("audit location has more than one 'schema' parameter")
        rest = [(key, value) for key, value in pairs if key != "schema"]
        conninfo = urlunsplit(parts._replace(query=urlencode(rest, quote_via=quote)))
        return cls(conninfo, schema=schemas[0] if schemas else "public")

    # -- connections -------------------------------------------------------------------

    def _connect(self) -> _Conn:
        conn = psycopg.connect(
            self._conninfo,
            autocommit=True,  # transactions are explicit BEGIN ... COMMIT
            connect_timeout=self._connect_timeout_s,
            application_name="gateway-audit",
        )
        try:
            # synchronous_commit=on whatever the server default: an acknowledged append
            # must be on disk. The timeouts bound how long a request can hang on the log.
            conn.execute(
                "SELECT set_config('synchronous_commit', 'on', false),"
                " set_config('lock_timeout', %s, false),"
                " set_config('statement_timeout', %s, false)",
                (f"{self._lock_timeout_ms}ms", f"{self._statement_timeout_ms}ms"),
            )
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _rollback_quietly(conn: _Conn) -> None:
        if conn.closed or conn.broken:
            return
        try:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
        except psycopg.Error:
            pass  # the connection is discarded anyway

    def _run(self, what: str, fn: Callable[[_Conn], _T]) -> _T:
        """Run ``fn`` on a pooled connection, retrying once on a fresh connection when a
        reused one turns out to be dead and ``fn`` had not sent COMMIT.

        AuditUnavailableError and ConfigurationError pass through; any other exception
        becomes AuditUnavailableError. A connection that saw an error is not reused.
        """
        if os.getpid() != self._pid:
            # libpq connections must not be shared across fork(); open the store in
            # each worker process instead.
            raise unavailable(None, "audit store was opened before fork(); open it per process")
        for attempt in (1, 2):
            try:
                conn, reused = self._pool.acquire()
            except (AuditUnavailableError, ConfigurationError):
                raise
            except Exception as exc:
                raise unavailable(
                    exc, f"cannot connect to the PostgreSQL audit log (schema {self._schema})"
                ) from exc
            ok = False
            try:
                result = fn(conn)
                ok = True
                return result
            except (AuditUnavailableError, ConfigurationError):
                raise
            except Exception as exc:
                stale = reused and (conn.broken or conn.closed)
                if stale and attempt == 1 and not isinstance(exc, _CommitOutcomeUnknownError):
                    # Its idle siblings most likely died with it (server restart).
                    self._pool.close_idle()
                    continue
                raise unavailable(exc, f"{what} (schema {self._schema})") from exc
            finally:
                if ok:
                    self._pool.release(conn)
                else:
                    self._rollback_quietly(conn)
                    self._pool.discard(conn)
        raise AssertionError("unreachable")  # pragma: no cover

    def _initialise(self, conn: _Conn) -> None:
        with conn.transaction():
            # Two processes starting together must not both create the schema.
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_INIT_LOCK_KEY, self._schema)
            )
            if (
                conn.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self._schema,)
                ).fetchone()
                is None
            ):
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self._schema)))
            present = {
                str(row[0])
                for row in conn.execute(
                    "SELECT c.relname FROM pg_class c"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND c.relname = ANY(%s)",
                    (self._schema, sorted(_TABLES)),
                )
            }
            if not present:
                for statement in _DDL:
                    conn.execute(self._q(statement))
                with conn.cursor() as cur:
                    cur.executemany(
                        self._q("INSERT INTO {s}.audit_meta (key, value) VALUES (%s, %s)"),
                        META_ROWS,
                    )
            elif present != _TABLES:
                raise ConfigurationError(
                    f"PostgreSQL audit schema {self._schema!r} is incomplete "
                    f"(has {sorted(present)}); refusing to use it"
                )
            else:
                row = conn.execute(
                    self._q("SELECT value FROM {s}.audit_meta WHERE key = 'schema_version'")
                ).fetchone()
                version = None if row is None else row[0]
                if version != SCHEMA_VERSION:
                    raise ConfigurationError(
                        f"PostgreSQL audit schema {self._schema!r} has schema version "
                        f"{version!r}; this gateway writes only version {SCHEMA_VERSION!r}"
                    )

    # -- AuditStore --------------------------------------------------------------------

    def append(self, record: AuditRecord) -> int:
        """See :meth:`AuditStore.append`: committed with ``synchronous_commit = on`` when it
        returns.

        Raises AuditUnavailableError on any failure, including a duplicate ``audit_id``,
        a lock wait beyond ``lock_timeout_ms``, or an ``audit_state`` that disagrees with
        the rows (the store then refuses to append until an operator has investigated).
        """
        try:
            data = record.canonical_bytes()
        except (TypeError, ValueError) as exc:
            raise unavailable(exc, "audit record cannot be encoded") from exc
        params: dict[str, object] = {
            "audit_id": record.audit_id,
            "time": record.time,
            "department": record.department,
            "system": record.system,
            "outcome": record.outcome.value,
            "record": data,
            "leaf_hash": leaf_hash_of(data),
        }

        def insert(conn: _Conn) -> int:
            conn.execute("BEGIN")
            row = conn.execute(self._sql_advance).fetchone()
            if row is None:
                raise unavailable(None, "audit_state row is missing")
            idx = int(row[0])
            cur = conn.execute(self._sql_insert, {**params, "idx": idx})
            if cur.rowcount != 1:
                raise unavailable(
                    None, f"audit_state.size disagrees with the rows at index {idx}; run check"
                )
            try:
                conn.execute("COMMIT")
            except Exception as exc:
                # Whatever went wrong, COMMIT reached (or may have reached) the server:
                # never retry, or the record could be written twice.
                raise _CommitOutcomeUnknownError(str(exc)) from exc
            return idx

        return self._run("appending to the PostgreSQL audit log", insert)

    def get(self, audit_id: str) -> tuple[int, AuditRecord] | None:
        """See :meth:`AuditStore.get`."""

        def read(conn: _Conn) -> tuple[int, bytes, bytes] | None:
            row = conn.execute(self._sql_get, (audit_id,)).fetchone()
            return None if row is None else (int(row[0]), bytes(row[1]), bytes(row[2]))

        found = self._run("reading the PostgreSQL audit log", read)
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
        where: list[sql.Composable] = []
        args: list[object] = []
        for clause, value in (
            ("department = %s", department),
            ("system = %s", system),
            ("outcome = %s", None if outcome is None else Outcome(outcome).value),
            ("time >= %s", since),
            ("time < %s", until),
        ):
            if value is not None:
                where.append(sql.SQL(clause))
                args.append(value)
        query = self._q("SELECT idx, record, leaf_hash FROM {s}.audit_log")
        if where:
            query = query + sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
        query = query + sql.SQL(" ORDER BY idx DESC LIMIT %s")
        args.append(limit)

        def read(conn: _Conn) -> list[tuple[int, bytes, bytes]]:
            return [
                (int(r[0]), bytes(r[1]), bytes(r[2])) for r in conn.execute(query, args).fetchall()
            ]

        rows = self._run("searching the PostgreSQL audit log", read)
        return [decode_stored(*row) for row in rows]

    def size(self) -> int:
        """See :meth:`AuditStore.size`."""

        def read(conn: _Conn) -> int:
            row = conn.execute(self._sql_size).fetchone()
            if row is None:
                raise unavailable(None, "audit_state row is missing")
            return int(row[0])

        return self._run("reading the PostgreSQL audit log size", read)

    def check(self) -> None:
        """See :meth:`AuditStore.check`. One REPEATABLE READ snapshot, streamed through a
        server-side cursor, without a statement timeout (the log can be large)."""

        def rows(cur: psycopg.ServerCursor[tuple[Any, ...]]) -> Iterator[StoredRow]:
            for r in cur:
                yield StoredRow(int(r[0]), r[1], r[2], r[3], r[4], r[5], bytes(r[6]), bytes(r[7]))

        def verify(conn: _Conn) -> None:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            conn.execute("SET LOCAL statement_timeout = 0")
            state = conn.execute(self._sql_size).fetchone()
            if state is None:
                raise AuditUnavailableError(
                    "audit_state row is missing", internal_detail="audit_state row is missing"
                )
            with conn.cursor(name="gateway_audit_check") as cur:
                cur.itersize = 5_000
                cur.execute(self._sql_rows)
                verify_rows(rows(cur), state_size=int(state[0]))
            conn.execute("COMMIT")

        self._run("checking the PostgreSQL audit log", verify)

    def close(self) -> None:
        """See :meth:`AuditStore.close`."""
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
