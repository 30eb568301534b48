"""Load the demo world into a database of any supported kind.

DSN forms (the same strings the backends use, so one DSN serves both):

``sqlite:<path>``
    A SQLite file; parent directories are created. Dates are stored as TEXT ``YYYY-MM-DD``.
``duckdb:<path>``
    A DuckDB file; parent directories are created.
``postgresql://…`` (or ``postgres://…``)
    A libpq URI. The tables go into the first schema of the connection's ``search_path``,
    created if missing, so that the *same DSN* later finds them by unqualified name. To use
    a schema other than the default, put it in the DSN:
    ``postgresql://u@host/db?options=-csearch_path%3Dt_demo``.
``mysql://user:password@host:port/database``
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
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlsplit

import duckdb
import psycopg
import pymysql
import pymysql.connections
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

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
from gateway.errors import (
    BackendQueryError,
    BackendUnavailableError,
    ConfigurationError,
)

__all__ = [
    "META_TABLE",
    "SCHEMA_VERSION",
    "BackendKind",
    "backend_kind",
    "ensure_demo_database",
    "index_ddl",
    "load_demo",
    "read_demo_meta",
    "table_ddl",
]

BackendKind = Literal["sqlite", "postgres", "mysql", "duckdb"]

#: Bump when the DDL changes: a stored database of another version is reloaded.
SCHEMA_VERSION = 1
META_TABLE = "demo_meta"
_CONNECT_TIMEOUT_S = 10
# Waiting this long for another loader of the same target is plenty: a load takes seconds.
_LOCK_TIMEOUT_S = 300
_MYSQL_BATCH_ROWS = 2000
_MYSQL_TEXT = "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
_META_SELECT = 'SELECT "key", value FROM demo_meta'
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


# ------------------------------------------------------------------------ DSNs


@dataclass(frozen=True, slots=True)
class _Target:
    kind: BackendKind
    #: File path (sqlite, duckdb) or the DSN itself (postgres).
    location: str
    host: str = ""
    port: int = 0
    user: str = ""
    password: str = ""
    database: str = ""

    def describe(self) -> str:
        """Where, without credentials: safe for an error's public detail."""
        if self.kind in ("sqlite", "duckdb"):
            return f"{self.kind} file {self.location}"
        if self.kind == "mysql":
            return f"mysql {self.host}:{self.port}/{self.database}"
        info = conninfo_to_dict(self.location)
        return f"postgres {info.get('host', '')}:{info.get('port', '')}/{info.get('dbname', '')}"


def backend_kind(dsn: str) -> BackendKind:
    """The backend kind a DSN names (see the module docstring). Raises ConfigurationError
    for any other form."""
    return _parse_dsn(dsn).kind


def _parse_dsn(dsn: str) -> _Target:
    for prefix in ("sqlite:", "duckdb:"):
        if dsn.startswith(prefix):
            path = dsn[len(prefix) :]
            if not path or path.startswith("//"):
                raise ConfigurationError(
                    f"a {prefix[:-1]} DSN is '{prefix}<path>' (e.g. '{prefix}state/demo.db'), "
                    "without '//'"
                )
            kind: BackendKind = "sqlite" if prefix == "sqlite:" else "duckdb"
            return _Target(kind=kind, location=path)
    if dsn.startswith(("postgresql://", "postgres://")):
        try:
            conninfo_to_dict(dsn)
        except psycopg.ProgrammingError:
            raise ConfigurationError("the PostgreSQL DSN is not a valid libpq URI") from None
        return _Target(kind="postgres", location=dsn)
    if dsn.startswith("mysql://"):
        u = urlsplit(dsn)
        database = unquote(u.path.lstrip("/"))
        if not database or "/" in database or u.query or u.fragment:
            raise ConfigurationError(
                "a MySQL DSN is 'mysql://user:password@host:port/database', with a database "
                "name and no query string"
            )
        try:
            port = u.port or 3306
        except ValueError:
            raise ConfigurationError("the MySQL DSN has an invalid port") from None
        return _Target(
            kind="mysql",
            location=dsn,
            host=u.hostname or "127.0.0.1",
            port=port,
            user=unquote(u.username or "root"),
            password=unquote(u.password or ""),
            database=database,
        )
    raise ConfigurationError(
        "unsupported demo DSN: use sqlite:<path>, duckdb:<path>, postgresql://… or mysql://…"
    )


# ------------------------------------------------------------------------ sessions


class _Session(Protocol):
    """One open connection to a target, with the few operations loading needs."""

    def read_meta(self) -> dict[str, str]:
        """The demo_meta rows, or {} when the table does not exist."""
        ...

    def count_rows(self, table: str) -> int | None:
        """Rows in ``table``, or None when it does not exist."""
        ...

    def exclusive(self) -> AbstractContextManager[None]:
        """Hold the target's loader lock (and, for SQLite/DuckDB, its write transaction)."""
        ...

    def replace_data(self, data: DemoData) -> None:
        """Drop, recreate and fill every table; call inside :meth:`exclusive`."""
        ...

    def close(self) -> None: ...


def _rows_as_columns(spec: TableSpec, rows: Sequence[tuple[object, ...]]) -> list[list[object]]:
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in spec.columns]


class _SqliteSession:
    def __init__(self, target: _Target) -> None:
        path = Path(target.location)
        if target.location != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are begun explicitly (BEGIN IMMEDIATE) below.
        self.conn = sqlite3.connect(path, timeout=_LOCK_TIMEOUT_S, isolation_level=None)

    def read_meta(self) -> dict[str, str]:
        if self.count_rows(META_TABLE) is None:
            return {}
        rows = self.conn.execute(_META_SELECT).fetchall()
        return {str(k): str(v) for k, v in rows}

    def count_rows(self, table: str) -> int | None:
        exists = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        if exists is None:
            return None
        (n,) = self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()  # noqa: S608
        return int(n)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        # IMMEDIATE takes the write lock now, so a second loader waits before its re-check.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def replace_data(self, data: DemoData) -> None:
        cur = self.conn.cursor()
        for stmt in (*_drop_statements(), *table_ddl("sqlite")):
            cur.execute(stmt)
        for spec, rows in data.tables():
            marks = ", ".join("?" for _ in spec.columns)
            # Dates become ISO text explicitly (the sqlite3 default adapter is deprecated).
            converted = (
                tuple(v.isoformat() if isinstance(v, date) else v for v in row) for row in rows
            )
            cur.executemany(f"INSERT INTO {spec.name} VALUES ({marks})", converted)  # noqa: S608
        for stmt in index_ddl("sqlite"):
            cur.execute(stmt)
        cur.executemany(_META_INSERT_QMARK, _meta_items(data))

    def close(self) -> None:
        self.conn.close()


class _DuckdbSession:
    def __init__(self, target: _Target) -> None:
        path = Path(target.location)
        if target.location != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = duckdb.connect(str(path))

    def read_meta(self) -> dict[str, str]:
        if self.count_rows(META_TABLE) is None:
            return {}
        rows = self.conn.execute(_META_SELECT).fetchall()
        return {str(k): str(v) for k, v in rows}

    def count_rows(self, table: str) -> int | None:
        exists = self.conn.execute(
            "SELECT 1 FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name = ?",
            [table],
        ).fetchone()
        if exists is None:
            return None
        row = self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()  # noqa: S608
        return int(row[0]) if row else 0

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        self.conn.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def replace_data(self, data: DemoData) -> None:
        for stmt in (*_drop_statements(), *table_ddl("duckdb")):
            self.conn.execute(stmt)
        for spec, rows in data.tables():
            # DuckDB's executemany runs row by row (seconds); one INSERT of unnested column
            # lists loads a table in milliseconds.
            casts = {"integer": "BIGINT[]", "text": "VARCHAR[]", "date": "DATE[]"}
            cols = ", ".join(
                f"unnest(${i}::{casts[c.type]})" for i, c in enumerate(spec.columns, start=1)
            )
            self.conn.execute(
                f"INSERT INTO {spec.name} SELECT {cols}",
                _rows_as_columns(spec, rows),
            )
        for stmt in index_ddl("duckdb"):
            self.conn.execute(stmt)
        self.conn.executemany(_META_INSERT_QMARK, _meta_items(data))

    def close(self) -> None:
        self.conn.close()


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


class _PostgresSession:
    def __init__(self, target: _Target) -> None:
        extra: dict[str, Any] = {}
        if "connect_timeout" not in conninfo_to_dict(target.location):
            extra["connect_timeout"] = _CONNECT_TIMEOUT_S
        # Autocommit: a failed probe must not poison a transaction; the load opens its own.
        self.conn = psycopg.connect(target.location, autocommit=True, **extra)
        try:
            self.schema = self._target_schema()
        except BaseException:
            self.conn.close()
            raise

    def _target_schema(self) -> str:
        row = self.conn.execute("SELECT current_setting('search_path'), current_schema()")
        search_path, current = row.fetchone() or ("", None)
        first = _first_search_path_entry(str(search_path))
        if first and first != "$user":
            return first
        if current is None:
            raise ConfigurationError(
                "the PostgreSQL search_path names no existing schema; "
                "set one with ?options=-csearch_path%3D<schema>"
            )
        return str(current)

    def _table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)

    def read_meta(self) -> dict[str, str]:
        if self.count_rows(META_TABLE) is None:
            return {}
        query = sql.SQL('SELECT "key", value FROM {}').format(self._table(META_TABLE))
        return {str(k): str(v) for k, v in self.conn.execute(query).fetchall()}

    def count_rows(self, table: str) -> int | None:
        (oid,) = self.conn.execute(
            "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))::oid",
            (self.schema, table),
        ).fetchone() or (None,)
        if oid is None:
            return None
        row = self.conn.execute(
            sql.SQL("SELECT COUNT(*) FROM {}").format(self._table(table))
        ).fetchone()
        return int(row[0]) if row else 0

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        lock_key = f"gateway.demo:{self.schema}"
        self.conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (lock_key,))
        try:
            yield
        finally:
            self.conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (lock_key,))

    def replace_data(self, data: DemoData) -> None:
        # PostgreSQL DDL is transactional: readers see the old tables or the new, never none.
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            cur.execute("SELECT set_config('search_path', quote_ident(%s), true)", (self.schema,))
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

    def close(self) -> None:
        self.conn.close()


class _MysqlSession:
    def __init__(self, target: _Target) -> None:
        self.database = target.database
        # No database at connect time: the load creates it when it is missing.
        self.conn: pymysql.connections.Connection[Any] = pymysql.connect(
            host=target.host,
            port=target.port,
            user=target.user,
            password=target.password,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=_CONNECT_TIMEOUT_S,
        )

    def _table(self, name: str) -> str:
        return f"{_mysql_ident(self.database)}.{_mysql_ident(name)}"

    def _exists(self, table: str) -> bool:
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                "AND table_name = %s",
                (self.database, table),
            )
            return cur.fetchone() is not None

    def read_meta(self) -> dict[str, str]:
        if not self._exists(META_TABLE):
            return {}
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT `key`, value FROM {self._table(META_TABLE)}")  # noqa: S608
            return {str(k): str(v) for k, v in cur.fetchall()}

    def count_rows(self, table: str) -> int | None:
        if not self._exists(table):
            return None
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM {self._table(table)}")  # noqa: S608
            row = cur.fetchone()
        return int(row[0]) if row else 0

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        # Lock names are limited to 64 characters; a hash keeps long database names apart.
        digest = hashlib.sha256(self.database.encode()).hexdigest()[:40]
        name = f"gateway.demo.{digest}"
        with self.conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, %s)", (name, _LOCK_TIMEOUT_S))
            row = cur.fetchone()
        if not row or row[0] != 1:
            raise BackendUnavailableError(
                "another process is loading the demo database; try again later"
            )
        try:
            yield
        finally:
            with self.conn.cursor() as cur:
                cur.execute("SELECT RELEASE_LOCK(%s)", (name,))

    def replace_data(self, data: DemoData) -> None:
        db = _mysql_ident(self.database)
        with self.conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {db} {_MYSQL_TEXT}")
            cur.execute(f"USE {db}")
            # MySQL DDL commits implicitly; only the meta, written last, marks success.
            for stmt in (*_drop_statements(), *table_ddl("mysql")):
                cur.execute(stmt)
            self.conn.begin()
            for spec, rows in data.tables():
                marks = ", ".join("%s" for _ in spec.columns)
                insert = f"INSERT INTO {spec.name} VALUES ({marks})"  # noqa: S608
                # PyMySQL turns executemany of one VALUES tuple into multi-row INSERTs.
                for start in range(0, len(rows), _MYSQL_BATCH_ROWS):
                    cur.executemany(insert, rows[start : start + _MYSQL_BATCH_ROWS])
            self.conn.commit()
            for stmt in index_ddl("mysql"):
                cur.execute(stmt)
            cur.executemany(_META_INSERT_MYSQL, _meta_items(data))

    def close(self) -> None:
        self.conn.close()


def _mysql_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


_DRIVER_ERRORS: tuple[type[Exception], ...] = (
    sqlite3.Error,
    duckdb.Error,
    psycopg.Error,
    pymysql.err.MySQLError,
)
_OPEN_ERRORS: tuple[type[Exception], ...] = (*_DRIVER_ERRORS, OSError)


def _open(target: _Target) -> _Session:
    """Connect; raises BackendUnavailableError when the target cannot be reached."""
    factories: dict[BackendKind, Callable[[_Target], _Session]] = {
        "sqlite": _SqliteSession,
        "duckdb": _DuckdbSession,
        "postgres": _PostgresSession,
        "mysql": _MysqlSession,
    }
    try:
        return factories[target.kind](target)
    except _OPEN_ERRORS as exc:
        raise BackendUnavailableError(
            f"cannot open the demo database ({target.describe()})",
            internal_detail=f"{type(exc).__name__}: {exc}",
        ) from exc


@contextmanager
def _session(dsn: str) -> Iterator[_Session]:
    target = _parse_dsn(dsn)
    session = _open(target)
    try:
        yield session
    except _DRIVER_ERRORS as exc:
        raise BackendQueryError(
            f"the demo database ({target.describe()}) refused a statement while loading",
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
