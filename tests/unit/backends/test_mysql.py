"""MariaDB/MySQL-specific guarantees: read-only session, the three time-limit layers,
incomplete results, stale connections, down servers and DSN errors (the parsing itself is
tested in tests/unit/test_dsn.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pymysql
import pytest

from gateway.backends import Backend, BackendConfig, open_backend
from gateway.dsn import parse_dsn
from gateway.errors import (
    BackendQueryError,
    BackendUnavailableError,
    ConfigurationError,
    QueryTimeoutError,
)
from tests.unit.backends.support import Target

OpenTarget = Callable[..., Backend]

services = pytest.mark.services


@services
def test_session_is_read_only_and_time_limited(
    mysql_target: Target, open_target: OpenTarget
) -> None:
    backend = open_target(mysql_target)
    result = backend.execute(
        "SELECT @@session.tx_read_only, @@session.max_statement_time, @@character_set_client",
        max_rows=1,
        timeout_s=2,
    )
    read_only, limit, charset = result.rows[0]
    assert read_only == 1
    assert 1.9 < float(limit) <= 2.0
    assert charset == "utf8mb4"


@services
def test_the_server_limit_fires_first(mysql_target: Target, open_target: OpenTarget) -> None:
    backend = open_target(mysql_target)
    with pytest.raises(QueryTimeoutError) as caught:
        backend.execute("SELECT SLEEP(3)", max_rows=1, timeout_s=0.3)
    assert "1969" in (caught.value.internal_detail or "")


@services
def test_the_socket_backstop_fires_when_the_server_limit_is_bypassed(
    mysql_target: Target, open_target: OpenTarget
) -> None:
    # MariaDB's per-statement override switches the server-side limit off for this one
    # statement: only the socket read timeout (limit + 0.5 s) is left to stop it.
    backend = open_target(mysql_target, pool_size=1)
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError):
        backend.execute(
            "SET STATEMENT max_statement_time = 0 FOR SELECT SLEEP(3)", max_rows=1, timeout_s=0.3
        )
    assert 0.7 < time.monotonic() - started < 1.5
    # The abandoned connection was dropped; the next query gets a fresh one.
    assert backend.execute("SELECT 1", max_rows=1, timeout_s=5).rows == [(1,)]


@services
def test_a_function_that_swallows_the_interrupt_still_times_out(
    mysql_target: Target, open_target: OpenTarget
) -> None:
    backend = open_target(mysql_target)
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError):
        backend.execute("SELECT BENCHMARK(10000000000, MD5('a'))", max_rows=1, timeout_s=0.3)
    assert time.monotonic() - started < 1.5


@services
def test_a_recursion_cut_short_by_the_server_is_not_returned(
    mysql_target: Target, open_target: OpenTarget
) -> None:
    backend = open_target(mysql_target)
    (limit,) = backend.execute("SELECT @@max_recursive_iterations", max_rows=1, timeout_s=5).rows[0]
    if int(limit) > 1_000_000:
        pytest.skip(f"max_recursive_iterations is {limit}: no cheap way to reach it")
    with pytest.raises(BackendQueryError) as caught:
        backend.execute(
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r"
            f" WHERE n < {limit + 10}) SELECT count(*) FROM r",
            max_rows=1,
            timeout_s=5,
        )
    assert "incomplete" in caught.value.detail


@services
def test_a_killed_pooled_connection_is_replaced_transparently(
    mysql_target: Target, open_target: OpenTarget, mysql_dsn: str
) -> None:
    backend = open_target(mysql_target, pool_size=1)
    (conn_id,) = backend.execute("SELECT CONNECTION_ID()", max_rows=1, timeout_s=5).rows[0]
    params = parse_dsn(mysql_dsn).mysql_params()
    admin = pymysql.connect(
        host=params.host, port=params.port, user=params.user, password=params.password
    )
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"KILL {int(conn_id)}")
    finally:
        admin.close()
    time.sleep(0.05)
    (new_id,) = backend.execute("SELECT CONNECTION_ID()", max_rows=1, timeout_s=5).rows[0]
    assert new_id != conn_id


def test_unreachable_server_fails_fast() -> None:
    backend = open_backend(BackendConfig("down", "mysql", "mysql://root@127.0.0.1:1/test"))
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError) as caught:
            backend.execute("SELECT 1", max_rows=1, timeout_s=5)
        with pytest.raises(BackendUnavailableError):
            backend.ping()
        assert time.monotonic() - started < 4
        assert "127.0.0.1" not in caught.value.detail
        assert "2003" in (caught.value.internal_detail or "")
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("mysql://u:pw@h:notaport/db", "port"),
        ("mysql://u:pw@h/", "one database"),
        ("mysql://u:pw@h/db?charset=latin1", "unknown option"),
        ("mysql://u:pw@h/db?ssl_verify_cert=maybe", "true or false"),
        ("mysql://u:pw@h/db?connect_timeout=soon", "connect_timeout"),
    ],
)
def test_bad_dsns_are_configuration_errors(dsn: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        open_backend(BackendConfig("bad", "mysql", dsn))
    assert "pw" not in str(caught.value)
