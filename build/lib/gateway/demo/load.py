"""Load the demo world into a database of any supported kind.

DSN forms are those of :mod:`gateway.dsn` (the strings the backends use, so one DSN serves
both), opened writable by :func:`gateway.backends.connect_writable`:

``sqlite:<path>``
    A SQLite file; parent directories are created. Dates are stored as TEXT ``YYYY-MM-DD``.
``duckdb:<path>``
    A DuckDB file; parent directories are created.
``postgresql://…`` (or ``postgres://…``)
    A libpq URI. The tables go into the first schema of the connection's ``search_path``,
    created if missing, so that the *same DSN* later finds them by unqualified name. To use
    a schema other than the default, put it in the DSN: ``postgresql://u@host/db?schema=t_demo``
    (or ``?options=-csearch_path%3Dt_demo``).
``mysql://user:password@host:port/database`` (or ``mariadb://…``)
    MariaDB/MySQL; the database is created (utf8mb4, binary collation) if missing. Text
    columns are ``VARCHAR(n) … COLLATE utf8mb4_bin`` so comparisons are case- and
    accent-sensitive like PostgreSQL's.

A load drops and recreates the four tables and ``demo_meta(key, value)``, which records
the schema version, the data key (generator version, seed, size), the fingerprint and the
row count of each table. ``demo_meta`` is written last and dropped first, so a load that
fails half-way leaves no meta and :func:`ensure_demo_database` will load again.

Concurrent loaders of one target serialise: PostgreSQL on an advisory lock, MariaDB on
``GET_LOCK``, SQLite on ``BEGIN IMMEDIATE``, DuckDB on its own file lock.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import date
from types import MappingProxyType
from typing import Any, Final, Literal

import duckdb
import psycopg
import pymysql
import pymysql.connections
from psycopg import sql

from gateway.backends import WritableConnection, connect_writable
from gateway.backends.writable import describe_location
from gateway.demo.generate import (
    DEFAULT_PEOPLE,
    DEFAULT_SEED,
    DEMO_TABLES,
    ColumnSpec,
    DemoData,
    TableSpec,
    demo_data_key,
    generate_demo_data,
)
from gateway.dsn import Dsn, DsnKind, parse_dsn
from gateway.errors import BackendQueryError, BackendUnavailableError, ConfigurationError

__all__ = [
    "META_TABLE",
    "SCHEMA_VERSION",
    "BackendKind",
    "ensure_demo_database",
    "index_ddl",
    "load_demo",
    "parse_demo_dsn",
    "read_demo_meta",
    "table_ddl",
]

BackendKind = Literal["sqlite", "postgres", "mysql", "duckdb"]
_KINDS: Final[tuple[DsnKind, ...]] = ("sqlite", "postgres", "mysql", "duckdb")

#: Bump when the DDL changes: a stored database of another version is reloaded.
SCHEMA_VERSION = 1
META_TABLE = "demo_meta"
_CONNECT_TIMEOUT_S = 10
# Waiting this long for another loader of the same target is plenty: a load takes seconds.
_LOCK_TIMEOUT_S = 300
_MYSQL_BATCH_ROWS = 2000
_MYSQL_TEXT = "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
_META_INSERT_QMARK = 'INSERT INTO demo_meta ("key", value) VALUES (?, ?)'
_META_INSERT_PG = 'INSERT INTO demo_meta ("key", value) VALUES (%s, %s)'
_META_INSERT_MYSQL = "INSERT INTO demo_meta (`key`, value) VALUES (%s, %s)"


# ------------------------------------------------------------------------ DDL


def _column_type(kind: BackendKind, col: ColumnSpec) -> str:
    if col.type == "integer":
        # SQLite's INTEGER is 64-bit (and must be spelt so for a rowid primary key).
        return "INTEGER" if kind == "sqlite" else "BIGINT"
    if col.type == "date":
        return "TEXT" if kind == "sqlite" else "DATE"
    if kind == "mysql":
        return f"VARCHAR({col.max_length or 255}) {_MYSQL_TEXT}"
    return "VARCHAR" if kind == "duckdb" else "TEXT"


def _meta_key_column(kind: BackendKind) -> str:
    # KEY is reserved in MySQL; quote it everywhere so one spelling works.
    return "`key`" if kind == "mysql" else '"key"'


def table_ddl(kind: BackendKind) -> tuple[str, ...]:
    """``CREATE TABLE`` statements for the four demo tables and ``demo_meta``, unqualified
    (they land in the connection's current schema/database). Types follow the catalog:
    integer → BIGINT (SQLite INTEGER), text → TEXT (MySQL binary-collated VARCHAR(n)),
    date → DATE (SQLite TEXT ``YYYY-MM-DD``); the first column is the primary key."""
    statements = []
    for spec in DEMO_TABLES:
        cols = []
        for i, col in enumerate(spec.columns):
            parts = [col.name, _column_type(kind, col)]
            parts.append("PRIMARY KEY" if i == 0 else ("" if col.nullable else "NOT NULL"))
            cols.append(" ".join(p for p in parts if p))
        statements.append(f"CREATE TABLE {spec.name} ({', '.join(cols)})")
    key_col = _meta_key_column(kind)
    if kind == "mysql":
        meta_cols = f"{key_col} VARCHAR(64) {_MYSQL_TEXT} PRIMARY KEY, value TEXT {_MYSQL_TEXT}"
    else:
        meta_cols = f"{key_col} TEXT PRIMARY KEY, value TEXT"
    statements.append(f"CREATE TABLE {META_TABLE} ({meta_cols})")
    if kind == "mysql":
        # The table default matters for expressions (e.g. CONCAT) over these columns.
        statements = [f"{s} ENGINE=InnoDB DEFAULT {_MYSQL_TEXT}" for s in statements]
    return tuple(statements)


def index_ddl(kind: BackendKind) -> tuple[str, ...]:
    """``CREATE [UNIQUE] INDEX`` statements for the district and ID-number columns (run
    after the bulk load, which is faster than maintaining them row by row). ``kind`` is
    accepted for symmetry: the statements are the same in every dialect."""
    del kind
    statements = []
    for spec in DEMO_TABLES:
        for col in spec.columns[1:]:
            if col.unique:
                statements.append(
                    f"CREATE UNIQUE INDEX {spec.name}_{col.name}_key ON {spec.name} ({col.name})"
                )
            elif col.indexed:
                statements.append(
                    f"CREATE INDEX {spec.name}_{col.name}_idx ON {spec.name} ({col.name})"
                )
    return tuple(statements)


def _drop_statements() -> tuple[str, ...]:
    # The meta goes first: from here on the target counts as "not loaded".
    names = [META_TABLE, *(spec.name for spec in DEMO_TABLES)]
    return tuple(f"DROP TABLE IF EXISTS {name}" for name in names)


def _meta_items(data: DemoData) -> list[tuple[str, str]]:
    items = [
        ("schema_version", str(SCHEMA_VERSION)),
        ("data_key", data.key),
        ("fingerprint", data.fingerprint()),
    ]
    items += [(f"rows.{spec.name}", str(len(rows))) for spec, rows in data.tables()]
    return items


# ------------------------------------------------------------------------ sessions


def _quote(kind: BackendKind, name: str) -> str:
    if kind == "mysql":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def _first_search_path_entry(search_path: str) -> str | None:
    """The first element of a ``search_path`` value as PostgreSQL reads it: a double-quoted
    identifier verbatim (``""`` is a quote), an unquoted one folded to lower case."""
    text = search_path.strip()
    if not text:
        return None
    if text.startswith('"'):
        out, i = [], 1
        while i < len(text):
            if text[i] == '"':
                if text[i + 1 : i + 2] == '"':
                    out.append('"')
                    i += 2
                    continue
                return "".join(out)
            out.append(text[i])
            i += 1
        return None  # unterminated quote: PostgreSQL would not have accepted it
    first = text.split(",", 1)[0].strip()
    return first.lower() or None


class _Session:
    """One writable connection to a demo target, opened by
    :func:`gateway.backends.connect_writable` (the backends' DSN and connection
    settings), and the few operations loading needs.

    ``namespace`` is where the tables go: PostgreSQL's schema (the first of the
    connection's ``search_path``, which the DSN's ``?schema=`` or ``options`` sets),
    the MariaDB database of the DSN, nothing for SQLite and DuckDB files. What differs
    by engine beyond SQL spelling (locking out other loaders, bulk loading) is in
    :data:`_EXCLUSIVE` and :data:`_REPLACE`.
    """

    def __init__(self, dsn: Dsn) -> None:
        if dsn.kind == "memory":  # refused by parse_dsn's kinds already
            raise ConfigurationError(f"{dsn.what}: an in-memory database keeps nothing")
        self.kind: BackendKind = dsn.kind
        self.where = describe_location(dsn)
        self.conn: WritableConnection = connect_writable(
            dsn,
            what="the demo database",
            busy_timeout_s=_LOCK_TIMEOUT_S,
            connect_timeout_s=_CONNECT_TIMEOUT_S,
        )
        try:
            self.namespace = self._namespace(dsn)
        except BaseException:
            self.conn.close()
            raise

    def _namespace(self, dsn: Dsn) -> str:
        if self.kind == "mysql":
            return dsn.mysql_params().database
        if self.kind != "postgres":
            return ""
        search_path, current = self.rows("SELECT current_setting('search_path'), current_schema()")[
            0
        ]
        first = _first_search_path_entry(str(search_path))
        if first and first != "$user":
            return first
        if current is None:
            raise ConfigurationError(
                "the PostgreSQL search_path names no existing schema; set one with ?schema=<schema>"
            )
        return str(current)

    def rows(self, query: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (none for a statement without a result)."""
        # DuckDB's cursor() is a second connection with a transaction of its own, so
        # statements go to the connection itself there.
        own_cursor = self.kind != "duckdb"
        cursor: Any = self.conn.cursor() if own_cursor else self.conn
        try:
            if params:
                cursor.execute(query, params)
            else:
                cursor.execute(query)
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
        finally:
            if own_cursor:
                cursor.close()

    def table(self, name: str) -> str:
        """``name`` as SQL, in the namespace."""
        if not self.namespace:
            return name
        return f"{_quote(self.kind, self.namespace)}.{_quote(self.kind, name)}"

    def count_rows(self, table: str) -> int | None:
        """Rows in ``table``, or None when it does not exist."""
        params = (self.namespace, table) if self.namespace else (table,)
        if not self.rows(_EXISTS[self.kind], params):
            return None
        return int(self.rows(f"SELECT COUNT(*) FROM {self.table(table)}")[0][0])  # noqa: S608

    def read_meta(self) -> dict[str, str]:
        """The demo_meta rows, or {} when the table does not exist."""
        if self.count_rows(META_TABLE) is None:
            return {}
        key = _meta_key_column(self.kind)
        rows = self.rows(f"SELECT {key}, value FROM {self.table(META_TABLE)}")  # noqa: S608
        return {str(k): str(v) for k, v in rows}

    def exclusive(self) -> AbstractContextManager[None]:
        """Hold the target's loader lock (and, for SQLite/DuckDB, its write transaction)."""
        return _EXCLUSIVE[self.kind](self)

    def replace_data(self, data: DemoData) -> None:
        """Drop, recreate and fill every table; call inside :meth:`exclusive`."""
        _REPLACE[self.kind](self, data)

    def close(self) -> None:
        self.conn.close()


_INFORMATION_SCHEMA_EXISTS = (
    "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s"
)
#: SQL that returns a row when a table exists (namespace and name, or just the name).
_EXISTS: Final[Mapping[BackendKind, str]] = MappingProxyType(
    {
        "sqlite": "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
        "duckdb": "SELECT 1 FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_name = ?",
        "postgres": _INFORMATION_SCHEMA_EXISTS,
        "mysql": _INFORMATION_SCHEMA_EXISTS,
    }
)


def _rows_as_columns(spec: TableSpec, rows: Sequence[tuple[object, ...]]) -> list[list[object]]:
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in spec.columns]


# -- locking out other loaders


@contextmanager
def _write_transaction(session: _Session) -> Iterator[None]:
    # SQLite: IMMEDIATE takes the write lock now, so a second loader waits (busy
    # timeout) before its re-check. DuckDB: the file lock is the process's own.
    session.rows("BEGIN IMMEDIATE" if session.kind == "sqlite" else "BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        session.rows("ROLLBACK")
        raise
    session.rows("COMMIT")


@contextmanager
def _advisory_lock(session: _Session) -> Iterator[None]:
    key = f"gateway.demo:{session.namespace}"
    session.rows("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
    try:
        yield
    finally:
        session.rows("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))


@contextmanager
def _named_lock(session: _Session) -> Iterator[None]:
    # Lock names are limited to 64 characters; a hash keeps long database names apart.
    digest = hashlib.sha256(session.namespace.encode()).hexdigest()[:40]
    name = f"gateway.demo.{digest}"
    row = session.rows("SELECT GET_LOCK(%s, %s)", (name, _LOCK_TIMEOUT_S))
    if not row or row[0][0] != 1:
        raise BackendUnavailableError(
            "another process is loading the demo database; try again later"
        )
    try:
        yield
    finally:
        session.rows("SELECT RELEASE_LOCK(%s)", (name,))


_EXCLUSIVE: Final[Mapping[BackendKind, Callable[[_Session], AbstractContextManager[None]]]] = (
    MappingProxyType(
        {
            "sqlite": _write_transaction,
            "duckdb": _write_transaction,
            "postgres": _advisory_lock,
            "mysql": _named_lock,
        }
    )
)


# -- bulk loading


def _replace_embedded(session: _Session, data: DemoData) -> None:
    """SQLite and DuckDB, inside :func:`_write_transaction`: readers of the file see the
    old tables or the new ones."""
    for stmt in (*_drop_statements(), *table_ddl(session.kind)):
        session.rows(stmt)
    insert = _insert_sqlite if session.kind == "sqlite" else _insert_duckdb
    for spec, rows in data.tables():
        insert(session, spec, rows)
    for stmt in index_ddl(session.kind):
        session.rows(stmt)
    for item in _meta_items(data):
        session.rows(_META_INSERT_QMARK, item)


def _insert_sqlite(session: _Session, spec: TableSpec, rows: Sequence[tuple[object, ...]]) -> None:
    conn = session.conn
    if not isinstance(conn, sqlite3.Connection):
        raise TypeError("not a SQLite connection")
    marks = ", ".join("?" for _ in spec.columns)
    # Dates become ISO text explicitly (the sqlite3 default adapter is deprecated).
    converted = (tuple(v.isoformat() if isinstance(v, date) else v for v in row) for row in rows)
    conn.executemany(f"INSERT INTO {spec.name} VALUES ({marks})", converted)  # noqa: S608


def _insert_duckdb(session: _Session, spec: TableSpec, rows: Sequence[tuple[object, ...]]) -> None:
    conn = session.conn
    if not isinstance(conn, duckdb.DuckDBPyConnection):
        raise TypeError("not a DuckDB connection")
    # DuckDB's executemany runs row by row (seconds); one INSERT of unnested column lists
    # loads a table in milliseconds.
    casts = {"integer": "BIGINT[]", "text": "VARCHAR[]", "date": "DATE[]"}
    cols = ", ".join(f"unnest(${i}::{casts[c.type]})" for i, c in enumerate(spec.columns, start=1))
    conn.execute(f"INSERT INTO {spec.name} SELECT {cols}", _rows_as_columns(spec, rows))


def _replace_postgres(session: _Session, data: DemoData) -> None:
    conn = session.conn
    if not isinstance(conn, psycopg.Connection):
        raise TypeError("not a PostgreSQL connection")
    schema = session.namespace
    # PostgreSQL DDL is transactional: readers see the old tables or the new, never none.
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        cur.execute("SELECT set_config('search_path', quote_ident(%s), true)", (schema,))
        for stmt in (*_drop_statements(), *table_ddl("postgres")):
            cur.execute(stmt)
        for spec, rows in data.tables():
            copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(spec.name),
                sql.SQL(", ").join(sql.Identifier(c) for c in spec.column_names),
            )
            with cur.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
        for stmt in index_ddl("postgres"):
            cur.execute(stmt)
        cur.executemany(_META_INSERT_PG, _meta_items(data))


def _replace_mysql(session: _Session, data: DemoData) -> None:
    conn = session.conn
    if not isinstance(conn, pymysql.connections.Connection):
        raise TypeError("not a MariaDB/MySQL connection")
    db = _quote("mysql", session.namespace)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {db} {_MYSQL_TEXT}")
        cur.execute(f"USE {db}")
        # MySQL DDL commits implicitly; only the meta, written last, marks success.
        for stmt in (*_drop_statements(), *table_ddl("mysql")):
            cur.execute(stmt)
        conn.begin()
        for spec, rows in data.tables():
            marks = ", ".join("%s" for _ in spec.columns)
            insert = f"INSERT INTO {spec.name} VALUES ({marks})"  # noqa: S608
            # PyMySQL turns executemany of one VALUES tuple into multi-row INSERTs.
            for start in range(0, len(rows), _MYSQL_BATCH_ROWS):
                cur.executemany(insert, rows[start : start + _MYSQL_BATCH_ROWS])
        conn.commit()
        for stmt in index_ddl("mysql"):
            cur.execute(stmt)
        cur.executemany(_META_INSERT_MYSQL, _meta_items(data))


_REPLACE: Final[Mapping[BackendKind, Callable[[_Session, DemoData], None]]] = MappingProxyType(
    {
        "sqlite": _replace_embedded,
        "duckdb": _replace_embedded,
        "postgres": _replace_postgres,
        "mysql": _replace_mysql,
    }
)

_DRIVER_ERRORS: tuple[type[Exception], ...] = (
    sqlite3.Error,
    duckdb.Error,
    psycopg.Error,
    pymysql.err.MySQLError,
)


def parse_demo_dsn(dsn: str) -> Dsn:
    """``dsn`` parsed as a demo target: any :mod:`gateway.dsn` form but ``memory:``.
    Raises ConfigurationError."""
    return parse_dsn(dsn, kinds=_KINDS, what="demo DSN")


@contextmanager
def _session(dsn: str) -> Iterator[_Session]:
    session = _Session(parse_demo_dsn(dsn))
    try:
        yield session
    except _DRIVER_ERRORS as exc:
        raise BackendQueryError(
            f"the demo database ({session.where}) refused a statement while loading",
            internal_detail=f"{type(exc).__name__}: {exc}",
        ) from exc
    finally:
        session.close()


# ------------------------------------------------------------------------ public API


def _is_current(session: _Session, key: str) -> bool:
    meta = session.read_meta()
    if meta.get("schema_version") != str(SCHEMA_VERSION) or meta.get("data_key") != key:
        return False
    if not meta.get("fingerprint"):
        return False
    # Cheap guard against tables emptied or dropped behind the meta's back.
    return all(
        meta.get(f"rows.{spec.name}") == str(session.count_rows(spec.name)) for spec in DEMO_TABLES
    )


def load_demo(dsn: str, data: DemoData | None = None) -> None:
    """Drop, recreate and fill the demo tables and ``demo_meta`` at ``dsn`` (see the module
    docstring for DSN forms), with ``data`` or the default world.

    Guarantees: on return every table holds exactly ``data``'s rows and demo_meta records
    its key and fingerprint. Raises ConfigurationError for a malformed DSN,
    BackendUnavailableError when the database cannot be reached (or another loader holds
    the lock too long), BackendQueryError when it refuses a statement.
    """
    data = data if data is not None else generate_demo_data()
    with _session(dsn) as session, session.exclusive():
        session.replace_data(data)


def ensure_demo_database(
    dsn: str,
    data_factory: Callable[[int, int], DemoData] = generate_demo_data,
    *,
    seed: int = DEFAULT_SEED,
    people: int = DEFAULT_PEOPLE,
) -> bool:
    """Make sure ``dsn`` holds the demo world for ``(seed, people)``; return True when it
    had to (re)load, False when it was already current.

    "Current" means demo_meta records this schema version, the key
    ``demo_data_key(seed, people)`` and a fingerprint, and every table still has the
    recorded row count; that check never generates data. Otherwise
    ``data_factory(seed, people)`` is called (once) and loaded; concurrent callers on one
    target serialise, and the loser of the race sees the winner's load and returns False.

    Raises ConfigurationError for a malformed DSN or when the factory returns data for
    another key; BackendUnavailableError / BackendQueryError as :func:`load_demo`.
    """
    key = demo_data_key(seed, people)
    with _session(dsn) as session:
        try:
            if _is_current(session, key):
                return False
        except BackendQueryError:
            # Unlocked fast path: on MariaDB/MySQL, DDL is not transactional, so a
            # concurrent loader may have dropped a table this check reads. Decide again
            # under the lock.
            pass
        with session.exclusive():
            if _is_current(session, key):
                return False
            data = data_factory(seed, people)
            if data.key != key:
                raise ConfigurationError(
                    f"the demo data factory returned data for {data.key!r}, expected {key!r}"
                )
            session.replace_data(data)
    return True


def read_demo_meta(dsn: str) -> dict[str, str]:
    """The demo_meta rows at ``dsn`` ({} when nothing was loaded). Raises as
    :func:`load_demo`."""
    with _session(dsn) as session:
        return session.read_meta()
