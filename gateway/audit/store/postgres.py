"""PostgreSQL dialect of the audit store (``postgresql://...?schema=...``).

The tables are those of the storage layout in :mod:`gateway.audit.store.sql`, in one
schema (default ``public``). Text columns that are compared use ``COLLATE "C"`` (bytewise,
as the fixed-width times and ids require, whatever the database's locale); ``audit_log``,
``audit_checkpoints`` and ``audit_keys`` refuse UPDATE and DELETE (per row) and TRUNCATE
(per statement) with triggers.

Durability: every session sets ``synchronous_commit = on``, so COMMIT returns only after
the WAL record is flushed on the server (and on synchronous standbys, if configured).

Concurrency: an append is one transaction whose first statement after BEGIN is
``SELECT size, root FROM audit_state FOR UPDATE``: the row lock on the single state row is
the sequencer across processes, queueing concurrent appenders until the holder commits or
rolls back. The current key is read *after* the lock is granted: under READ COMMITTED that
statement sees a rotation another process committed while this one waited. Threads of
one process queue on the store's lock first, so that one process holds at most one
connection in the queue.

Connections come from a :class:`psycopg_pool.ConnectionPool` (at most
``max_connections``; a caller waits up to ``connect_timeout_s`` for one). A connection
that saw an error is closed rather than returned (the pool replaces it); one found dead
(a server restart) is retried once on another, but only when the failure happened before
COMMIT was sent: until then the server cannot have committed anything. A failure during
COMMIT is reported as unavailable and never retried (the outcome is unknown; at worst a
record exists for a response that was not sent, never the reverse).

PostgreSQL ``text`` cannot hold U+0000, which a consumer's SQL (or purpose) may contain;
the searchable copies therefore store U+0000 as U+FFFF ``0`` and U+FFFF (a noncharacter)
as U+FFFF U+FFFF. The record bytes, which alone are hashed and signed, are stored as they
are; searches and ``check`` undo the escape, so results are the same as on the other
stores.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final, cast

import psycopg
import psycopg_pool
from psycopg import sql

from gateway.audit.store.protocol import SearchColumns, unavailable
from gateway.audit.store.sql import TABLES, InsertRow
from gateway.errors import ConfigurationError

__all__ = ["PgConnection", "PostgresDialect"]

PgConnection = psycopg.Connection[tuple[Any, ...]]

_SCHEMA_RE: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_APPEND_ONLY: Final = ("audit_log", "audit_checkpoints", "audit_keys")
#: First key of the advisory lock that serialises schema creation (ASCII "gwau").
_INIT_LOCK_KEY: Final = 0x67776175
#: Rows a server-side cursor fetches at a time during ``check``.
_CHECK_CHUNK: Final = 5_000

#: Column types of the binary COPY that inserts a batch (in the _DDL column order).
_COPY_TYPES: Final = ("int8", *("text",) * 8, "bytea", "bytea")
_COPY: Final = (
    "COPY {t}audit_log (idx, audit_id, time, department, system, purpose, outcome, datasets,"
    " sql, record, leaf_hash) FROM STDIN (FORMAT BINARY)"
)


def _append_only(table: str) -> tuple[str, ...]:
    return tuple(
        f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {{t}}{table}"
        f" FOR EACH {'STATEMENT' if verb == 'TRUNCATE' else 'ROW'}"
        " EXECUTE FUNCTION {t}audit_append_only()"
        for verb in ("UPDATE", "DELETE", "TRUNCATE")
    )


#: Cosigned checkpoints (schema version 3; also what upgrading a version 2 store runs,
#: after the trigger function of version 2 exists).
_COSIGNED_DDL: Final[tuple[str, ...]] = (
    "CREATE TABLE {t}audit_cosigned ("
    " seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " size BIGINT NOT NULL CHECK (size >= 0),"
    ' origin TEXT COLLATE "C" NOT NULL,'
    " note TEXT NOT NULL)",
    "CREATE INDEX audit_cosigned_size ON {t}audit_cosigned (size)",
    *_append_only("audit_cosigned"),
)

#: Archives (schema version 4; also what upgrading runs, after the trigger function of
#: version 2 exists): the ranges whose record bytes moved to verified archive bundles,
#: and the one UPDATE audit_log allows - removing the bytes (and the searchable copies)
#: of a row an archive covers, its leaf hash kept.
_ARCHIVE_DDL: Final[tuple[str, ...]] = (
    "CREATE TABLE {t}audit_archives ("
    " seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " start BIGINT NOT NULL CHECK (start >= 0),"
    " upto BIGINT NOT NULL CHECK (upto > start),"
    " name TEXT NOT NULL,"
    " sha256 TEXT NOT NULL,"
    " archived_at TEXT NOT NULL,"
    " checkpoint TEXT NOT NULL)",
    *_append_only("audit_archives"),
    "DROP TRIGGER IF EXISTS audit_log_no_update ON {t}audit_log",
    "CREATE FUNCTION {t}audit_archive_only() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN"
    " IF NEW.idx = OLD.idx AND NEW.audit_id = OLD.audit_id AND NEW.time = OLD.time"
    " AND NEW.outcome = OLD.outcome AND NEW.leaf_hash = OLD.leaf_hash"
    " AND octet_length(NEW.record) = 0 AND NEW.department IS NULL AND NEW.system IS NULL"
    " AND NEW.purpose IS NULL AND NEW.datasets = '' AND NEW.sql IS NULL"
    " AND OLD.idx < (SELECT COALESCE(MAX(upto), 0) FROM {t}audit_archives) THEN"
    " RETURN NEW; END IF;"
    " RAISE EXCEPTION 'audit_log is append-only (only rows an archive covers may lose"
    " their bytes)'; END$$",
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON {t}audit_log FOR EACH ROW"
    " EXECUTE FUNCTION {t}audit_archive_only()",
)

_DDL: Final[tuple[str, ...]] = (
    'CREATE TABLE {t}audit_meta (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL)',
    "CREATE TABLE {t}audit_state ("
    " id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),"
    " size BIGINT NOT NULL CHECK (size >= 0),"
    " root BYTEA NOT NULL CHECK (octet_length(root) = 32))",
    "CREATE TABLE {t}audit_log ("
    " idx BIGINT PRIMARY KEY CHECK (idx >= 0),"
    ' audit_id TEXT COLLATE "C" NOT NULL UNIQUE,'
    ' time TEXT COLLATE "C" NOT NULL,'
    ' department TEXT COLLATE "C",'
    ' system TEXT COLLATE "C",'
    ' purpose TEXT COLLATE "C",'
    " outcome TEXT COLLATE \"C\" NOT NULL CHECK (outcome IN ('served', 'refused', 'failed')),"
    ' datasets TEXT COLLATE "C" NOT NULL,'
    ' sql TEXT COLLATE "C",'
    " record BYTEA NOT NULL,"
    " leaf_hash BYTEA NOT NULL CHECK (octet_length(leaf_hash) = 32))",
    "CREATE INDEX audit_log_time ON {t}audit_log (time)",
    "CREATE INDEX audit_log_department ON {t}audit_log (department, idx)",
    "CREATE INDEX audit_log_system ON {t}audit_log (system, idx)",
    "CREATE TABLE {t}audit_checkpoints ("
    " seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " size BIGINT NOT NULL CHECK (size >= 0),"
    ' origin TEXT COLLATE "C" NOT NULL,'
    " root BYTEA NOT NULL CHECK (octet_length(root) = 32),"
    " note TEXT NOT NULL,"
    " UNIQUE (origin, size))",
    "CREATE INDEX audit_checkpoints_size ON {t}audit_checkpoints (size)",
    "CREATE TABLE {t}audit_keys ("
    " seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " from_size BIGINT NOT NULL CHECK (from_size >= 0),"
    ' origin TEXT COLLATE "C" NOT NULL UNIQUE,'
    " vkey TEXT NOT NULL,"
    " handover TEXT)",
    # Append-only, enforced by the database for every role that does not disable
    # triggers; check() and the signed checkpoints held outside catch those who do.
    "CREATE FUNCTION {t}audit_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    " $$BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END$$",
    *(statement for table in _APPEND_ONLY for statement in _append_only(table)),
    *_COSIGNED_DDL,
    *_ARCHIVE_DDL,
)

# -- U+0000 in searchable text (see the module docstring) ----------------------------

_ESC: Final = "\uffff"
_ESCAPED: Final = re.compile("\uffff(.?)", re.DOTALL)
_UNESCAPE: Final = {"0": "\x00", _ESC: _ESC}


class _Malformed:
    """Stands in for a stored column whose escapes are broken: equal to nothing, so that
    :func:`verify_rows` reports the row."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return 0


_MALFORMED: Final = _Malformed()


def _to_pg(value: str | None) -> str | None:
    """``value`` as PostgreSQL text can hold it (injective; identity for almost all)."""
    if value is None or ("\x00" not in value and _ESC not in value):
        return value
    return value.replace(_ESC, _ESC + _ESC).replace("\x00", _ESC + "0")


def _from_pg(value: str | None) -> str | None:
    """Undo :func:`_to_pg`; a malformed escape gives a value equal to no column."""
    if value is None or _ESC not in value:
        return value
    broken = False

    def one(match: re.Match[str]) -> str:
        nonlocal broken
        out = _UNESCAPE.get(match.group(1))
        if out is None:
            broken = True
            return ""
        return out

    text = _ESCAPED.sub(one, value)
    return cast(str, _MALFORMED) if broken else text


def _pg_columns(columns: SearchColumns) -> SearchColumns:
    return SearchColumns._make(_to_pg(value) for value in columns)


class PostgresDialect:
    """The audit log in a PostgreSQL schema, shared safely by threads and processes.

    ``conninfo`` is any libpq connection string; ``schema`` (default ``public``) must be a
    plain lowercase identifier and is created with the tables if missing. Raises
    ConfigurationError for a bad schema name, AuditUnavailableError when no connection
    can be made within ``connect_timeout_s``.
    """

    begin_write: Final = "BEGIN"
    begin_snapshot: Final = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    #: ``check`` reads the whole log: no statement timeout for it.
    unbounded: Final = ("SET LOCAL statement_timeout = 0",)
    lock_state: Final = " FOR UPDATE"
    state_id: Final = True
    ddl: Final = _DDL
    cosigned_ddl: Final = _COSIGNED_DDL
    archive_ddl: Final = _ARCHIVE_DDL

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "public",
        connect_timeout_s: int = 5,
        lock_timeout_ms: int = 5_000,
        statement_timeout_ms: int = 30_000,
        max_connections: int = 8,
    ) -> None:
        if _SCHEMA_RE.fullmatch(schema) is None:
            raise ConfigurationError(
                f"audit schema {schema!r} must be a lowercase identifier ([a-z_][a-z0-9_]*)"
            )
        self.where = f"PostgreSQL audit schema {schema!r}"
        self.lock_timeout_s = lock_timeout_ms / 1000
        self._schema = schema
        self._identifier = sql.Identifier(schema)
        self._session = (f"{lock_timeout_ms}ms", f"{statement_timeout_ms}ms")
        self._copy = self.q(_COPY)
        options: dict[str, Any] = {
            "autocommit": True,  # transactions are explicit BEGIN ... COMMIT
            "connect_timeout": connect_timeout_s,
            "application_name": "gateway-audit",
        }
        try:
            # One connection of our own first: an unreachable server fails start-up at
            # once and with the driver's reason (the pool would only say it timed out).
            psycopg.connect(conninfo, **options).close()
        except psycopg.Error as exc:
            raise unavailable(exc, f"cannot connect to the {self.where}") from exc
        self.pool: psycopg_pool.ConnectionPool[PgConnection] = psycopg_pool.ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_connections,
            kwargs=options,
            configure=self._configure,
            timeout=connect_timeout_s,
            name=f"gateway-audit-{schema}",
            open=True,
        )
        try:
            # Ready before the first request; one connection while use is sequential.
            self.pool.wait(timeout=connect_timeout_s)
        except psycopg_pool.PoolTimeout as exc:
            raise unavailable(exc, f"cannot connect to the {self.where}") from exc

    def _configure(self, conn: PgConnection) -> None:
        # synchronous_commit=on whatever the server default: an acknowledged append must
        # be on disk. The timeouts bound how long a request can hang on the log.
        conn.execute(
            "SELECT set_config('synchronous_commit', 'on', false),"
            " set_config('lock_timeout', %s, false),"
            " set_config('statement_timeout', %s, false)",
            self._session,
        )

    # -- statements -----------------------------------------------------------------------

    def q(self, text: str) -> sql.Composed:
        return sql.SQL(text.replace("?", "%s").replace("{t}", "{s}.")).format(s=self._identifier)

    @staticmethod
    def contains(column: str) -> str:
        # strpos, not LIKE: '_' and '%' in a name or text are literal characters here.
        return f"strpos({column}, ?) > 0"

    @staticmethod
    def to_text(value: str | None) -> str | None:
        return _to_pg(value)

    @staticmethod
    def from_text(value: str | None) -> str | None:
        return _from_pg(value)

    # -- connections ----------------------------------------------------------------------

    def acquire(self, *, writer: bool) -> PgConnection:
        return self.pool.getconn()

    def release(self, conn: PgConnection, *, writer: bool, ok: bool) -> None:
        if not ok:
            # Its session may be in any state (an aborted transaction, a lost COMMIT):
            # the pool replaces it with a fresh one rather than guess.
            with contextlib.suppress(Exception):
                conn.close()
        self.pool.putconn(conn)

    @staticmethod
    def is_stale(conn: PgConnection) -> bool:
        return conn.broken or conn.closed

    def forget_idle(self) -> None:
        # Its idle siblings most likely died with it (a server restart): test them now.
        with contextlib.suppress(Exception):
            self.pool.check()

    @staticmethod
    def in_transaction(conn: PgConnection) -> bool:
        if conn.closed or conn.broken:
            return False
        return conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    # -- locks and schema -----------------------------------------------------------------

    @staticmethod
    def process_lock(deadline: float) -> contextlib.nullcontext[None]:
        # Other processes queue on the state row lock inside the transaction.
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def init_transaction(self, conn: PgConnection) -> Iterator[None]:
        with conn.transaction():
            # Two processes starting together must not both create the schema.
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_INIT_LOCK_KEY, self._schema)
            )
            exists = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self._schema,)
            ).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(self._identifier))
            yield

    def tables(self, conn: PgConnection) -> set[str]:
        return {
            str(row[0])
            for row in conn.execute(
                "SELECT c.relname FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND c.relname = ANY(%s)",
                (self._schema, sorted(TABLES)),
            )
        }

    def insert_rows(self, conn: PgConnection, rows: Sequence[InsertRow]) -> None:
        # Binary COPY: measured 3-4x faster than (pipelined) executemany for a batch of
        # 256 records, and no slower for one. Row triggers and constraints still apply.
        with conn.cursor() as cur, cur.copy(self._copy) as copy:
            copy.set_types(_COPY_TYPES)
            for idx, columns, data, leaf in rows:
                copy.write_row((idx, *_pg_columns(columns), data, leaf))

    @staticmethod
    @contextlib.contextmanager
    def stream(conn: PgConnection, query: Any) -> Iterator[Iterable[Any]]:
        with conn.cursor(name="gateway_audit_check") as cur:
            cur.itersize = _CHECK_CHUNK
            cur.execute(query)
            yield cur

    def close(self) -> None:
        self.pool.close()
