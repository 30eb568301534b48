"""The connection pool of the SQLite, MariaDB/MySQL and DuckDB backends."""

from __future__ import annotations

import threading
import time

import pytest

from gateway.backends.base import unavailable_error
from gateway.backends.pool import ConnectionPool
from gateway.errors import BackendUnavailableError


class FakeConn:
    def __init__(self, number: int) -> None:
        self.number = number
        self.closed = False


class Factory:
    def __init__(self) -> None:
        self.made: list[FakeConn] = []
        self.fail = False

    def __call__(self) -> FakeConn:
        if self.fail:
            raise unavailable_error("fake", "refused")
        conn = FakeConn(len(self.made))
        self.made.append(conn)
        return conn


def dispose(conn: FakeConn) -> None:
    conn.closed = True


def make_pool(size: int = 2) -> tuple[ConnectionPool[FakeConn], Factory]:
    factory = Factory()
    return ConnectionPool(backend="fake", factory=factory, dispose=dispose, max_size=size), factory


def test_pool_creates_lazily_and_reuses_last_released_first() -> None:
    pool, factory = make_pool(size=2)
    assert factory.made == []
    a = pool.acquire(1)
    b = pool.acquire(1)
    assert len(factory.made) == 2
    pool.release(a)
    pool.release(b)
    assert pool.acquire(1) is b  # LIFO: the warmest connection
    assert len(factory.made) == 2


def test_pool_waits_for_a_release_then_gives_up() -> None:
    pool, _ = make_pool(size=1)
    held = pool.acquire(1)
    threading.Timer(0.1, pool.release, args=(held,)).start()
    started = time.monotonic()
    assert pool.acquire(2) is held
    assert 0.05 < time.monotonic() - started < 1
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError):
        pool.acquire(0.2)
    assert 0.15 < time.monotonic() - started < 1


def test_pool_disposes_broken_connections_and_frees_their_slot() -> None:
    pool, factory = make_pool(size=1)
    conn = pool.acquire(1)
    pool.release(conn, broken=True)
    assert conn.closed
    fresh = pool.acquire(0.1)
    assert fresh is not conn
    assert len(factory.made) == 2


def test_pool_factory_failure_frees_the_slot() -> None:
    pool, factory = make_pool(size=1)
    factory.fail = True
    with pytest.raises(BackendUnavailableError):
        pool.acquire(0.1)
    factory.fail = False
    assert pool.acquire(0.1).number == 0


def test_pool_close_disposes_idle_now_and_busy_on_release() -> None:
    pool, _ = make_pool(size=2)
    idle = pool.acquire(1)
    busy = pool.acquire(1)
    pool.release(idle)
    pool.close()
    assert idle.closed
    assert not busy.closed
    pool.release(busy)
    assert busy.closed
    with pytest.raises(BackendUnavailableError):
        pool.acquire(0.1)


def test_pool_close_wakes_waiters() -> None:
    pool, _ = make_pool(size=1)
    pool.acquire(1)
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            pool.acquire(5)
        except BackendUnavailableError as exc:
            errors.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.05)
    pool.close()
    waiter.join(timeout=2)
    assert not waiter.is_alive()
    assert len(errors) == 1
