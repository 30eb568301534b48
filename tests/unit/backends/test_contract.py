"""The Backend contract, checked on every engine (SQLite, DuckDB, PostgreSQL, MariaDB)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest

from gateway.backends import Backend, BackendResult
from gateway.errors import (
    BackendQueryError,
    BackendUnavailableError,
    QueryTimeoutError,
    TypeMismatchError,
)
from tests.unit.backends.support import PEOPLE, SCHEMA, Target

OpenTarget = Callable[..., Backend]

# A query that runs for seconds (or far longer) unless stopped, per engine.
SLOW_QUERIES = {
    "sqlite": [
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000000) "
        "SELECT count(*) FROM r",
        "SELECT count(*) FROM people a, people b, people c, people d, people e, people f, "
        "people g, people h, people i, people j, people k, people l, people m",
    ],
    "duckdb": [
        "SELECT count(*) FROM range(100000) a, range(100000) b WHERE a.range + b.range = 7",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000000) "
        "SELECT count(*) FROM r",
    ],
    "postgres": [
        "SELECT pg_sleep(3)",
        "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b",
    ],
    "mysql": [
        "SELECT SLEEP(3)",
        "SELECT count(*) FROM information_schema.columns a, information_schema.columns b, "
        "information_schema.columns c",
        # Interrupted BENCHMARK() returns 0 instead of failing: the clock must catch it.
        "SELECT BENCHMARK(10000000000, MD5('a'))",
    ],
}

# An error whose database message quotes a value; that value must stay out of `detail`.
SECRET = "secret-value-123"
ECHOING_QUERIES = {
    "sqlite": f"SELECT [{SECRET}] FROM people",  # no such column: secret-value-123
    "duckdb": f"SELECT CAST('{SECRET}' AS INTEGER)",
    "postgres": f"SELECT CAST('{SECRET}' AS INTEGER)",
    "mysql": f"SELECT `{SECRET}` FROM people",  # Unknown column 'secret-value-123'
}


# Statements that would loosen the session for later queries on the same connection.
SESSION_TAMPERING = {
    "sqlite": ["PRAGMA query_only = OFF", "PRAGMA busy_timeout = 0"],
    "duckdb": ["SET enable_external_access = true", "SET threads = 1"],
    "postgres": [
        "SET default_transaction_read_only = off",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        "SET statement_timeout = 0",
    ],
    "mysql": [
        "SET SESSION TRANSACTION READ WRITE",
        "SET SESSION max_statement_time = 0",
        "SELECT 1 INTO @x",
    ],
}


def count_people(backend: Backend, target: Target) -> int:
    result = backend.execute(f"SELECT count(*) FROM {target.people}", max_rows=2, timeout_s=5)
    return int(result.rows[0][0])


def test_select_returns_chinese_text_dates_and_column_names(
    backend: Backend, target: Target
) -> None:
    result = backend.execute(
        f"SELECT id, name, birth, city FROM {target.people} ORDER BY id",
        max_rows=100,
        timeout_s=5,
    )
    assert isinstance(result, BackendResult)
    assert result.columns == ("id", "name", "birth", "city")
    expected: list[tuple[object, ...]] = list(PEOPLE)
    if target.kind == "sqlite":
        # SQLite has no date type: raw driver values are the stored ISO strings.
        expected = [(i, n, b.isoformat(), c) for i, n, b, c in PEOPLE]
    assert result.rows == expected
    assert all(isinstance(row, tuple) for row in result.rows)
    if target.kind != "sqlite":
        assert isinstance(result.rows[0][2], date)
    assert 0 < result.elapsed_s < 5


def test_kind_and_dialect(backend: Backend, target: Target) -> None:
    assert isinstance(backend, Backend)
    assert backend.kind == target.kind
    assert backend.dialect == target.kind


def test_max_rows_truncates(backend: Backend, target: Target) -> None:
    sql = f"SELECT id FROM {target.people} ORDER BY id"
    assert backend.execute(sql, max_rows=3, timeout_s=5).rows == [(1,), (2,), (3,)]
    assert len(backend.execute(sql, max_rows=5, timeout_s=5).rows) == 5
    empty = backend.execute(sql, max_rows=0, timeout_s=5)
    assert empty.rows == []
    assert empty.columns == ("id",)


def test_empty_result_keeps_column_names(backend: Backend, target: Target) -> None:
    result = backend.execute(
        f"SELECT id, name FROM {target.people} WHERE id < 0", max_rows=10, timeout_s=5
    )
    assert result.columns == ("id", "name")
    assert result.rows == []


def test_percent_signs_reach_the_database_untouched(backend: Backend, target: Target) -> None:
    result = backend.execute(
        f"SELECT name FROM {target.people} WHERE name LIKE '张%' ORDER BY id",
        max_rows=10,
        timeout_s=5,
    )
    assert result.rows == [("张三",), ("张伟",)]
    literal = backend.execute(
        # '!' escapes: a backslash is itself an escape character in MySQL string literals.
        f"SELECT city, '%s %d %%' AS fmt FROM {target.people} WHERE city LIKE '100!%%' ESCAPE '!'",
        max_rows=10,
        timeout_s=5,
    )
    assert literal.rows == [("100% 成都", "%s %d %%")]


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO {people} VALUES (99, 'x', NULL, 'y')",
        "UPDATE {people} SET name = 'x'",
        "DELETE FROM {people}",
        "DROP TABLE {people}",
        "CREATE TABLE {schema}evil (a INTEGER)",
    ],
)
def test_writes_are_refused_even_as_raw_sql(
    backend: Backend, target: Target, statement: str
) -> None:
    schema = f"{SCHEMA}." if target.kind == "postgres" else ""
    with pytest.raises(BackendQueryError):
        backend.execute(
            statement.format(people=target.people, schema=schema), max_rows=10, timeout_s=5
        )
    assert count_people(backend, target) == len(PEOPLE)


@pytest.mark.parametrize(
    "sql", ["SELECT 1; SELECT 2", "SELECT 1; DELETE FROM {people}"], ids=["two", "delete"]
)
def test_several_statements_are_refused(backend: Backend, target: Target, sql: str) -> None:
    with pytest.raises(BackendQueryError):
        backend.execute(sql.format(people=target.people), max_rows=10, timeout_s=5)
    assert count_people(backend, target) == len(PEOPLE)


def test_session_changes_are_refused_and_do_not_reach_later_queries(
    target: Target, open_target: OpenTarget
) -> None:
    # One connection: whatever the statement changed would be seen by the next query.
    backend = open_target(target, pool_size=1)
    for statement in SESSION_TAMPERING[target.kind]:
        with pytest.raises(BackendQueryError):
            backend.execute(statement, max_rows=10, timeout_s=5)
        with pytest.raises(BackendQueryError):
            backend.execute(
                f"INSERT INTO {target.people} VALUES (98, 'x', NULL, 'y')",
                max_rows=10,
                timeout_s=5,
            )
        with pytest.raises(QueryTimeoutError):
            backend.execute(SLOW_QUERIES[target.kind][0], max_rows=1, timeout_s=0.2)
    assert count_people(backend, target) == len(PEOPLE)


def test_error_detail_never_echoes_database_text(backend: Backend, target: Target) -> None:
    # A value the query cannot convert is the consumer's to fix: a 422 (TypeMismatchError).
    with pytest.raises((BackendQueryError, TypeMismatchError)) as caught:
        backend.execute(ECHOING_QUERIES[target.kind], max_rows=10, timeout_s=5)
    error = caught.value
    assert SECRET not in error.detail
    assert SECRET not in str(error)
    assert SECRET not in repr(error.extra)
    # The database's message is kept for the audit log.
    assert error.internal_detail is not None
    assert SECRET in error.internal_detail
    assert error.detail.startswith(
        ("The backend could not run the rewritten query (", "A value could not be converted")
    )


#: Words that would tell a consumer which engine is behind the gateway.
ENGINE_WORDS = re.compile(r"sqlite|postgres|psql|pg_|maria|mysql|duckdb|error \d{4}", re.I)


def test_error_detail_never_names_the_engine(backend: Backend, target: Target) -> None:
    """A syntax error, an unknown function and a data error, on every engine: the detail
    says what kind of error it was, never which engine said so (the audit record does)."""
    failing = (
        "SELECT FROM WHERE",
        "SELECT no_such_function_gw(1)",
        ECHOING_QUERIES[target.kind],
    )
    for sql in failing:
        with pytest.raises((BackendQueryError, TypeMismatchError)) as caught:
            backend.execute(sql, max_rows=10, timeout_s=5)
        assert not ENGINE_WORDS.search(caught.value.detail), caught.value.detail
        assert caught.value.internal_detail


@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_error_detail_never_echoes_a_value_read_from_the_table(
    request: pytest.FixtureRequest, open_target: OpenTarget, kind: str
) -> None:
    if kind == "postgres":
        request.applymarker(pytest.mark.services)
    target: Target = request.getfixturevalue(f"{kind}_target")
    backend = open_target(target)
    with pytest.raises(TypeMismatchError) as caught:
        backend.execute(
            f"SELECT CAST(name AS INTEGER) FROM {target.people} ORDER BY id",
            max_rows=10,
            timeout_s=5,
        )
    assert "张三" not in caught.value.detail
    assert "张三" in (caught.value.internal_detail or "")


def test_slow_queries_time_out_promptly_and_the_connection_survives(
    target: Target, open_target: OpenTarget
) -> None:
    # One connection, so the follow-up query proves the interrupted one left it usable.
    backend = open_target(target, pool_size=1)
    for sql in SLOW_QUERIES[target.kind]:
        started = time.monotonic()
        with pytest.raises(QueryTimeoutError) as caught:
            backend.execute(sql, max_rows=10, timeout_s=0.3)
        elapsed = time.monotonic() - started
        assert 0.29 <= elapsed < 1.5, (sql, elapsed)
        assert "0.3 s" in caught.value.detail
        assert count_people(backend, target) == len(PEOPLE)


def test_concurrent_queries_from_eight_threads(backend: Backend, target: Target) -> None:
    barrier = threading.Barrier(8)

    def worker(seed: int) -> list[int]:
        barrier.wait()
        counts = []
        for i in range(25):
            k = (seed + i) % 5 + 1
            result = backend.execute(
                f"SELECT count(*) FROM {target.people} WHERE id <= {k}", max_rows=2, timeout_s=10
            )
            counts.append(int(result.rows[0][0]) - k)
        return counts

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(worker, range(8)))
    assert results == [[0] * 25] * 8


def test_ping_and_close(target: Target, open_target: OpenTarget) -> None:
    backend = open_target(target)
    backend.ping()
    backend.execute("SELECT 1", max_rows=1, timeout_s=5)
    backend.close()
    backend.close()  # idempotent
    with pytest.raises(BackendUnavailableError):
        backend.execute("SELECT 1", max_rows=1, timeout_s=5)


@pytest.mark.parametrize(
    ("max_rows", "timeout_s"), [(-1, 1.0), (1, 0.0), (1, -2.0), (1, float("inf"))]
)
def test_invalid_limits_are_programming_errors(
    backend: Backend, max_rows: int, timeout_s: float
) -> None:
    with pytest.raises(ValueError, match="must be"):
        backend.execute("SELECT 1", max_rows=max_rows, timeout_s=timeout_s)
