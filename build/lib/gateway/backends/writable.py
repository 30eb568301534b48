"""Writable connections, for loaders (``gateway demo-data``) rather than for queries.

The backends (:func:`gateway.backends.open_backend`) open read-only, pooled,
time-limited sessions; a loader needs the opposite: one connection that may create and
fill tables. It takes the same DSN (:mod:`gateway.dsn`) and is made with the same
connection settings as the backend of its kind, so one DSN serves both:

- PostgreSQL: the backend's arguments (:func:`~gateway.backends.postgres.postgres_connect_args`)
  without the read-only session defaults; ``?schema=`` is the ``search_path``.
- MariaDB/MySQL: the backend's PyMySQL settings (:func:`~gateway.backends.mysql.connect_mysql`:
  utf8mb4, TLS and timeouts from the DSN, no ``LOCAL INFILE``), but with no database
  selected, so a loader can create it.
- SQLite and DuckDB: the file, its parent directories created; SQLite in autocommit
  mode (a loader begins its own transactions) and waiting ``busy_timeout_s`` for a lock.

Drivers are imported on demand, as in :func:`~gateway.backends.open_backend`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

from gateway.dsn import Dsn, redact_dsn
from gateway.errors import BackendUnavailableError, ConfigurationError

if TYPE_CHECKING:
    import sqlite3

    import duckdb
    import psycopg
    import pymysql.connections

__all__ = ["WritableConnection", "connect_writable", "describe_location"]

#: What :func:`connect_writable` returns, by the DSN's kind: ``sqlite3.Connection``,
#: ``duckdb.DuckDBPyConnection``, ``psycopg.Connection`` or a PyMySQL connection.
WritableConnection: TypeAlias = (
    "sqlite3.Connection | duckdb.DuckDBPyConnection"
    " | psycopg.Connection[tuple[Any, ...]] | pymysql.connections.Connection[Any]"
)


def describe_location(dsn: Dsn) -> str:
    """Where ``dsn`` points, without credentials: safe for an error's public detail."""
    if dsn.kind in ("sqlite", "duckdb"):
        return f"{dsn.kind} file {dsn.path}"
    return redact_dsn(dsn.text)


def connect_writable(
    dsn: Dsn, *, what: str, busy_timeout_s: float = 300.0, connect_timeout_s: float = 10.0
) -> WritableConnection:
    """Open one writable connection to ``dsn`` (not ``memory:``).

    ``what`` names the target in messages (e.g. ``"the demo database"``);
    ``connect_timeout_s`` applies to PostgreSQL when its DSN sets none (MariaDB's comes
    from the DSN, 3 s by default). Raises ConfigurationError for a DSN its driver
    refuses, BackendUnavailableError when the database cannot be opened or reached (the
    location without its password in ``detail``, the driver's text in
    ``internal_detail``)."""
    try:
        return _connect(dsn, busy_timeout_s=busy_timeout_s, connect_timeout_s=connect_timeout_s)
    except (ConfigurationError, BackendUnavailableError):
        raise
    except Exception as exc:
        # Driver errors (and OSError from mkdir): the text may quote the DSN, so it
        # stays internal.
        raise BackendUnavailableError(
            f"cannot open {what} ({describe_location(dsn)})",
            internal_detail=f"{type(exc).__name__}: {exc}",
        ) from exc


def _connect(dsn: Dsn, *, busy_timeout_s: float, connect_timeout_s: float) -> WritableConnection:
    if dsn.kind == "sqlite":
        import sqlite3

        path = dsn.path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: the loader begins its transactions explicitly.
        return sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
    if dsn.kind == "duckdb":
        import duckdb

        path = dsn.path
        path.parent.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(str(path))
    if dsn.kind == "postgres":
        import psycopg

        from gateway.backends.postgres import postgres_connect_args

        conninfo, kwargs = postgres_connect_args(
            dsn, connect_timeout_s=connect_timeout_s, read_only=False
        )
        return psycopg.connect(conninfo, **kwargs)
    if dsn.kind == "mysql":
        from gateway.backends.mysql import connect_mysql

        return connect_mysql(dsn.mysql_params(), select_database=False)
    raise ConfigurationError(f"{dsn.what}: a {dsn.kind} location cannot be loaded")
