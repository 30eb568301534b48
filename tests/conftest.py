"""Shared fixtures: paths, and DSNs of the real database services.

Tests that need PostgreSQL or MariaDB take the ``pg_dsn`` / ``mysql_dsn`` fixtures. When
the service is unreachable they skip with the reason, unless GATEWAY_REQUIRE_SERVICES=1
(as in CI), which turns the skip into a failure so a missing service can't hide.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pymysql
import pytest

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_MYSQL_DSN = "mysql://root@127.0.0.1:3306/test"

#: One token per test run. Every schema or database a test creates on a shared server is
#: named ``<prefix>_<RUN_ID>`` (see :func:`run_scoped`), so two runs on one server never
#: collide, and the ``scratch`` fixture drops them when the session ends.
RUN_ID = secrets.token_hex(4)


def run_scoped(prefix: str) -> str:
    """``prefix`` made unique to this test run (a valid unquoted SQL identifier)."""
    return f"{prefix}_{RUN_ID}"


def _require_services() -> bool:
    return os.environ.get("GATEWAY_REQUIRE_SERVICES") == "1"


def _unavailable(what: str, exc: Exception) -> None:
    reason = f"{what} not reachable ({type(exc).__name__}: {exc})"
    if _require_services():
        pytest.fail(f"{reason}; GATEWAY_REQUIRE_SERVICES=1 forbids skipping", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def root_dir() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def policy_dir() -> Path:
    return ROOT / "policies"


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    dsn = os.environ.get("GATEWAY_TEST_PG_DSN", DEFAULT_PG_DSN)
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        _unavailable("PostgreSQL", exc)
    return dsn


@pytest.fixture(scope="session")
def mysql_dsn() -> str:
    dsn = os.environ.get("GATEWAY_TEST_MYSQL_DSN", DEFAULT_MYSQL_DSN)
    try:
        mysql_connect(dsn, urlsplit(dsn).path.lstrip("/") or "test").close()
    except Exception as exc:
        _unavailable("MariaDB/MySQL", exc)
    return dsn


def mysql_connect(dsn: str, database: str | None = None) -> pymysql.connections.Connection[Any]:
    """A PyMySQL connection (autocommit, utf8mb4) from a ``mysql://`` DSN."""
    u = urlsplit(dsn)
    return pymysql.connect(
        host=u.hostname or "127.0.0.1",
        port=u.port or 3306,
        user=u.username or "root",
        password=u.password or "",
        database=database,
        charset="utf8mb4",
        autocommit=True,
        connect_timeout=3,
    )


class Scratch:
    """Schemas (PostgreSQL) and databases (MariaDB) created for this run, dropped at the
    end of the session."""

    def __init__(self) -> None:
        self._pg: list[tuple[str, str]] = []
        self._mysql: list[tuple[str, str]] = []

    def pg_schema(self, dsn: str, prefix: str) -> str:
        name = run_scoped(prefix)
        if (dsn, name) not in self._pg:
            self._pg.append((dsn, name))
        return name

    def mysql_database(self, dsn: str, prefix: str) -> str:
        name = run_scoped(prefix)
        if (dsn, name) not in self._mysql:
            self._mysql.append((dsn, name))
        return name

    def drop_all(self) -> None:
        for dsn, schema in self._pg:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        for dsn, database in self._mysql:
            my = mysql_connect(dsn)
            try:
                with my.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
            finally:
                my.close()


@pytest.fixture(scope="session")
def scratch() -> Iterator[Scratch]:
    names = Scratch()
    yield names
    names.drop_all()
