"""Replay caches: memory, SQLite shared by processes, PostgreSQL."""

from __future__ import annotations

import multiprocessing
import sqlite3
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from gateway.auth import (
    MemoryReplayCache,
    PostgresReplayCache,
    ReplayCache,
    SqliteReplayCache,
    open_replay_cache,
)
from gateway.errors import AuthenticationError, BackendUnavailableError, ConfigurationError
from tests.conftest import Scratch
from tests.unit.auth.support import FIXED_NOW, FakeClock

LATER = FIXED_NOW + timedelta(seconds=90)


def _replayed(cache: ReplayCache, jti: str, issuer: str, expires_at: datetime) -> None:
    with pytest.raises(AuthenticationError) as info:
        cache.remember(jti, issuer, expires_at)
    assert info.value.reason == "replayed assertion jti"


def _contract(first: ReplayCache, second: ReplayCache, clock: FakeClock) -> None:
    """The ReplayCache contract, with ``second`` sharing ``first``'s store."""
    first.remember("j1", "sys-a", LATER)
    _replayed(first, "j1", "sys-a", LATER)
    _replayed(second, "j1", "sys-a", LATER)
    # Scoped per issuer.
    second.remember("j1", "sys-b", LATER)
    # Once expired, the pair may be recorded again.
    clock.advance(90)
    second.remember("j1", "sys-a", LATER + timedelta(seconds=60))
    _replayed(first, "j1", "sys-a", LATER + timedelta(seconds=60))


def test_memory_contract() -> None:
    clock = FakeClock()
    cache = MemoryReplayCache(clock=clock)
    _contract(cache, cache, clock)
    cache.close()


def test_memory_cache_is_bounded_and_fails_closed() -> None:
    clock = FakeClock()
    cache = MemoryReplayCache(clock=clock, max_entries=2)
    cache.remember("a", "s", LATER)
    cache.remember("b", "s", LATER)
    with pytest.raises(AuthenticationError) as info:
        cache.remember("c", "s", LATER)
    assert info.value.reason == "replay cache full"
    clock.advance(91)  # a and b expired: room again
    cache.remember("c", "s", LATER + timedelta(seconds=60))


def test_naive_datetimes_are_refused() -> None:
    cache = MemoryReplayCache(clock=FakeClock())
    with pytest.raises(ConfigurationError, match="timezone-aware"):
        cache.remember("a", "s", datetime(2025, 3, 1))
    with pytest.raises(AuthenticationError):
        cache.remember("", "s", LATER)


@pytest.fixture
def sqlite_pair(tmp_path: Path) -> Iterator[tuple[SqliteReplayCache, SqliteReplayCache, FakeClock]]:
    clock = FakeClock()
    path = tmp_path / "state" / "replay.sqlite"
    a = SqliteReplayCache(path, clock=clock)
    b = SqliteReplayCache(path, clock=clock)
    yield a, b, clock
    a.close()
    b.close()


def test_sqlite_contract_across_two_instances(
    sqlite_pair: tuple[SqliteReplayCache, SqliteReplayCache, FakeClock],
) -> None:
    a, b, clock = sqlite_pair
    _contract(a, b, clock)


def test_sqlite_purges_expired_rows(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "replay.sqlite"
    cache = SqliteReplayCache(path, clock=clock, purge_every=3)
    cache.remember("a", "s", FIXED_NOW + timedelta(seconds=10))
    cache.remember("b", "s", FIXED_NOW + timedelta(seconds=100))
    clock.advance(20)
    cache.remember("c", "s", FIXED_NOW + timedelta(seconds=200))  # 3rd call: purge
    with sqlite3.connect(path) as conn:
        rows = {r[0] for r in conn.execute("SELECT jti FROM replay_jti")}
    conn.close()
    cache.close()
    assert rows == {"b", "c"}


def test_sqlite_unusable_path_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigurationError, match="cannot open replay cache"):
        SqliteReplayCache(tmp_path / "file" / "replay.sqlite")


def _race(path: str, jti: str) -> bool:
    """One worker process trying to use ``jti``: True if it won."""
    cache = SqliteReplayCache(path, clock=lambda: FIXED_NOW)
    try:
        cache.remember(jti, "sys-a", LATER)
        return True
    except AuthenticationError:
        return False
    finally:
        cache.close()


def test_sqlite_race_between_processes_has_one_winner(tmp_path: Path) -> None:
    path = str(tmp_path / "replay.sqlite")
    SqliteReplayCache(path).close()  # create the schema once, as server start-up does
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=6, mp_context=ctx) as pool:
        results = list(pool.map(_race, [path] * 12, ["same-jti"] * 12))
    assert results.count(True) == 1
    assert results.count(False) == 11


@pytest.mark.services
def test_postgres_contract_across_two_instances(pg_dsn: str, scratch: Scratch) -> None:
    clock = FakeClock()
    schema = scratch.pg_schema(pg_dsn, "t_auth")
    table = f"{schema}.replay_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    a = PostgresReplayCache(pg_dsn, table=table, clock=clock, purge_every=1)
    b = PostgresReplayCache(pg_dsn, table=table, clock=clock)
    try:
        _contract(a, b, clock)
        # purge_every=1: every call on ``a`` purges rows expired at its clock.
        clock.advance(1000)
        a.remember("fresh", "sys-a", clock.now + timedelta(seconds=60))
        with psycopg.connect(pg_dsn) as conn:
            jtis = {r[0] for r in conn.execute(f"SELECT jti FROM {table}")}
        assert jtis == {"fresh"}
    finally:
        a.close()
        b.close()
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.mark.services
def test_postgres_reconnects_after_a_dropped_connection(pg_dsn: str) -> None:
    clock = FakeClock()
    table = f"t_auth_replay_{uuid.uuid4().hex[:12]}"
    cache = PostgresReplayCache(pg_dsn, table=table, clock=clock)
    try:
        cache.remember("a", "s", LATER)
        assert cache._conn is not None
        pid = cache._conn.info.backend_pid
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        cache.remember("b", "s", LATER)
        _replayed(cache, "a", "s", LATER)
    finally:
        cache.close()
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


def test_postgres_bad_table_name() -> None:
    with pytest.raises(ConfigurationError, match="plain identifier"):
        PostgresReplayCache("postgresql://127.0.0.1:1/x", table="x; DROP TABLE y")


def test_open_replay_cache(tmp_path: Path) -> None:
    clock = FakeClock()
    memory = open_replay_cache("memory:", clock=clock)
    assert isinstance(memory, MemoryReplayCache)
    sqlite_cache = open_replay_cache(f"sqlite:{tmp_path / 'r.sqlite'}", clock=clock)
    assert isinstance(sqlite_cache, SqliteReplayCache)
    sqlite_cache.remember("x", "s", LATER)
    _replayed(sqlite_cache, "x", "s", LATER)
    sqlite_cache.close()
    # Nothing listens on port 1: the PostgreSQL implementation is chosen and fails closed.
    with pytest.raises(BackendUnavailableError):
        open_replay_cache("postgresql://postgres@127.0.0.1:1/test?connect_timeout=1")
    for bad in (
        "redis://x",
        "sqlite:",
        "",
        "memory",
        "sqlite://r.sqlite",
        "duckdb:r.duckdb",
        "mysql://u:s3cr3t@h/db",
        "oracle://u:s3cr3t@h/db",
        "postgresql://u:s3cr3t@h/db?schema=No",
    ):
        with pytest.raises(ConfigurationError) as caught:
            open_replay_cache(bad)
        assert "s3cr3t" not in str(caught.value)


@pytest.mark.services
def test_open_replay_cache_puts_its_table_in_the_dsn_schema(pg_dsn: str, scratch: Scratch) -> None:
    schema = scratch.pg_schema(pg_dsn, "t_auth_replay")  # created by the cache itself
    sep = "&" if "?" in pg_dsn else "?"
    clock = FakeClock()
    first = open_replay_cache(f"{pg_dsn}{sep}schema={schema}", clock=clock)
    second = open_replay_cache(f"{pg_dsn}{sep}schema={schema}", clock=clock)
    try:
        _contract(first, second, clock)
        with psycopg.connect(pg_dsn) as conn:
            (found,) = conn.execute(
                "SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.gateway_replay_jti",)
            ).fetchone() or (None,)
        assert found is True
    finally:
        first.close()
        second.close()


def test_aware_datetimes_in_any_offset() -> None:
    # Offsets other than UTC are fine as long as they are aware (UTC+8 here).
    cst = timezone(timedelta(hours=8))
    cache = MemoryReplayCache(clock=lambda: FIXED_NOW.astimezone(cst))
    cache.remember("a", "s", LATER.astimezone(cst))
    _replayed(cache, "a", "s", LATER)
