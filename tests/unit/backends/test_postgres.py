"""PostgreSQL-specific guarantees: session settings, timeout source, stale connections,
down servers and DSN handling."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

import psycopg
import pytest

from gateway.backends import Backend, BackendConfig, open_backend
from gateway.backends.postgres import PostgresBackend
from gateway.errors import (
    BackendUnavailableError,
    ConfigurationError,
    QueryTimeoutError,
)
from tests.unit.backends.support import SCHEMA, Target

OpenTarget = Callable[..., Backend]

services = pytest.mark.services


def as_ms(setting: str) -> float:
    """PostgreSQL shows durations as ``2s`` or ``1996ms``."""
    if setting.endswith("ms"):
        return float(setting[:-2])
    assert setting.endswith("s"), setting
    return float(setting[:-1]) * 1000


@services
def test_session_is_read_only_named_and_time_limited(
    postgres_target: Target, open_target: OpenTarget
) -> None:
    backend = open_target(postgres_target)
    result = backend.execute(
        "SELECT current_setting('application_name'), current_setting('transaction_read_only'),"
        " current_setting('default_transaction_read_only'), current_setting('statement_timeout')",
        max_rows=1,
        timeout_s=2,
    )
    app, tx_ro, default_ro, timeout = result.rows[0]
    assert (app, tx_ro, default_ro) == ("gateway", "on", "on")
    # The time left when the query is sent: the limit minus the wait for a connection.
    assert 1500 < as_ms(timeout) <= 2000


@services
def test_the_server_enforces_the_limit(postgres_target: Target, open_target: OpenTarget) -> None:
    backend = open_target(postgres_target)
    with pytest.raises(QueryTimeoutError) as caught:
        backend.execute("SELECT pg_sleep(3)", max_rows=1, timeout_s=0.3)
    assert "57014" in (caught.value.internal_detail or "") or "statement timeout" in (
        caught.value.internal_detail or ""
    )


@services
def test_set_local_does_not_outlive_the_query(
    postgres_target: Target, open_target: OpenTarget
) -> None:
    backend = open_target(postgres_target, pool_size=1)
    backend.execute("SELECT 1", max_rows=1, timeout_s=0.5)
    # Same pooled session: the previous limit is gone, this query's own is in force.
    (timeout,) = backend.execute(
        "SELECT current_setting('statement_timeout')", max_rows=1, timeout_s=30
    ).rows[0]
    assert 29_000 < as_ms(timeout) <= 30_000


@services
def test_settings_changed_by_a_select_are_rolled_back(
    postgres_target: Target, open_target: OpenTarget
) -> None:
    backend = open_target(postgres_target, pool_size=1)
    changed = backend.execute(
        f"SELECT set_config('search_path', '{SCHEMA}', false),"
        " set_config('default_transaction_read_only', 'off', false)",
        max_rows=1,
        timeout_s=5,
    )
    assert changed.rows == [(SCHEMA, "off")]
    after = backend.execute(
        "SELECT current_setting('search_path'), current_setting('default_transaction_read_only')",
        max_rows=1,
        timeout_s=5,
    )
    assert after.rows[0][0] != SCHEMA
    assert after.rows[0][1] == "on"


@services
def test_a_terminated_pooled_connection_is_replaced_transparently(
    postgres_target: Target, open_target: OpenTarget, pg_dsn: str
) -> None:
    backend = open_target(postgres_target, pool_size=1)
    (pid,) = backend.execute("SELECT pg_backend_pid()", max_rows=1, timeout_s=5).rows[0]
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.05)
    (new_pid,) = backend.execute("SELECT pg_backend_pid()", max_rows=1, timeout_s=5).rows[0]
    assert new_pid != pid


@services
def test_options_in_the_dsn_are_kept_alongside_the_read_only_default(
    postgres_target: Target, open_target: OpenTarget
) -> None:
    sep = "&" if "?" in postgres_target.dsn else "?"
    dsn = f"{postgres_target.dsn}{sep}options={quote(f'-c search_path={SCHEMA}')}"
    backend = open_target(postgres_target.with_dsn(dsn))
    result = backend.execute(
        "SELECT count(*), current_setting('default_transaction_read_only') FROM people",
        max_rows=1,
        timeout_s=5,
    )
    assert result.rows == [(5, "on")]


@services
def test_the_dsn_schema_is_the_search_path_and_survives_rollback(
    postgres_target: Target, open_target: OpenTarget
) -> None:
    sep = "&" if "?" in postgres_target.dsn else "?"
    backend = open_target(
        postgres_target.with_dsn(f"{postgres_target.dsn}{sep}schema={SCHEMA}"), pool_size=1
    )
    for _ in range(2):  # the second query reuses the session the first rolled back
        result = backend.execute(
            "SELECT count(*), current_schema(), current_setting('transaction_read_only') "
            "FROM people",
            max_rows=1,
            timeout_s=5,
        )
        assert result.rows == [(5, SCHEMA, "on")]


def test_a_bad_dsn_schema_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="backend 'bad': the 'schema' parameter"):
        open_backend(BackendConfig("bad", "postgres", "postgresql://u@h/db?schema=Bad"))


DOWN_DSN = "postgresql://postgres@127.0.0.1:1/test"


@pytest.mark.parametrize(("timeout_s", "bound_s"), [(1.0, 1.0), (30.0, 3.0)])
def test_unreachable_server_fails_fast(timeout_s: float, bound_s: float) -> None:
    backend = open_backend(BackendConfig("down", "postgres", DOWN_DSN))
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError) as caught:
            backend.execute("SELECT 1", max_rows=1, timeout_s=timeout_s)
        # Never longer than the query's limit, nor than the 3 s cap on waiting for one.
        assert time.monotonic() - started < bound_s + 1.0
        assert caught.value.retry_after is not None
        assert "127.0.0.1" not in caught.value.detail
    finally:
        backend.close()


def test_ping_of_an_unreachable_server_fails() -> None:
    backend = PostgresBackend("down", DOWN_DSN, max_wait_s=0.5)
    try:
        with pytest.raises(BackendUnavailableError):
            backend.ping()
    finally:
        backend.close()


def test_opening_is_lazy_and_offline() -> None:
    started = time.monotonic()
    backend = open_backend(BackendConfig("down", "postgres", DOWN_DSN))
    backend.close()
    assert time.monotonic() - started < 0.5


def test_malformed_dsn_is_a_configuration_error_without_the_password() -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_backend(
            BackendConfig("bad", "postgres", "postgresql://u:s3cr3t@h/db?no_such_option=1")
        )
    assert "s3cr3t" not in str(caught.value)
    assert "bad" in str(caught.value)
