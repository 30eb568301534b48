"""Working days across the 2026 Spring Festival and National Day, counted by hand from
国办发明电〔2025〕7号 (the 2026 arrangement): Spring Festival 2/15–2/23 off, Saturdays
2/14 and 2/28 worked; Mid-Autumn 9/25–9/27 off; National Day 10/1–10/7 off, Sunday 9/20
and Saturday 10/10 worked."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from gateway.admin.calendar import WorkingCalendar, load_overrides
from gateway.errors import ConfigurationError

CAL = WorkingCalendar.load()


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 2, 13), True),  # Friday before the holiday
        (date(2026, 2, 14), True),  # Saturday, adjusted working day (调休)
        (date(2026, 2, 15), False),
        (date(2026, 2, 18), False),  # a Wednesday inside the holiday
        (date(2026, 2, 23), False),  # Monday, last day off
        (date(2026, 2, 24), True),
        (date(2026, 2, 28), True),  # Saturday, adjusted working day
        (date(2026, 3, 1), False),  # an ordinary Sunday
        (date(2026, 9, 20), True),  # Sunday, adjusted working day
        (date(2026, 9, 25), False),  # Mid-Autumn (Friday)
        (date(2026, 10, 1), False),
        (date(2026, 10, 7), False),
        (date(2026, 10, 8), True),
        (date(2026, 10, 10), True),  # Saturday, adjusted working day
        (date(2026, 10, 11), False),
    ],
)
def test_known_days_of_2026(day: date, working: bool) -> None:
    assert CAL.is_workday(day) is working


def test_ten_working_days_across_the_spring_festival() -> None:
    # 2/14 (Sat, worked) is day 1; 2/15-2/23 off; 2/24-2/27 days 2-5; 2/28 (Sat) day 6;
    # 3/2-3/5 days 7-10.
    assert CAL.add_working_days(date(2026, 2, 13), 10) == date(2026, 3, 5)
    assert CAL.working_days_between(date(2026, 2, 13), date(2026, 3, 5)) == 10


def test_ten_working_days_across_mid_autumn_and_national_day() -> None:
    # 9/20 (Sun, worked) day 1; 9/21-9/24 days 2-5; 9/25-9/27 off; 9/28-9/30 days 6-8;
    # 10/1-10/7 off; 10/8-10/9 days 9-10.
    assert CAL.add_working_days(date(2026, 9, 18), 10) == date(2026, 10, 9)
    # Five working days (山西's rule) from the same Friday.
    assert CAL.add_working_days(date(2026, 9, 18), 5) == date(2026, 9, 24)


def test_the_local_date_is_beijing_time() -> None:
    late_utc = datetime(2026, 2, 13, 17, 30, tzinfo=UTC)  # 01:30 on the 14th in Beijing
    assert WorkingCalendar.local_date(late_utc) == date(2026, 2, 14)


def test_an_unknown_year_falls_back_to_weekdays_and_says_so(tmp_path: Path) -> None:
    assert not CAL.covers(2031)
    assert CAL.is_workday(date(2031, 1, 1))  # a Wednesday, unknown arrangement
    override = tmp_path / "holidays.toml"
    override.write_text(
        '[2031]\nsource = "test"\nholidays = ["2031-01-01"]\nworkdays = ["2031-01-04"]\n',
        encoding="utf-8",
    )
    cal = WorkingCalendar.load([override])
    assert cal.covers(2031)
    assert not cal.is_workday(date(2031, 1, 1))
    assert cal.is_workday(date(2031, 1, 4))  # a Saturday worked
    assert cal.covers(2026) and cal.is_workday(date(2026, 2, 14))


@pytest.mark.parametrize(
    "text",
    [
        '[2031]\nholidays = ["2030-01-01"]\n',
        '[2031]\nholidays = ["not a date"]\n',
        '[2031]\nholidays = ["2031-01-01"]\nworkdays = ["2031-01-01"]\n',
        "[2031]\nvacations = []\n",
        "[next]\nholidays = []\n",
    ],
)
def test_malformed_override_files_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "h.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError):
        load_overrides(path)
