"""Shared fixtures: paths, and DSNs of the real database services.

Tests that need PostgreSQL or MariaDB take the ``pg_dsn`` / ``mysql_dsn`` fixtures. When
the service is unreachable they skip with the reason, unless GATEWAY_REQUIRE_SERVICES=1
(as in CI), which turns the skip into a failure so a missing service can't hide.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_MYSQL_DSN = "mysql://root@127.0.0.1:3306/test"


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
        import psycopg

        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        _unavailable("PostgreSQL", exc)
    return dsn


@pytest.fixture(scope="session")
def mysql_dsn() -> str:
    dsn = os.environ.get("GATEWAY_TEST_MYSQL_DSN", DEFAULT_MYSQL_DSN)
    try:
        from urllib.parse import urlparse

        import pymysql

        u = urlparse(dsn)
        conn = pymysql.connect(
            host=u.hostname or "127.0.0.1",
            port=u.port or 3306,
            user=u.username or "root",
            password=u.password or "",
            database=(u.path or "/test").lstrip("/"),
            connect_timeout=3,
        )
        conn.close()
    except Exception as exc:
        _unavailable("MariaDB/MySQL", exc)
    return dsn
