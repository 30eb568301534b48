"""Quotas (配额): how many queries, and how many rows delivered, a system or a grant may
use per day or per month — counted in the administration store, so that every gateway
replica draws on the same meter (never process memory).

Definitions are small mappings ``{"queries_per_day": 1000, "rows_per_month": 500000}``:
a system's come from systems.toml (policy), a grant's from its application (asked) as
the approval narrowed them (an approval may lower or add a quota, never raise one).
Periods are calendar days and months in China Standard Time, like every date of the
sharing workflow.

Usage rows (``quota_usage``) are upserted with a guard (``used + n <= limit``) in one
statement per quota, inside one transaction for all the quotas a query draws on, in a
fixed order: either every quota is charged or none is, and two replicas cannot both
take the last unit (the row lock of the upsert serialises them on PostgreSQL; SQLite
has one writer).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import Connection, and_, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.admin.calendar import CHINA
from gateway.admin.db import AdminDb
from gateway.admin.schema import quota_usage
from gateway.errors import ConfigurationError, InvalidRequestError, TooManyRequestsError

__all__ = [
    "Metric",
    "Period",
    "QuotaExceededError",
    "QuotaLimit",
    "QuotaMeter",
    "check_narrower",
    "limits_of",
    "parse_quotas",
]


class Metric(enum.StrEnum):
    QUERIES = "queries"
    ROWS = "rows"


class Period(enum.StrEnum):
    DAY = "day"
    MONTH = "month"

    def start(self, today: date) -> date:
        return today if self is Period.DAY else today.replace(day=1)

    def next_start(self, today: date) -> date:
        if self is Period.DAY:
            return date.fromordinal(today.toordinal() + 1)
        return date(today.year + (today.month == 12), today.month % 12 + 1, 1)


#: The quota names a definition may use: ``<metric>_per_<period>``.
QUOTA_NAMES = frozenset(f"{m.value}_per_{p.value}" for m in Metric for p in Period)


def parse_quotas(raw: object, where: str) -> dict[str, int]:
    """A quota definition, validated: known names, positive integers. Raises
    ConfigurationError naming ``where`` (callers turn it into a client error)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{where} must be a table of quotas")
    out: dict[str, int] = {}
    for name, value in raw.items():
        if name not in QUOTA_NAMES:
            raise ConfigurationError(
                f"{where}: unknown quota {name!r}; one of {', '.join(sorted(QUOTA_NAMES))}"
            )
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigurationError(f"{where}.{name} must be a positive whole number")
        out[name] = value
    return out


def check_narrower(asked: Mapping[str, int], imposed: Mapping[str, int]) -> dict[str, int]:
    """The quotas of a grant: what was asked, with ``imposed`` lowering or adding quotas.
    Raises InvalidRequestError for an imposed quota above the one asked."""
    merged = dict(asked)
    for name, value in imposed.items():
        if name in asked and value > asked[name]:
            raise InvalidRequestError(
                f"A narrower approval may only lower quotas: {name} was asked as "
                f"{asked[name]}, not {value}."
            )
        merged[name] = value
    return merged


@dataclass(frozen=True, slots=True)
class QuotaLimit:
    """One quota of one subject: ``scope`` is ``system`` or ``grant``."""

    scope: str
    subject: str
    metric: Metric
    period: Period
    limit: int

    @property
    def name(self) -> str:
        return f"{self.metric.value}_per_{self.period.value}"

    def describe(self) -> str:
        return f"{self.scope} {self.subject}: {self.limit} {self.metric.value} per {self.period}"


def limits_of(scope: str, subject: str, quotas: Mapping[str, int]) -> tuple[QuotaLimit, ...]:
    """The limits a definition sets (sorted, the order usage rows are locked in)."""
    out = []
    for name, value in sorted(quotas.items()):
        metric, _, period = name.partition("_per_")
        out.append(QuotaLimit(scope, subject, Metric(metric), Period(period), value))
    return tuple(out)


class QuotaExceededError(TooManyRequestsError):
    """A quota is used up: 429, ``Retry-After`` until the period ends, and the problem
    names the quota (scope, subject, metric, period, limit, used)."""

    code = "quota_exceeded"
    title = "Quota exceeded"

    def __init__(self, limit: QuotaLimit, used: int, *, wanted: int, now: datetime) -> None:
        today = local_date(now)
        resets = _start_of(limit.period.next_start(today))
        retry = max(1, int((resets - now).total_seconds()))
        if limit.metric is Metric.ROWS and used < limit.limit:
            what = (
                f"this query would deliver {wanted} rows, {limit.limit - used} are left; "
                "ask for fewer rows (max_rows) or wait"
            )
        else:
            what = f"all {limit.limit} are used"
        super().__init__(
            f"Quota exceeded: {limit.describe()} ({what}); it resets at "
            f"{resets.astimezone(CHINA).isoformat()}.",
            extra={
                "quota": {
                    "scope": limit.scope,
                    "subject": limit.subject,
                    "name": limit.name,
                    "metric": limit.metric.value,
                    "period": limit.period.value,
                    "limit": limit.limit,
                    "used": used,
                    "resets_at": resets.isoformat(),
                }
            },
        )
        self.retry_after = retry
        self.limit = limit


def local_date(moment: datetime) -> date:
    return moment.astimezone(CHINA).date()


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=CHINA).astimezone(UTC)


class QuotaMeter:
    """The shared meter: charge usage against limits, read it back."""

    def __init__(self, db: AdminDb) -> None:
        self._db = db

    def check_left(self, limits: Iterable[QuotaLimit], metric: Metric, *, now: datetime) -> None:
        """Refuse (QuotaExceededError) when a ``metric`` quota is already used up; charges
        nothing (rows are charged when known, :meth:`charge`)."""
        wanted = [q for q in limits if q.metric is metric]
        if not wanted:
            return
        used = self._used(wanted, now)
        for q in wanted:
            if used.get(q, 0) >= q.limit:
                raise QuotaExceededError(q, used.get(q, 0), wanted=1, now=now)

    def charge(
        self, limits: Iterable[QuotaLimit], metric: Metric, amount: int, *, now: datetime
    ) -> None:
        """Add ``amount`` to every ``metric`` quota in ``limits``, all or none: raises
        QuotaExceededError (nothing charged) if any would go over its limit."""
        wanted = sorted(
            (q for q in limits if q.metric is metric), key=lambda q: (q.scope, q.subject, q.name)
        )
        if not wanted or amount <= 0:
            return
        today = local_date(now)
        with self._db.transaction() as conn:
            for q in wanted:
                start = q.period.start(today)
                if amount > q.limit or not self._add(conn, q, start, amount):
                    used = conn.execute(
                        select(quota_usage.c.used).where(_key(q, start))
                    ).scalar_one_or_none()
                    # Raising rolls back the quotas charged before this one.
                    raise QuotaExceededError(q, int(used or 0), wanted=amount, now=now)

    def usage(self, limits: Iterable[QuotaLimit], *, now: datetime) -> list[dict[str, Any]]:
        """Each limit with what is used of it in the current period."""
        chosen = list(limits)
        used = self._used(chosen, now) if chosen else {}
        today = local_date(now)
        return [
            {
                "scope": q.scope,
                "subject": q.subject,
                "name": q.name,
                "metric": q.metric.value,
                "period": q.period.value,
                "limit": q.limit,
                "used": used.get(q, 0),
                "left": max(0, q.limit - used.get(q, 0)),
                "period_start": q.period.start(today).isoformat(),
                "resets_at": _start_of(q.period.next_start(today)).isoformat(),
            }
            for q in chosen
        ]

    def _used(self, limits: list[QuotaLimit], now: datetime) -> dict[QuotaLimit, int]:
        today = local_date(now)
        with self._db.read() as conn:
            rows = conn.execute(
                select(quota_usage).where(or_(*(_key(q, q.period.start(today)) for q in limits)))
            ).all()
        found = {(r.scope, r.subject, r.metric, r.period_start): int(r.used) for r in rows}
        return {
            q: found.get((q.scope, q.subject, q.metric.value, q.period.start(today)), 0)
            for q in limits
        }

    def _add(self, conn: Connection, q: QuotaLimit, start: date, amount: int) -> bool:
        """Upsert ``used += amount`` unless that passes the limit; whether it was added."""
        values = {
            "scope": q.scope,
            "subject": q.subject,
            "metric": q.metric.value,
            "period_start": start,
            "used": amount,
        }
        keys = ["scope", "subject", "metric", "period_start"]
        # The same upsert in each dialect's spelling (both have ON CONFLICT … WHERE).
        if conn.dialect.name == "postgresql":
            pg = pg_insert(quota_usage).values(**values)
            stmt: Any = pg.on_conflict_do_update(
                index_elements=keys,
                set_={"used": quota_usage.c.used + pg.excluded.used},
                where=quota_usage.c.used + pg.excluded.used <= q.limit,
            )
        else:
            lite = sqlite_insert(quota_usage).values(**values)
            stmt = lite.on_conflict_do_update(
                index_elements=keys,
                set_={"used": quota_usage.c.used + lite.excluded.used},
                where=quota_usage.c.used + lite.excluded.used <= q.limit,
            )
        return conn.execute(stmt.returning(quota_usage.c.used)).first() is not None


def _key(q: QuotaLimit, start: date) -> Any:
    return and_(
        quota_usage.c.scope == q.scope,
        quota_usage.c.subject == q.subject,
        quota_usage.c.metric == q.metric.value,
        quota_usage.c.period_start == start,
    )
