"""Fixtures for the backend tests: the same small ``people`` table on every engine.

PostgreSQL data lives in schema ``t_backends_<run>`` and MariaDB data in database
``t_backends_<run>`` (dropped after the session), so that other test runs on the same
servers are not disturbed. SQLite and DuckDB use files under a temporary directory.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import duckdb
import psycopg
import pymysql
import pytest

from gateway.backends import Backend
from tests.conftest import Scratch
from tests.unit.backends.support import KINDS, PEOPLE, SCHEMA, Target, dsn_with_database


@pytest.fixture(scope="session")
def sqlite_target(tmp_path_factory: pytest.TempPathFactory) -> Target:
    path = tmp_path_factory.mktemp("sqlite") / "people.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, birth DATE, city TEXT)"
        )
        conn.executemany(
            "INSERT INTO people VALUES (?, ?, ?, ?)",
            [(i, n, b.isoformat(), c) for i, n, b, c in PEOPLE],
        )
    conn.close()
    return Target("sqlite", f"sqlite:{path}", "people")


@pytest.fixture(scope="session")
def duckdb_target(tmp_path_factory: pytest.TempPathFactory) -> Target:
    path = tmp_path_factory.mktemp("duckdb") / "people.duckdb"
    conn = duckdb.connect(str(path))
    try:
        conn.execute(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, name VARCHAR, birth DATE, city VARCHAR)"
        )
        conn.executemany("INSERT INTO people VALUES (?, ?, ?, ?)", PEOPLE)
    finally:
        conn.close()
    return Target("duckdb", f"duckdb:{path}", "people")


@pytest.fixture(scope="session")
def postgres_target(pg_dsn: str, scratch: Scratch) -> Target:
    scratch.pg_schema(pg_dsn, "t_backends")
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        conn.execute(f"DROP TABLE IF EXISTS {SCHEMA}.people")
        conn.execute(
            f"CREATE TABLE {SCHEMA}.people "
            "(id integer PRIMARY KEY, name text, birth date, city text)"
        )
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {SCHEMA}.people VALUES (%s, %s, %s, %s)", PEOPLE)
    return Target("postgres", pg_dsn, f"{SCHEMA}.people")


@pytest.fixture(scope="session")
def mysql_target(mysql_dsn: str, scratch: Scratch) -> Target:
    scratch.mysql_database(mysql_dsn, "t_backends")
    parts = urlsplit(mysql_dsn)
    conn = pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        charset="utf8mb4",
        autocommit=True,
    )
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {SCHEMA} CHARACTER SET utf8mb4")
            cur.execute(f"DROP TABLE IF EXISTS {SCHEMA}.people")
            cur.execute(
                f"CREATE TABLE {SCHEMA}.people "
                "(id INT PRIMARY KEY, name VARCHAR(100), birth DATE, city VARCHAR(100))"
            )
            cur.executemany(f"INSERT INTO {SCHEMA}.people VALUES (%s, %s, %s, %s)", PEOPLE)
    finally:
        conn.close()
    return Target("mysql", dsn_with_database(mysql_dsn, SCHEMA), "people")


@pytest.fixture(params=KINDS)
def target(request: pytest.FixtureRequest) -> Target:
    """Each engine in turn; PostgreSQL and MariaDB skip when their server is absent
    (unless GATEWAY_REQUIRE_SERVICES=1)."""
    if request.param in {"postgres", "mysql"}:
        request.applymarker(pytest.mark.services)
    value: Target = request.getfixturevalue(f"{request.param}_target")
    return value


@pytest.fixture
def open_target() -> Iterator[Callable[..., Backend]]:
    """``open_target(target, **kwargs)``: open a backend, closed after the test."""
    opened: list[Backend] = []

    def factory(
        target: Target,
        *,
        pool_size: int = 4,
        sqlite_functions: Sequence[tuple[str, int, Callable[..., Any]]] = (),
    ) -> Backend:
        backend = target.open(pool_size=pool_size, sqlite_functions=sqlite_functions)
        opened.append(backend)
        return backend

    yield factory
    for backend in opened:
        backend.close()


@pytest.fixture
def backend(target: Target, open_target: Callable[..., Backend]) -> Backend:
    return open_target(target)
