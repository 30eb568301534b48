"""Working days (工作日) for reply deadlines, with the State Council's public holidays
and the adjusted working weekends (调休).

The ``chinesecalendar`` package knows the official arrangement of each year it was
published for (2004–2026 in the installed version). Years it lacks come from an override
file (TOML, one table per year, ``holidays`` and ``workdays`` lists of dates) that a
deployment keeps current when the State Council publishes the next year's arrangement
(usually in November): the package's bundled ``holidays.toml`` and, on top, the file
named by ``GATEWAY_HOLIDAYS_FILE``. A year that neither knows falls back to
Monday–Friday, and :meth:`WorkingCalendar.covers` says so (``gateway check`` and the
deadline views report it) rather than pretending.

Dates are calendar dates in China Standard Time (Asia/Shanghai): a reply due "within 10
working days" of an application submitted on a date is due by the end of the 10th working
day after that date.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar

from gateway.errors import ConfigurationError

__all__ = ["BUNDLED_OVERRIDES", "CHINA", "HolidayOverrides", "WorkingCalendar", "load_overrides"]

CHINA = ZoneInfo("Asia/Shanghai")

#: Arrangements for years the chinesecalendar package does not know yet (shipped).
BUNDLED_OVERRIDES = Path(__file__).parent / "holidays.toml"


@dataclass(frozen=True, slots=True)
class HolidayOverrides:
    """Official days off and adjusted working days for whole years."""

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    years: frozenset[int] = frozenset()

    def merged(self, other: HolidayOverrides) -> HolidayOverrides:
        """``other`` replaces this one's years wholesale (the newer arrangement wins)."""
        keep_h = {d for d in self.holidays if d.year not in other.years}
        keep_w = {d for d in self.workdays if d.year not in other.years}
        return HolidayOverrides(
            frozenset(keep_h | other.holidays),
            frozenset(keep_w | other.workdays),
            self.years | other.years,
        )


def _dates(values: object, where: str, year: int) -> frozenset[date]:
    if not isinstance(values, list):
        raise ConfigurationError(f"{where} must be a list of dates")
    out: set[date] = set()
    for value in values:
        day = value if isinstance(value, date) else None
        if day is None and isinstance(value, str):
            try:
                day = date.fromisoformat(value)
            except ValueError:
                day = None
        if day is None:
            raise ConfigurationError(f"{where}: {value!r} is not a date (YYYY-MM-DD)")
        if day.year != year:
            raise ConfigurationError(f"{where}: {day} is not in {year}")
        out.add(day)
    return frozenset(out)


def load_overrides(path: Path) -> HolidayOverrides:
    """Read an override file. Raises ConfigurationError naming the bad entry."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"holiday file {path}: {exc}") from exc
    holidays: set[date] = set()
    workdays: set[date] = set()
    years: set[int] = set()
    for key, table in raw.items():
        if not key.isdigit() or not isinstance(table, dict):
            raise ConfigurationError(f"holiday file {path}: [{key}] must be a year table")
        year = int(key)
        unknown = set(table) - {"holidays", "workdays", "source"}
        if unknown:
            raise ConfigurationError(
                f"holiday file {path}: [{key}] has unknown keys {sorted(unknown)}"
            )
        h = _dates(table.get("holidays", []), f"{path} [{key}].holidays", year)
        w = _dates(table.get("workdays", []), f"{path} [{key}].workdays", year)
        if h & w:
            raise ConfigurationError(f"{path} [{key}]: {sorted(h & w)} both holiday and workday")
        holidays |= h
        workdays |= w
        years.add(year)
    return HolidayOverrides(frozenset(holidays), frozenset(workdays), frozenset(years))


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    overrides: HolidayOverrides = field(default_factory=HolidayOverrides)

    @classmethod
    def load(cls, extra: Iterable[Path] = ()) -> WorkingCalendar:
        overrides = load_overrides(BUNDLED_OVERRIDES)
        for path in extra:
            overrides = overrides.merged(load_overrides(path))
        return cls(overrides)

    def covers(self, year: int) -> bool:
        """Whether the official arrangement of ``year`` is known (library or overrides)."""
        return year in self.overrides.years or _library_knows(year)

    def is_workday(self, day: date) -> bool:
        if day.year in self.overrides.years:
            if day in self.overrides.holidays:
                return False
            if day in self.overrides.workdays:
                return True
            return day.weekday() < 5
        if _library_knows(day.year):
            return bool(chinese_calendar.is_workday(day))
        return day.weekday() < 5

    def add_working_days(self, start: date, count: int) -> date:
        """The ``count``-th working day after ``start`` (``start`` itself not counted)."""
        if count < 0:
            raise ValueError("count must not be negative")
        day = start
        remaining = count
        while remaining:
            day += timedelta(days=1)
            if self.is_workday(day):
                remaining -= 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in ``(start, end]`` (negative when ``end`` is before ``start``)."""
        if end < start:
            return -self.working_days_between(end, start)
        days = 0
        day = start
        while day < end:
            day += timedelta(days=1)
            if self.is_workday(day):
                days += 1
        return days

    @staticmethod
    def local_date(moment: datetime) -> date:
        """The date in China of an instant."""
        return moment.astimezone(CHINA).date()


def _library_knows(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True
