"""The shared pieces: error constructors, SQLSTATE phrases, the watchdog."""

from __future__ import annotations

import functools
import threading
import time

import pytest

from gateway.backends.base import (
    Watchdog,
    check_limits,
    query_error,
    result_in_time,
    retry_on_fresh_connection,
    sqlstate_category,
    timeout_error,
    unavailable_error,
)
from gateway.errors import BackendQueryError, BackendUnavailableError, QueryTimeoutError

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


def test_retry_on_fresh_connection_only_once_for_a_dead_connection_with_time_left() -> None:
    down = unavailable_error("hr", "connection lost")
    later = time.monotonic() + 10
    assert retry_on_fresh_connection(down, stale=True, attempt=1, deadline=later)
    assert not retry_on_fresh_connection(down, stale=True, attempt=2, deadline=later)
    assert not retry_on_fresh_connection(down, stale=False, attempt=1, deadline=later)
    assert not retry_on_fresh_connection(
        down, stale=True, attempt=1, deadline=time.monotonic() - 0.001
    )
    wrong = query_error("hr", "syntax error", None)
    assert not retry_on_fresh_connection(wrong, stale=True, attempt=1, deadline=later)
    late = timeout_error("hr", 1.0)
    assert not retry_on_fresh_connection(late, stale=True, attempt=1, deadline=later)


def test_result_in_time_never_hands_out_a_late_or_interrupted_result() -> None:
    started = time.monotonic()
    rows: list[tuple[object, ...]] = [(1, "a")]
    ok = result_in_time(
        "hr", ("id", "x"), rows, started=started, deadline=started + 10, timeout_s=10
    )
    assert (ok.columns, ok.rows) == (("id", "x"), rows)
    assert 0 <= ok.elapsed_s < 10
    with pytest.raises(QueryTimeoutError, match=r"time limit of 0\.5 s"):
        result_in_time("hr", ("id",), [], started=started - 1, deadline=started, timeout_s=0.5)
    with pytest.raises(QueryTimeoutError):
        result_in_time(
            "hr",
            ("id",),
            rows,
            started=started,
            deadline=started + 10,
            timeout_s=10,
            interrupted=True,
        )
