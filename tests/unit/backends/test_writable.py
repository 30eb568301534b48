"""connect_writable: the loaders' connection, made from the backends' DSN and settings."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pymysql
import pytest

from gateway.backends import connect_writable
from gateway.backends.writable import describe_location
from gateway.dsn import parse_dsn
from gateway.errors import BackendUnavailableError, ConfigurationError
from tests.conftest import Scratch

services = pytest.mark.services


def _scalar(conn: Any, query: str) -> Any:
    cursor = conn.cursor()
    try:
        cursor.execute(query)
        return cursor.fetchone()[0]
    finally:
        cursor.close()


def test_sqlite_creates_its_directories_and_can_write(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "x.sqlite"
    conn = connect_writable(parse_dsn(f"sqlite:{path}"), what="the test database")
    try:
        assert isinstance(conn, sqlite3.Connection)
        assert conn.isolation_level is None  # autocommit: the loader begins its own
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")
    finally:
        conn.close()
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT x FROM t").fetchall() == [(1,)]
    check.close()


def test_duckdb_creates_its_directories_and_can_write(tmp_path: Path) -> None:
    path = tmp_path / "d" / "x.duckdb"
    conn = connect_writable(parse_dsn(f"duckdb:{path}"), what="the test database")
    try:
        assert isinstance(conn, duckdb.DuckDBPyConnection)
        conn.execute("CREATE TABLE t AS SELECT 42 AS x")
        assert _scalar(conn, "SELECT x FROM t") == 42
    finally:
        conn.close()
    assert path.is_file()


@services
def test_postgres_is_writable_named_and_in_the_dsn_schema(pg_dsn: str, scratch: Scratch) -> None:
    schema = scratch.pg_schema(pg_dsn, "t_writable")
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    sep = "&" if "?" in pg_dsn else "?"
    conn = connect_writable(parse_dsn(f"{pg_dsn}{sep}schema={schema}"), what="the test database")
    try:
        assert isinstance(conn, psycopg.Connection)
        assert conn.autocommit
        assert _scalar(conn, "SELECT current_schema()") == schema
        assert _scalar(conn, "SELECT current_setting('default_transaction_read_only')") == "off"
        assert _scalar(conn, "SELECT current_setting('application_name')") == "gateway"
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (7)")
        assert _scalar(conn, f"SELECT x FROM {schema}.t") == 7
    finally:
        conn.close()


@services
def test_mysql_connects_without_selecting_the_database(mysql_dsn: str) -> None:
    # The loader creates the database; it may not exist when it connects.
    missing = mysql_dsn.rsplit("/", 1)[0] + "/no_such_database_here"
    conn = connect_writable(parse_dsn(missing), what="the test database")
    try:
        assert isinstance(conn, pymysql.connections.Connection)
        assert _scalar(conn, "SELECT DATABASE()") is None
        assert _scalar(conn, "SELECT @@session.tx_read_only") == 0
        assert _scalar(conn, "SELECT @@character_set_client") == "utf8mb4"
    finally:
        conn.close()


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://demo:s3cr3t-pw@127.0.0.1:1/test?connect_timeout=2",
        "mariadb://demo:s3cr3t-pw@127.0.0.1:1/test",
    ],
)
def test_an_unreachable_server_is_unavailable_without_the_password(dsn: str) -> None:
    with pytest.raises(BackendUnavailableError) as caught:
        connect_writable(parse_dsn(dsn), what="the test database")
    assert caught.value.detail.startswith("cannot open the test database (")
    assert "s3cr3t" not in caught.value.detail
    assert "127.0.0.1:1" in caught.value.detail
    assert caught.value.internal_detail


def test_an_unopenable_file_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    with pytest.raises(BackendUnavailableError, match="cannot open the test database"):
        connect_writable(parse_dsn(f"sqlite:{blocker}/x.sqlite"), what="the test database")


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("memory:", "cannot be loaded"),
        ("mysql://u:s3cr3t@h/db?charset=latin1", "unknown option"),
        ("postgresql://u:s3cr3t@h/db?no_such_option=1", "malformed PostgreSQL DSN"),
    ],
)
def test_bad_dsns_are_configuration_errors(dsn: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        connect_writable(parse_dsn(dsn, what="target"), what="the test database")
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("sqlite:/srv/x.sqlite", "sqlite file /srv/x.sqlite"),
        ("duckdb:/srv/x.duckdb", "duckdb file /srv/x.duckdb"),
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("mariadb://u@h/db", "mariadb://u@h/db"),
    ],
)
def test_describe_location_hides_the_password(dsn: str, shown: str) -> None:
    assert describe_location(parse_dsn(dsn)) == shown
