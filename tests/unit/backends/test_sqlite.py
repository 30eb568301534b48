"""SQLite-specific guarantees: read-only three ways, UDFs, lazy open, busy files."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.backends import Backend
from gateway.errors import BackendQueryError, BackendUnavailableError
from tests.unit.backends.support import Target

OpenTarget = Callable[..., Backend]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_registers_sqlite_functions_as_deterministic(
    sqlite_target: Target, open_target: OpenTarget
) -> None:
    calls: list[object] = []

    def twice(value: object) -> object:
        calls.append(value)
        return None if value is None else value * 2  # type: ignore[operator]

    backend = open_target(sqlite_target, sqlite_functions=[("gw_twice", 1, twice)])
    result = backend.execute("SELECT gw_twice(21), gw_twice(NULL)", max_rows=1, timeout_s=5)
    assert result.rows == [(42, None)]
    # SQLite evaluates a deterministic function of constants once per statement, not
    # once per row: 1 call over 5 rows proves deterministic=True was passed.
    calls.clear()
    rows = backend.execute("SELECT gw_twice(1) FROM people", max_rows=10, timeout_s=5).rows
    assert rows == [(2,)] * 5
    assert len(calls) == 1


@pytest.mark.parametrize(
    "sql",
    [
        "ATTACH DATABASE '{other}' AS other",
        "PRAGMA query_only = OFF",
        "PRAGMA writable_schema = ON",
        "BEGIN IMMEDIATE",
        "SELECT load_extension('/tmp/evil.so')",
        "CREATE TEMP TABLE t (a)",
        "VACUUM INTO '{other}'",
    ],
)
def test_session_and_file_statements_are_refused(
    sqlite_target: Target, open_target: OpenTarget, tmp_path: Path, sql: str
) -> None:
    path = Path(sqlite_target.dsn.removeprefix("sqlite:"))
    before = digest(path)
    other = tmp_path / "other.sqlite"
    backend = open_target(sqlite_target)
    with pytest.raises(BackendQueryError):
        backend.execute(sql.format(other=other), max_rows=1, timeout_s=5)
    assert not other.exists()
    assert digest(path) == before
    # The connection still refuses writes afterwards (query_only was not switched off).
    with pytest.raises(BackendQueryError):
        backend.execute("DELETE FROM people", max_rows=1, timeout_s=5)


def test_reads_the_schema_table(sqlite_target: Target, open_target: OpenTarget) -> None:
    backend = open_target(sqlite_target)
    result = backend.execute("SELECT name FROM sqlite_master", max_rows=5, timeout_s=5)
    assert ("people",) in result.rows


def test_missing_file_is_unavailable_not_created(tmp_path: Path, open_target: OpenTarget) -> None:
    path = tmp_path / "absent.sqlite"
    backend = open_target(Target("sqlite", f"sqlite:{path}", "people"))
    with pytest.raises(BackendUnavailableError) as caught:
        backend.execute("SELECT 1", max_rows=1, timeout_s=5)
    assert str(path) not in caught.value.detail
    with pytest.raises(BackendUnavailableError):
        backend.ping()
    assert not path.exists()


def test_a_file_that_is_not_a_database_is_unavailable(
    tmp_path: Path, open_target: OpenTarget
) -> None:
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    backend = open_target(Target("sqlite", f"sqlite:{path}", "people"))
    with pytest.raises(BackendUnavailableError):
        backend.ping()
    with pytest.raises(BackendUnavailableError):
        backend.execute("SELECT * FROM sqlite_master", max_rows=1, timeout_s=5)


def test_a_writer_holding_the_lock_makes_the_backend_briefly_unavailable(
    tmp_path: Path, open_target: OpenTarget
) -> None:
    path = tmp_path / "locked.sqlite"
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("CREATE TABLE t (a)")
        writer.execute("INSERT INTO t VALUES (1)")
        writer.execute("BEGIN EXCLUSIVE")
        backend = open_target(Target("sqlite", f"sqlite:{path}", "t"))
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError) as caught:
            backend.execute("SELECT a FROM t", max_rows=1, timeout_s=0.3)
        # The busy timeout follows the query's limit instead of SQLite's 5 s default.
        assert time.monotonic() - started < 1.5
        assert "SQLITE_BUSY" in (caught.value.internal_detail or "")
        writer.execute("COMMIT")
        assert backend.execute("SELECT a FROM t", max_rows=1, timeout_s=1).rows == [(1,)]
    finally:
        writer.close()


def test_relative_path_in_config_is_made_absolute(
    sqlite_target: Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.backends import BackendConfig, open_backend

    source = Path(sqlite_target.dsn.removeprefix("sqlite:"))
    monkeypatch.chdir(source.parent)
    backend = open_backend(BackendConfig("rel", "sqlite", f"sqlite:{source.name}"))
    try:
        monkeypatch.chdir(tmp_path)  # a later chdir must not move the backend
        assert backend.execute("SELECT count(*) FROM people", max_rows=1, timeout_s=5).rows == [
            (5,)
        ]
    finally:
        backend.close()
