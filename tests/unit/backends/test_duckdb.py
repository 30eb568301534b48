"""DuckDB-specific guarantees: no file or network access, locked configuration, one
SELECT per call, lazy open."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from gateway.backends import Backend
from gateway.errors import BackendQueryError, BackendUnavailableError, QueryTimeoutError
from tests.unit.backends.support import Target

OpenTarget = Callable[..., Backend]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM '/etc/passwd'",
        'SELECT * FROM "/etc/passwd"',
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_csv_auto('/etc/passwd', header = false)",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM read_parquet('https://example.invalid/x.parquet')",
    ],
)
def test_files_and_urls_are_out_of_reach(
    duckdb_target: Target, open_target: OpenTarget, sql: str
) -> None:
    backend = open_target(duckdb_target)
    with pytest.raises(BackendQueryError) as caught:
        backend.execute(sql, max_rows=100, timeout_s=5)
    assert "root:" not in (caught.value.internal_detail or "")
    assert "root:" not in caught.value.detail


@pytest.mark.parametrize(
    "sql",
    [
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "COPY people TO '{out}'",
        "ATTACH '{out}' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "EXPORT DATABASE '{dir}'",
        "PRAGMA version",
        "EXPLAIN SELECT 1",
    ],
)
def test_only_select_statements_run(
    duckdb_target: Target, open_target: OpenTarget, tmp_path: Path, sql: str
) -> None:
    out = tmp_path / "out.csv"
    backend = open_target(duckdb_target)
    with pytest.raises(BackendQueryError):
        backend.execute(sql.format(out=out, dir=tmp_path / "dump"), max_rows=10, timeout_s=5)
    assert not out.exists()
    assert not (tmp_path / "dump").exists()


def test_the_configuration_is_locked_even_for_a_select_on_the_same_cursor(
    duckdb_target: Target, open_target: OpenTarget
) -> None:
    backend = open_target(duckdb_target, pool_size=1)
    result = backend.execute(
        "SELECT current_setting('enable_external_access'), current_setting('lock_configuration')",
        max_rows=1,
        timeout_s=5,
    )
    assert result.rows == [(False, True)]


def test_interrupt_does_not_leak_into_the_next_query(
    duckdb_target: Target, open_target: OpenTarget
) -> None:
    backend = open_target(duckdb_target, pool_size=1)
    for _ in range(3):
        with pytest.raises(QueryTimeoutError):
            backend.execute(
                "SELECT count(*) FROM range(100000) a, range(100000) b", max_rows=1, timeout_s=0.1
            )
        started = time.monotonic()
        assert backend.execute("SELECT 42", max_rows=1, timeout_s=5).rows == [(42,)]
        assert time.monotonic() - started < 1


def test_missing_file_is_unavailable_not_created(tmp_path: Path, open_target: OpenTarget) -> None:
    path = tmp_path / "absent.duckdb"
    backend = open_target(Target("duckdb", f"duckdb:{path}", "people"))
    with pytest.raises(BackendUnavailableError):
        backend.execute("SELECT 1", max_rows=1, timeout_s=5)
    with pytest.raises(BackendUnavailableError):
        backend.ping()
    assert not path.exists()


def test_a_file_opened_for_writing_elsewhere_is_unavailable(
    tmp_path: Path, open_target: OpenTarget
) -> None:
    path = tmp_path / "busy.duckdb"
    writer = duckdb.connect(str(path))
    try:
        writer.execute("CREATE TABLE t AS SELECT 1 AS a")
        backend = open_target(Target("duckdb", f"duckdb:{path}", "t"))
        with pytest.raises(BackendUnavailableError):
            backend.execute("SELECT a FROM t", max_rows=1, timeout_s=5)
    finally:
        writer.close()
