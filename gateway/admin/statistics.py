"""Sharing statistics (共享绩效考核): per provider department and dataset, over a period
of China dates — what is offered by sharing class, how applications were answered (and
how fast, in working days), and what was served or refused.

Two sources, each the truth of its own part: the administration store's application
events (received = first submission in the period; the answer = the first decision or
return after it) and the audit log (every data access served or refused, with its
tables, rows and refusal code). Nothing here is kept in a second counter that could
drift from the evidence.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlglot
import sqlglot.errors
from sqlalchemy import select
from sqlglot import exp

from gateway.admin.calendar import CHINA, WorkingCalendar
from gateway.admin.db import AdminDb
from gateway.admin.schema import application_events, applications
from gateway.audit.record import AuditRecord, Outcome, format_time
from gateway.audit.store.protocol import MAX_SEARCH_LIMIT, SearchQuery
from gateway.audit.trail import AccessKind
from gateway.catalog import Catalog

__all__ = ["CSV_COLUMNS", "DatasetStatistics", "SharingStatistics", "sharing_statistics"]

_ANSWERS = frozenset({"approve", "arbitrate_approve", "refuse", "arbitrate_refuse", "return"})
_APPROVALS = frozenset({"approve", "arbitrate_approve"})
_REFUSALS = frozenset({"refuse", "arbitrate_refuse"})

#: Purposes of records that are not data accesses (gateway/audit/trail.py AccessKind).
_NOT_DATA = frozenset(
    v for k, v in vars(AccessKind).items() if not k.startswith("_") and isinstance(v, str)
)

Search = Callable[[SearchQuery], list[tuple[int, AuditRecord]]]


@dataclass
class DatasetStatistics:
    department: str
    dataset: str
    sharing_class: str
    applications_received: int = 0
    applications_answered: int = 0
    applications_approved: int = 0
    applications_narrowed: int = 0
    applications_refused: int = 0
    applications_returned: int = 0
    applications_overdue: int = 0
    refusal_reasons: Counter[str] = field(default_factory=Counter)
    reply_working_days: list[int] = field(default_factory=list)
    queries_served: int = 0
    rows_delivered: int = 0
    queries_refused: int = 0
    query_refusals: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        days = self.reply_working_days
        return {
            "department": self.department,
            "dataset": self.dataset,
            "sharing_class": self.sharing_class,
            "applications": {
                "received": self.applications_received,
                "answered": self.applications_answered,
                "approved": self.applications_approved,
                "narrowed": self.applications_narrowed,
                "refused": self.applications_refused,
                "returned": self.applications_returned,
                "overdue": self.applications_overdue,
                "refused_by_reason": dict(sorted(self.refusal_reasons.items())),
                "median_reply_working_days": statistics.median(days) if days else None,
                "longest_reply_working_days": max(days) if days else None,
            },
            "queries": {
                "served": self.queries_served,
                "rows_delivered": self.rows_delivered,
                "refused": self.queries_refused,
                "refused_by_reason": dict(sorted(self.query_refusals.items())),
            },
        }


#: The CSV header, one row per (department, dataset).
CSV_COLUMNS = (
    "department",
    "dataset",
    "sharing_class",
    "applications_received",
    "applications_answered",
    "applications_approved",
    "applications_narrowed",
    "applications_refused",
    "applications_returned",
    "applications_overdue",
    "median_reply_working_days",
    "longest_reply_working_days",
    "application_refusal_reasons",
    "queries_served",
    "rows_delivered",
    "queries_refused",
    "query_refusal_reasons",
)


@dataclass(frozen=True)
class SharingStatistics:
    since: date
    until: date
    #: department -> sharing class -> number of datasets offered.
    offered: dict[str, dict[str, int]]
    datasets: list[DatasetStatistics]

    def to_json(self) -> dict[str, Any]:
        return {
            "period": {"from": self.since.isoformat(), "until": self.until.isoformat()},
            "departments": [
                {
                    "department": department,
                    "datasets_offered": classes,
                    "datasets": [d.to_json() for d in self.datasets if d.department == department],
                }
                for department, classes in sorted(self.offered.items())
            ],
        }

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
        writer.writerow(CSV_COLUMNS)
        for d in self.datasets:
            j = d.to_json()
            apps, queries = j["applications"], j["queries"]
            writer.writerow(
                [
                    d.department,
                    d.dataset,
                    d.sharing_class,
                    apps["received"],
                    apps["answered"],
                    apps["approved"],
                    apps["narrowed"],
                    apps["refused"],
                    apps["returned"],
                    apps["overdue"],
                    ""
                    if apps["median_reply_working_days"] is None
                    else apps["median_reply_working_days"],
                    ""
                    if apps["longest_reply_working_days"] is None
                    else apps["longest_reply_working_days"],
                    json.dumps(apps["refused_by_reason"], ensure_ascii=False),
                    queries["served"],
                    queries["rows_delivered"],
                    queries["refused"],
                    json.dumps(queries["refused_by_reason"], ensure_ascii=False),
                ]
            )
        return out.getvalue()


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=CHINA).astimezone(UTC)


def sharing_statistics(
    *,
    db: AdminDb,
    catalog: Catalog,
    search: Search,
    calendar: WorkingCalendar,
    since: date,
    until: date,
    now: datetime,
    departments: Collection[str] | None = None,
) -> SharingStatistics:
    """Statistics of the datasets of ``departments`` (None: every department) for the
    China dates ``since`` .. ``until`` (both included)."""
    chosen = {
        name: d
        for name, d in catalog.datasets.items()
        if departments is None or d.owner in departments
    }
    offered: dict[str, dict[str, int]] = {}
    rows: dict[str, DatasetStatistics] = {}
    for name, d in sorted(chosen.items()):
        classes = offered.setdefault(d.owner, {})
        classes[d.sharing_class.value] = classes.get(d.sharing_class.value, 0) + 1
        rows[name] = DatasetStatistics(d.owner, name, d.sharing_class.value)
    start, end = _start_of(since), _start_of(until + timedelta(days=1))
    _count_applications(db, rows, calendar, start, end, now)
    _count_queries(search, rows, start, end)
    return SharingStatistics(since, until, offered, [rows[n] for n in sorted(rows)])


def _count_applications(
    db: AdminDb,
    rows: dict[str, DatasetStatistics],
    calendar: WorkingCalendar,
    start: datetime,
    end: datetime,
    now: datetime,
) -> None:
    if not rows:
        return
    with db.read() as conn:
        events = conn.execute(
            select(
                application_events.c.application_id,
                application_events.c.at,
                application_events.c.action,
                application_events.c.comment,
                application_events.c.details,
                applications.c.dataset,
                applications.c.reply_due,
            )
            .join(applications, applications.c.id == application_events.c.application_id)
            .where(applications.c.dataset.in_(list(rows)))
            .order_by(application_events.c.application_id, application_events.c.id)
        ).all()
    by_app: dict[str, list[Any]] = {}
    for e in events:
        by_app.setdefault(e.application_id, []).append(e)
    today = WorkingCalendar.local_date(now)
    for history in by_app.values():
        submits = [e for e in history if e.action == "submit"]
        if not submits or not start <= submits[0].at < end:
            continue  # not received in the period
        row = rows[history[0].dataset]
        received = submits[0].at
        row.applications_received += 1
        answer = next((e for e in history if e.action in _ANSWERS and e.at >= received), None)
        reply_due = history[0].reply_due
        escalated = any(e.action == "escalate" for e in history)
        if answer is None:
            if escalated or (reply_due is not None and today > reply_due):
                row.applications_overdue += 1
            continue
        row.applications_answered += 1
        answered_on = WorkingCalendar.local_date(answer.at)
        row.reply_working_days.append(
            calendar.working_days_between(WorkingCalendar.local_date(received), answered_on)
        )
        if escalated or (reply_due is not None and answered_on > reply_due):
            row.applications_overdue += 1
        if answer.action in _APPROVALS:
            row.applications_approved += 1
            if (answer.details or {}).get("narrowed"):
                row.applications_narrowed += 1
        elif answer.action in _REFUSALS:
            row.applications_refused += 1
            row.refusal_reasons[(answer.comment or "").strip() or "(no reason)"] += 1
        else:
            row.applications_returned += 1


def _count_queries(
    search: Search, rows: dict[str, DatasetStatistics], start: datetime, end: datetime
) -> None:
    before: int | None = None
    while True:
        page = search(
            SearchQuery(
                since=format_time(start),
                until=format_time(end),
                before=before,
                limit=MAX_SEARCH_LIMIT,
            )
        )
        for _idx, record in page:
            _count_record(record, rows)
        if len(page) < MAX_SEARCH_LIMIT:
            return
        before = min(idx for idx, _ in page)


def _count_record(record: AuditRecord, rows: dict[str, DatasetStatistics]) -> None:
    """A data access counts once for each dataset it touched (a join of two datasets is
    served by both providers)."""
    if record.event is not None or record.sql is None or record.purpose in _NOT_DATA:
        return  # an administrative change, or a read of the catalog, log, sessions …
    # A refusal before planning (no grant, a denied column) has no resolved tables: the
    # datasets its SQL names are the ones it was refused on.
    tables = record.tables or _tables_named(record.sql)
    for name in _datasets(tables):
        row = rows.get(name)
        if row is None:
            continue
        if record.outcome is Outcome.SERVED:
            row.queries_served += 1
            row.rows_delivered += record.row_count or 0
        else:
            row.queries_refused += 1
            row.query_refusals[record.error_code or "failed"] += 1


def _tables_named(sql: str) -> tuple[str, ...]:
    try:
        parsed = sqlglot.parse(sql, read="postgres")
    except (sqlglot.errors.SqlglotError, ValueError, RecursionError):
        return ()  # unparseable SQL was refused before naming any dataset
    return tuple(
        f"{t.db}.{t.name}" for tree in parsed if tree for t in tree.find_all(exp.Table) if t.db
    )


def _datasets(tables: Iterable[str]) -> list[str]:
    return sorted({t.split(".", 1)[0] for t in tables})
