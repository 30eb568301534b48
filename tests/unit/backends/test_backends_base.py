"""The shared pieces: error constructors, SQLSTATE phrases, the pool, the watchdog."""

from __future__ import annotations

import functools
import threading
import time

import pytest

from gateway.backends.base import (
    ConnectionPool,
    Watchdog,
    check_limits,
    query_error,
    sqlstate_category,
    timeout_error,
    unavailable_error,
)
from gateway.errors import BackendQueryError, BackendUnavailableError, QueryTimeoutError


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


# ------------------------------------------------------------------------------ errors


def test_error_constructors_keep_database_text_internal() -> None:
    exc = ValueError('invalid input syntax for type integer: "secret"')
    q = query_error("hr", "data exception, SQLSTATE 22P02", exc)
    assert isinstance(q, BackendQueryError)
    assert q.detail == (
        "The backend could not run the rewritten query (data exception, SQLSTATE 22P02)."
    )
    assert "secret" in (q.internal_detail or "")
    t = timeout_error("hr", 0.25, exc)
    assert isinstance(t, QueryTimeoutError)
    assert "0.25 s" in t.detail
    assert "secret" not in t.detail
    u = unavailable_error("hr", "refused", exc)
    assert isinstance(u, BackendUnavailableError)
    assert "hr" not in u.detail
    assert "secret" not in u.detail
    assert "'hr'" in (u.internal_detail or "")


@pytest.mark.parametrize(
    ("sqlstate", "phrase"),
    [
        ("22P02", "invalid text representation, SQLSTATE 22P02"),
        ("22001", "data exception, SQLSTATE 22001"),
        ("25006", "read-only transaction, SQLSTATE 25006"),
        ("42000", "syntax error or access rule violation, SQLSTATE 42000"),
        ("ZZ123", "SQLSTATE class ZZ, SQLSTATE ZZ123"),
        (None, "unclassified error"),
        ("", "unclassified error"),
        ("2200", "unclassified error"),
        ("22'; x", "unclassified error"),
        ("abcde", "unclassified error"),
    ],
)
def test_sqlstate_category_echoes_only_well_formed_codes(sqlstate: str | None, phrase: str) -> None:
    assert sqlstate_category(sqlstate) == phrase


def test_check_limits() -> None:
    check_limits(0, 0.001)
    for rows, timeout in [(-1, 1.0), (1, 0), (1, float("nan")), (1, float("inf"))]:
        with pytest.raises(ValueError, match="must be"):
            check_limits(rows, timeout)


# ------------------------------------------------------------------------------ pool


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


# ------------------------------------------------------------------------------ watchdog


def test_watchdog_fires_at_the_deadline() -> None:
    watchdog = Watchdog("test")
    fired = threading.Event()
    try:
        started = time.monotonic()
        alarm = watchdog.schedule(started + 0.1, fired.set)
        assert fired.wait(2)
        assert 0.09 < time.monotonic() - started < 1
        assert alarm.cancel() is True
    finally:
        watchdog.close()


def test_watchdog_cancelled_alarm_never_fires() -> None:
    watchdog = Watchdog("test")
    fired: list[int] = []
    try:
        alarms = [
            watchdog.schedule(time.monotonic() + 0.05, functools.partial(fired.append, i))
            for i in range(50)
        ]
        assert all(alarm.cancel() is False for alarm in alarms[::2])
        time.sleep(0.2)
        assert sorted(fired) == list(range(1, 50, 2))
    finally:
        watchdog.close()


def test_watchdog_fires_in_deadline_order_regardless_of_scheduling_order() -> None:
    watchdog = Watchdog("test")
    order: list[str] = []
    done = threading.Event()
    try:
        now = time.monotonic()

        def late() -> None:
            order.append("late")
            done.set()

        watchdog.schedule(now + 0.2, late)
        watchdog.schedule(now + 0.05, functools.partial(order.append, "early"))
        assert done.wait(2)
        assert order == ["early", "late"]
    finally:
        watchdog.close()


def test_watchdog_cancel_waits_for_a_running_callback() -> None:
    watchdog = Watchdog("test")
    started = threading.Event()
    finished = threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(0.2)
        finished.set()

    try:
        alarm = watchdog.schedule(time.monotonic(), slow)
        assert started.wait(2)
        assert alarm.cancel() is True
        # cancel() returned only after the callback: safe to reuse what it interrupts.
        assert finished.is_set()
    finally:
        watchdog.close()


def test_watchdog_survives_a_failing_callback() -> None:
    watchdog = Watchdog("test")
    fired = threading.Event()

    def boom() -> None:
        raise RuntimeError("boom")

    try:
        watchdog.schedule(time.monotonic(), boom)
        watchdog.schedule(time.monotonic() + 0.05, fired.set)
        assert fired.wait(2)
    finally:
        watchdog.close()
