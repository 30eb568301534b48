"""Quotas: definitions, periods in China time, and the shared meter (all or none, never
past a limit, also under concurrent charging) on every dialect of the store."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest

from gateway.admin.db import AdminDb, open_admin_db
from gateway.admin.quotas import (
    Metric,
    Period,
    QuotaExceededError,
    QuotaLimit,
    QuotaMeter,
    check_narrower,
    limits_of,
    parse_quotas,
)
from gateway.errors import ConfigurationError, InvalidRequestError

#: 2026-03-02 23:30 in Beijing (15:30 UTC): half an hour before the day's quota resets.
LATE = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)


def test_definitions_name_known_quotas_with_positive_whole_numbers() -> None:
    assert parse_quotas({"queries_per_day": 5, "rows_per_month": 10}, "q") == {
        "queries_per_day": 5,
        "rows_per_month": 10,
    }
    assert parse_quotas(None, "q") == {}
    for bad in ({"queries_per_week": 1}, {"rows_per_day": 0}, {"rows_per_day": True}, [1]):
        with pytest.raises(ConfigurationError):
            parse_quotas(bad, "q")


def test_an_approval_may_lower_or_add_quotas_never_raise_them() -> None:
    asked = {"queries_per_day": 100}
    assert check_narrower(asked, {"queries_per_day": 10, "rows_per_day": 50}) == {
        "queries_per_day": 10,
        "rows_per_day": 50,
    }
    with pytest.raises(InvalidRequestError, match="only lower"):
        check_narrower(asked, {"queries_per_day": 101})


def test_periods_are_china_days_and_months() -> None:
    assert Period.DAY.next_start(date(2026, 12, 31)) == date(2027, 1, 1)
    assert Period.MONTH.start(date(2026, 2, 17)) == date(2026, 2, 1)
    assert Period.MONTH.next_start(date(2026, 12, 5)) == date(2027, 1, 1)
    assert Period.MONTH.next_start(date(2026, 1, 31)) == date(2026, 2, 1)


def test_limits_come_sorted_with_their_names() -> None:
    limits = limits_of("grant", "GR-1", {"rows_per_day": 3, "queries_per_day": 1})
    assert [q.name for q in limits] == ["queries_per_day", "rows_per_day"]
    assert limits[0] == QuotaLimit("grant", "GR-1", Metric.QUERIES, Period.DAY, 1)


def test_charging_stops_at_the_limit_and_says_when_it_resets(admin_db: AdminDb) -> None:
    meter = QuotaMeter(admin_db)
    limits = limits_of("system", "swj-tax", {"queries_per_day": 2})
    meter.charge(limits, Metric.QUERIES, 1, now=LATE)
    meter.charge(limits, Metric.QUERIES, 1, now=LATE)
    with pytest.raises(QuotaExceededError) as info:
        meter.charge(limits, Metric.QUERIES, 1, now=LATE)
    error = info.value
    assert error.status == 429 and error.code == "quota_exceeded"
    # Midnight in Beijing is 30 minutes away.
    assert error.retry_after == 30 * 60
    assert error.extra["quota"]["name"] == "queries_per_day"
    assert error.extra["quota"]["subject"] == "swj-tax"
    assert error.extra["quota"]["used"] == 2
    assert "swj-tax" in error.detail and "2 queries per day" in error.detail
    # The next Beijing day starts afresh.
    meter.charge(limits, Metric.QUERIES, 1, now=datetime(2026, 3, 2, 16, 0, tzinfo=UTC))
    [usage] = meter.usage(limits, now=LATE)
    assert (usage["used"], usage["left"]) == (2, 0)


def test_all_or_none_across_quotas(admin_db: AdminDb) -> None:
    meter = QuotaMeter(admin_db)
    system = limits_of("system", "s", {"rows_per_day": 100})
    grant = limits_of("grant", "g", {"rows_per_day": 10, "rows_per_month": 1000})
    meter.charge(system + grant, Metric.ROWS, 8, now=LATE)
    with pytest.raises(QuotaExceededError) as info:
        meter.charge(system + grant, Metric.ROWS, 5, now=LATE)  # the grant's day: 8 + 5 > 10
    assert info.value.limit.subject == "g" and "5 rows, 2 are left" in info.value.detail
    used = {(u["subject"], u["name"]): u["used"] for u in meter.usage(system + grant, now=LATE)}
    # Nothing of the refused charge stuck, not even on the quotas that had room.
    assert used == {("s", "rows_per_day"): 8, ("g", "rows_per_day"): 8, ("g", "rows_per_month"): 8}
    meter.check_left(system + grant, Metric.ROWS, now=LATE)
    meter.charge(system + grant, Metric.ROWS, 2, now=LATE)
    with pytest.raises(QuotaExceededError):
        meter.check_left(system + grant, Metric.ROWS, now=LATE)
    with pytest.raises(QuotaExceededError):  # more than the whole limit at once
        meter.charge(limits_of("system", "t", {"rows_per_day": 3}), Metric.ROWS, 4, now=LATE)


@pytest.mark.services
def test_concurrent_charges_through_separate_engines_never_pass_the_limit(
    durable_admin_location: str,
) -> None:
    """Eight threads, each with its own engine (as separate replicas have), race for 20
    units: exactly 20 charges succeed."""
    limits = limits_of("system", "race", {"queries_per_day": 20})
    dbs = [open_admin_db(durable_admin_location) for _ in range(8)]
    won: list[int] = []
    lock = threading.Lock()

    def take(db: AdminDb) -> None:
        meter = QuotaMeter(db)
        for _ in range(5):
            try:
                meter.charge(limits, Metric.QUERIES, 1, now=LATE)
            except QuotaExceededError:
                continue
            with lock:
                won.append(1)

    threads = [threading.Thread(target=take, args=(db,)) for db in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert len(won) == 20
        assert QuotaMeter(dbs[0]).usage(limits, now=LATE)[0]["used"] == 20
    finally:
        for db in dbs:
            db.close()
