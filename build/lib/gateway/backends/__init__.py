"""Backends: where the rewritten SQL runs (SQLite, PostgreSQL, MariaDB/MySQL, DuckDB).

``load_backend_configs`` reads ``backends.toml``; ``open_backend`` turns one entry into a
:class:`Backend`. See :mod:`gateway.backends.base` for what every backend guarantees.
``connect_writable`` opens one writable connection for a loader (the demo data), from the
same DSN and with the same connection settings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gateway.backends.base import Backend, BackendResult
from gateway.backends.config import KINDS, BackendConfig, load_backend_configs
from gateway.backends.writable import WritableConnection, connect_writable
from gateway.dsn import parse_dsn
from gateway.errors import ConfigurationError

__all__ = [
    "KINDS",
    "Backend",
    "BackendConfig",
    "BackendResult",
    "WritableConnection",
    "connect_writable",
    "load_backend_configs",
    "open_backend",
]


def open_backend(
    config: BackendConfig,
    *,
    sqlite_functions: Sequence[tuple[str, int, Callable[..., Any]]] = (),
    pool_size: int = 4,
) -> Backend:
    """Create the backend ``config`` describes. Cheap and offline: no connection is made
    until the first ``execute`` or ``ping``, so a database that is down at start-up
    does not stop the gateway (its queries get BackendUnavailableError meanwhile).

    ``sqlite_functions`` (name, number of arguments, function) are registered as
    deterministic SQL functions on SQLite connections; other kinds have their own
    built-ins and ignore them. ``pool_size`` bounds the connections (DuckDB: cursors),
    hence the concurrent queries, per backend.

    Raises ConfigurationError for an unknown kind, a kind that disagrees with the DSN,
    or a malformed DSN.
    """
    if config.kind not in KINDS:
        raise ConfigurationError(f"backend {config.name!r}: unknown kind {config.kind!r}")
    dsn = parse_dsn(config.dsn, kinds=KINDS, what=f"backend {config.name!r}")
    if dsn.kind != config.kind:
        raise ConfigurationError(
            f"backend {config.name!r} is declared {config.kind} but its DSN names {dsn.kind}"
        )
    # Driver modules are imported on demand: a SQLite-only gateway never loads the rest.
    if dsn.kind == "sqlite":
        from gateway.backends.sqlite import SQLiteBackend

        return SQLiteBackend(config.name, dsn.path, functions=sqlite_functions, pool_size=pool_size)
    if dsn.kind == "duckdb":
        from gateway.backends.duckdb import DuckDBBackend

        return DuckDBBackend(config.name, dsn.path, pool_size=pool_size)
    if dsn.kind == "postgres":
        from gateway.backends.postgres import PostgresBackend

        return PostgresBackend(config.name, dsn.text, pool_size=pool_size)
    from gateway.backends.mysql import MySQLBackend

    return MySQLBackend(config.name, dsn.text, pool_size=pool_size)
