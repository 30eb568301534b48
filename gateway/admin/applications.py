"""Sharing applications and the grants they produce, in the administration store.

Every change runs in one transaction that also writes the application's event (who,
when, from which state to which, why), the notifications it causes, the grant it creates
or revokes (bumping the ``grants`` counter so every gateway process drops its cached
decisions at once), and — through the ``record`` callback, just before the commit — its
audit record (docs/design.md "Administrative changes"). The life cycle itself is
:mod:`gateway.admin.lifecycle`; what an application may ask for is checked against the
catalog and the system registry here.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Row, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from gateway.admin.accounts import Recorder, no_record
from gateway.admin.calendar import CHINA, WorkingCalendar
from gateway.admin.db import AdminDb
from gateway.admin.lifecycle import (
    Action,
    Relation,
    State,
    check_transition,
    relations_of,
)
from gateway.admin.outbox import Outbox, Recipient
from gateway.admin.quotas import check_narrower, parse_quotas
from gateway.admin.schema import application_events, applications, grants
from gateway.auth.systems import SystemRegistry
from gateway.catalog import Catalog, SharingClass
from gateway.domain import MaskSpec, Principal
from gateway.errors import (
    AccessDeniedError,
    ConfigurationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
)
from gateway.i18n import msg
from gateway.policy.filters import parse_row_filter
from gateway.policy.grants import Grant
from gateway.policy.roles import Role
from gateway.query.rewrite.masks import mask_key_column

__all__ = [
    "Application",
    "ApplicationInput",
    "ApplicationStore",
    "Narrowing",
    "StoredGrants",
]

MaskCheck = Callable[[MaskSpec, str], None]


@dataclass(frozen=True, slots=True)
class ApplicationInput:
    """What an applicant asks for (申请内容)."""

    systems: tuple[str, ...]
    dataset: str
    #: ``dataset.table`` -> columns.
    columns: Mapping[str, tuple[str, ...]]
    purpose: str
    legal_basis: str
    scenario: str
    period_from: date
    period_until: date | None
    justification: str
    contact: str
    row_cap: int | None = None
    #: Quotas asked for (``queries_per_day`` … ``rows_per_month``).
    quotas: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Narrowing:
    """What an approval may impose: fewer columns, stricter masks, an extra row filter, a
    lower row cap, a shorter period. Empty: approved as asked."""

    drop_columns: tuple[str, ...] = ()
    masks: Mapping[str, str] = field(default_factory=dict)
    row_filters: Mapping[str, str] = field(default_factory=dict)
    row_cap: int | None = None
    period_until: date | None = None
    #: Quotas lowered or added (never raised).
    quotas: Mapping[str, int] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not (
            self.drop_columns
            or self.masks
            or self.row_filters
            or self.row_cap
            or self.period_until
            or self.quotas
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "drop_columns": list(self.drop_columns),
            "masks": dict(self.masks),
            "row_filters": dict(self.row_filters),
            "row_cap": self.row_cap,
            "period_until": self.period_until.isoformat() if self.period_until else None,
            "quotas": dict(self.quotas),
        }


@dataclass(frozen=True, slots=True)
class Application:
    id: str
    consumer_department: str
    systems: tuple[str, ...]
    dataset: str
    provider_department: str
    columns: Mapping[str, tuple[str, ...]]
    purpose: str
    legal_basis: str
    scenario: str
    period_from: date
    period_until: date | None
    row_cap: int | None
    justification: str
    contact: str
    state: State
    created_by: str
    created_at: datetime
    submitted_at: datetime | None
    reply_due: date | None
    decided_at: datetime | None
    escalated_at: datetime | None
    decision: Mapping[str, Any] | None
    reason: str | None
    renewal_of: str | None
    version: int
    updated_at: datetime
    quotas: Mapping[str, int] = field(default_factory=dict)

    def clock(self, calendar: WorkingCalendar, now: datetime) -> dict[str, Any] | None:
        """The reply clock while the provider owes an answer: working days left
        (negative: overdue by that many), due date, overdue flag."""
        if not self.state.awaits_provider or self.reply_due is None:
            return None
        today = WorkingCalendar.local_date(now)
        left = calendar.working_days_between(today, self.reply_due)
        return {
            "reply_due": self.reply_due.isoformat(),
            "working_days_left": left,
            "overdue": today > self.reply_due,
            "escalated": self.escalated_at is not None,
            "calendar_known": calendar.covers(self.reply_due.year),
        }

    def to_json(self, calendar: WorkingCalendar, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state.value,
            "state_zh": self.state.label_zh,
            "consumer_department": self.consumer_department,
            "systems": list(self.systems),
            "dataset": self.dataset,
            "provider_department": self.provider_department,
            "columns": {t: list(c) for t, c in self.columns.items()},
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
            "scenario": self.scenario,
            "period_from": self.period_from.isoformat(),
            "period_until": self.period_until.isoformat() if self.period_until else None,
            "row_cap": self.row_cap,
            "quotas": dict(self.quotas),
            "justification": self.justification,
            "contact": self.contact,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "submitted_at": self.submitted_at.isoformat() if self.submitted_at else None,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "escalated_at": self.escalated_at.isoformat() if self.escalated_at else None,
            "decision": dict(self.decision) if self.decision else None,
            "reason": self.reason,
            "renewal_of": self.renewal_of,
            "version": self.version,
            "deadline": self.clock(calendar, now),
        }


def _application(row: Row[Any]) -> Application:
    return Application(
        id=row.id,
        consumer_department=row.consumer_department,
        systems=tuple(row.systems),
        dataset=row.dataset,
        provider_department=row.provider_department,
        columns={t: tuple(c) for t, c in row.columns.items()},
        purpose=row.purpose,
        legal_basis=row.legal_basis,
        scenario=row.scenario,
        period_from=row.period_from,
        period_until=row.period_until,
        row_cap=row.row_cap,
        justification=row.justification,
        contact=row.contact,
        state=State(row.state),
        created_by=row.created_by,
        created_at=row.created_at,
        submitted_at=row.submitted_at,
        reply_due=row.reply_due,
        decided_at=row.decided_at,
        escalated_at=row.escalated_at,
        decision=row.decision,
        reason=row.reason,
        renewal_of=row.renewal_of,
        version=row.version,
        updated_at=row.updated_at,
        quotas=dict(row.quotas or {}),
    )


def _grant(row: Row[Any]) -> Grant:
    return Grant(
        id=row.id,
        application_id=row.application_id,
        department=row.consumer_department,
        systems=frozenset(row.systems),
        dataset=row.dataset,
        columns={t: frozenset(c) for t, c in row.columns.items()},
        purpose=row.purpose,
        masks={c: MaskSpec.parse(m) for c, m in row.masks.items()},
        row_filters=dict(row.row_filters),
        row_cap=row.row_cap,
        quotas=dict(row.quotas or {}),
        valid_from=row.valid_from,
        valid_until=row.valid_until,
    )


def _start_of(day: date) -> datetime:
    """Midnight in China at the start of ``day``, as UTC."""
    return datetime.combine(day, time(0), tzinfo=CHINA).astimezone(UTC)


class ApplicationStore:
    """Applications: create, edit, act on, list, and the sweeps (escalation, expiry)."""

    def __init__(
        self,
        db: AdminDb,
        *,
        catalog: Catalog | Callable[[], Catalog],
        registry: SystemRegistry | Callable[[], SystemRegistry],
        calendar: WorkingCalendar,
        check_mask: MaskCheck,
        reply_days: Callable[[str], int],
        reminder_days: int = 5,
        new_suffix: Callable[[], str] = lambda: secrets.token_hex(3),
    ) -> None:
        self._db = db
        # The active policy version's catalog and registry (they can change while serving).
        self._catalog_of: Callable[[], Catalog] = catalog if callable(catalog) else lambda: catalog
        self._registry_of: Callable[[], SystemRegistry] = (
            registry if callable(registry) else lambda: registry
        )
        self._calendar = calendar
        self._check_mask = check_mask
        self._reply_days = reply_days
        self._reminder_days = reminder_days
        self._new_suffix = new_suffix

    @property
    def calendar(self) -> WorkingCalendar:
        return self._calendar

    # -- reading -----------------------------------------------------------------------

    def get(self, app_id: str, viewer: Principal) -> Application:
        """The application if ``viewer`` may see it; NotFoundError otherwise (others'
        applications are not confirmed to exist)."""
        with self._db.read() as conn:
            row = conn.execute(select(applications).where(applications.c.id == app_id)).first()
        if row is None or not self._relations(viewer, row):
            raise NotFoundError(msg("No application {app_id!r} that you may see.", app_id=app_id))
        return _application(row)

    def history(self, app_id: str) -> list[dict[str, Any]]:
        with self._db.read() as conn:
            rows = conn.execute(
                select(application_events)
                .where(application_events.c.application_id == app_id)
                .order_by(application_events.c.id)
            ).all()
        return [
            {
                "at": r.at.isoformat(),
                "actor": r.actor,
                "action": r.action,
                "from": r.from_state,
                "to": r.to_state,
                "comment": r.comment,
                "details": r.details,
                "audit_id": r.audit_id,
            }
            for r in rows
        ]

    def grant_of(self, app_id: str) -> Grant | None:
        with self._db.read() as conn:
            row = conn.execute(
                select(grants)
                .where(grants.c.application_id == app_id)
                .order_by(grants.c.created_at.desc())
            ).first()
        return _grant(row) if row is not None else None

    def visible(
        self,
        viewer: Principal,
        *,
        states: Iterable[str] = (),
        dataset: str | None = None,
    ) -> list[Application]:
        """Every application ``viewer`` may see, newest first (coordinators and auditors:
        all; officers: their department's datasets; applicants: their department's)."""
        query = select(applications).order_by(applications.c.created_at.desc())
        wanted = [State(s).value for s in states]
        if wanted:
            query = query.where(applications.c.state.in_(wanted))
        if dataset:
            query = query.where(applications.c.dataset == dataset)
        if not viewer.roles & {Role.COORDINATOR, Role.AUDITOR}:
            mine: list[Any] = []
            if Role.APPLICANT in viewer.roles:
                mine.append(applications.c.consumer_department == viewer.department)
            if Role.PROVIDER_OFFICER in viewer.roles:
                mine.append(applications.c.provider_department == viewer.department)
            if not mine:
                return []
            query = query.where(or_(*mine))
        with self._db.read() as conn:
            return [_application(r) for r in conn.execute(query.limit(1000))]

    def grants_visible(self, viewer: Principal) -> list[tuple[Grant, str]]:
        """(grant, state) pairs the viewer may see: its department's (consumer side) and
        those on its department's datasets (provider side); all for coordinators."""
        query = select(grants).order_by(grants.c.created_at.desc())
        if not viewer.roles & {Role.COORDINATOR, Role.AUDITOR}:
            catalog = self._catalog_of()
            owned = [n for n, d in catalog.datasets.items() if d.owner == viewer.department]
            query = query.where(
                or_(grants.c.consumer_department == viewer.department, grants.c.dataset.in_(owned))
            )
        with self._db.read() as conn:
            return [(_grant(r), r.state) for r in conn.execute(query.limit(1000))]

    # -- changing ----------------------------------------------------------------------

    def create(
        self,
        actor: Principal,
        data: ApplicationInput,
        *,
        now: datetime,
        renewal_of: str | None = None,
        record: Recorder = no_record,
    ) -> Application:
        """A draft of ``actor``'s department. Raises InvalidRequestError for what the
        catalog or registry refuses (naming it), AccessDeniedError for a non-applicant."""
        if Role.APPLICANT not in actor.roles:
            raise AccessDeniedError(msg("Only applicants (申请人) of a department may apply."))
        provider = self._check_input(actor.department, data)
        for _attempt in range(5):
            app_id = f"SQ{WorkingCalendar.local_date(now):%Y%m%d}-{self._new_suffix()}".upper()
            try:
                with self._db.transaction() as conn:
                    conn.execute(
                        insert(applications).values(
                            id=app_id,
                            consumer_department=actor.department,
                            provider_department=provider,
                            state=State.DRAFT.value,
                            created_by=actor.officer or "",
                            created_at=now,
                            updated_at=now,
                            renewal_of=renewal_of,
                            version=1,
                            **_input_values(data),
                        )
                    )
                    eid, event = self._event(conn, app_id, actor, "create", None, State.DRAFT, now)
                    payload = {"type": "application.created", **event, **_input_json(data)}
                    self._evidence(conn, eid, record, payload)
                return self.get(app_id, actor)
            except IntegrityError:  # the random suffix collided: draw another
                continue
        raise InvalidRequestError(msg("Could not allocate an application number; try again."))

    def edit(
        self,
        app_id: str,
        actor: Principal,
        data: ApplicationInput,
        *,
        now: datetime,
        record: Recorder = no_record,
    ) -> Application:
        provider = self._check_input(actor.department, data)
        with self._db.transaction() as conn:
            row = self._locked(conn, app_id, actor)
            app = _application(row)
            if data.dataset != app.dataset or provider != app.provider_department:
                raise InvalidRequestError(
                    msg("The dataset of an application cannot change; apply anew.")
                )
            check_transition(
                Action.EDIT, app.state, self._relations(actor, row), reason=None, escalated=False
            )
            conn.execute(
                update(applications)
                .where(applications.c.id == app_id)
                .values(version=app.version + 1, updated_at=now, **_input_values(data))
            )
            eid, event = self._event(conn, app_id, actor, "edit", app.state, app.state, now)
            payload = {"type": "application.edited", **event, **_input_json(data)}
            self._evidence(conn, eid, record, payload)
        return self.get(app_id, actor)

    def act(
        self,
        app_id: str,
        action: Action,
        actor: Principal,
        *,
        now: datetime,
        reason: str | None = None,
        narrowing: Narrowing | None = None,
        expected_version: int | None = None,
        record: Recorder = no_record,
    ) -> Application:
        """Take ``action`` (not EDIT) on an application. Raises NotFoundError,
        AccessDeniedError, ConflictError (wrong state, or ``expected_version`` is stale),
        InvalidRequestError (a reason or narrowing that cannot be accepted)."""
        with self._db.transaction() as conn:
            row = self._locked(conn, app_id, actor)
            app = _application(row)
            if expected_version is not None and expected_version != app.version:
                raise ConflictError(
                    msg(
                        "The application changed meanwhile (version {version}, you saw "
                        "{seen}); reload it.",
                        version=app.version,
                        seen=expected_version,
                    )
                )
            try:
                target = check_transition(
                    action,
                    app.state,
                    self._relations(actor, row),
                    reason=reason,
                    escalated=app.escalated_at is not None,
                )
            except ValueError as exc:
                raise InvalidRequestError(str(exc)) from None
            values: dict[str, Any] = {"version": app.version + 1, "updated_at": now}
            details: dict[str, Any] = {}
            notify: list[tuple[list[Recipient], str, str]] = []
            if action is Action.SUBMIT:
                self._check_complete(app)
                days = self._reply_days(app.dataset)
                due = self._calendar.add_working_days(WorkingCalendar.local_date(now), days)
                values |= {
                    "submitted_at": now,
                    "reply_due": due,
                    "escalated_at": None,
                    "reason": None,
                }
                details |= {"reply_due": due.isoformat(), "reply_working_days": days}
                notify.append(
                    (
                        [Recipient.role(Role.PROVIDER_OFFICER, app.provider_department)],
                        "application.submitted",
                        f"新的共享申请 {app.id}：{app.consumer_department} 申请 {app.dataset}，"
                        f"请于 {due.isoformat()} 前答复",
                    )
                )
            elif action in (Action.APPROVE, Action.ARBITRATE_APPROVE):
                narrow = narrowing or Narrowing()
                grant_id, grant_values = self._grant_values(app, narrow, now)
                conn.execute(insert(grants).values(**grant_values))
                self._db.bump(conn, "grants")
                active = grant_values["valid_from"] <= now
                target = State.ACTIVE if active else State.APPROVED
                values |= {
                    "decided_at": now,
                    "decision": {"narrowed": not narrow.is_empty, **narrow.to_json()},
                    "reason": reason,
                }
                details |= {"grant": grant_id, "narrowed": not narrow.is_empty, **narrow.to_json()}
                notify.append(
                    self._to_applicant(
                        app, "application.approved", f"共享申请 {app.id} 已批准（授权 {grant_id}）"
                    )
                )
            elif action in (Action.REFUSE, Action.ARBITRATE_REFUSE, Action.RETURN):
                values |= {"reason": reason}
                if action is not Action.RETURN:
                    values["decided_at"] = now
                verb = "退回补充材料" if action is Action.RETURN else "不予批准"
                notify.append(
                    self._to_applicant(
                        app, f"application.{action.value}", f"共享申请 {app.id} {verb}：{reason}"
                    )
                )
            elif action is Action.REVOKE:
                conn.execute(
                    update(grants)
                    .where(grants.c.application_id == app_id, grants.c.state == "active")
                    .values(
                        state="revoked",
                        revoked_at=now,
                        revoked_by=actor.officer,
                        revoke_reason=reason,
                    )
                )
                self._db.bump(conn, "grants")
                values |= {"reason": reason}
                notify.append(
                    self._to_applicant(
                        app, "grant.revoked", f"共享申请 {app.id} 的授权已撤销：{reason}"
                    )
                )
            if target is not None:
                values["state"] = target.value
            conn.execute(update(applications).where(applications.c.id == app_id).values(**values))
            eid, event = self._event(
                conn,
                app_id,
                actor,
                action.value,
                app.state,
                target or app.state,
                now,
                comment=reason,
                details=details or None,
            )
            for recipients, kind, subject in notify:
                Outbox.add(conn, recipients, kind=kind, subject=subject, body=event, now=now)
            payload = {"type": f"application.{action.value}", **event, "details": details}
            self._evidence(conn, eid, record, payload)
        return self.get(app_id, actor)

    def renew(
        self,
        app_id: str,
        actor: Principal,
        *,
        now: datetime,
        period_until: date | None,
        record: Recorder = no_record,
    ) -> Application:
        """A new draft continuing an active application after its period (renewal before
        expiry). Raises ConflictError unless the application is active or approved."""
        old = self.get(app_id, actor)
        if old.state not in (State.ACTIVE, State.APPROVED):
            raise ConflictError(msg("Only an approved or active application can be renewed."))
        grant = self.grant_of(app_id)
        ends = grant.valid_until if grant and grant.valid_until else now
        start = WorkingCalendar.local_date(ends)
        data = ApplicationInput(
            systems=old.systems,
            dataset=old.dataset,
            columns=old.columns,
            purpose=old.purpose,
            legal_basis=old.legal_basis,
            scenario=old.scenario,
            period_from=start,
            period_until=period_until,
            justification=old.justification,
            contact=old.contact,
            row_cap=old.row_cap,
            quotas=grant.quotas if grant else old.quotas,
        )
        return self.create(actor, data, now=now, renewal_of=app_id, record=record)

    # -- sweeps ------------------------------------------------------------------------

    def escalate_overdue(self, *, now: datetime, record: Recorder = no_record) -> list[str]:
        """Escalate every application whose provider missed its reply date to the
        coordinators (once). Idempotent and safe to run in several replicas."""
        today = WorkingCalendar.local_date(now)
        escalated: list[str] = []
        with self._db.transaction() as conn:
            rows = conn.execute(
                select(applications).where(
                    applications.c.state.in_([State.SUBMITTED.value, State.UNDER_REVIEW.value]),
                    applications.c.escalated_at.is_(None),
                    applications.c.reply_due < today,
                )
            ).all()
            for row in rows:
                updated = conn.execute(
                    update(applications)
                    .where(applications.c.id == row.id, applications.c.escalated_at.is_(None))
                    .values(escalated_at=now, updated_at=now, version=row.version + 1)
                )
                if not updated.rowcount:
                    continue
                eid, event = self._event(
                    conn,
                    row.id,
                    None,
                    "escalate",
                    State(row.state),
                    State(row.state),
                    now,
                    comment=f"答复期限 {row.reply_due.isoformat()} 已过，提交数据局协调",
                )
                Outbox.add(
                    conn,
                    [
                        Recipient.role(Role.COORDINATOR),
                        Recipient.role(Role.PROVIDER_OFFICER, row.provider_department),
                    ],
                    kind="application.escalated",
                    subject=f"共享申请 {row.id} 逾期未答复，已提交数据局协调",
                    body=event,
                    now=now,
                )
                self._evidence(conn, eid, record, {"type": "application.escalated", **event})
                escalated.append(row.id)
        return escalated

    def expire_and_remind(
        self, *, now: datetime, record: Recorder = no_record
    ) -> dict[str, list[str]]:
        """End grants whose period is over (their applications become expired), activate
        approved ones whose period began, and remind holders once before a grant ends."""
        out: dict[str, list[str]] = {"expired": [], "activated": [], "reminded": []}
        soon = _start_of(
            self._calendar.add_working_days(WorkingCalendar.local_date(now), self._reminder_days)
        )
        with self._db.transaction() as conn:
            ended = conn.execute(
                select(grants).where(grants.c.state == "active", grants.c.valid_until <= now)
            ).all()
            for g in ended:
                conn.execute(update(grants).where(grants.c.id == g.id).values(state="expired"))
                conn.execute(
                    update(applications)
                    .where(
                        applications.c.id == g.application_id,
                        applications.c.state.in_([State.ACTIVE.value, State.APPROVED.value]),
                    )
                    .values(
                        state=State.EXPIRED.value,
                        updated_at=now,
                        version=applications.c.version + 1,
                    )
                )
                eid, event = self._event(
                    conn,
                    g.application_id,
                    None,
                    "expire",
                    State.ACTIVE,
                    State.EXPIRED,
                    now,
                    details={"grant": g.id},
                )
                self._evidence(conn, eid, record, {"type": "grant.expired", **event})
                out["expired"].append(g.id)
            if ended:
                self._db.bump(conn, "grants")
            started = conn.execute(
                select(applications.c.id)
                .join(grants, grants.c.application_id == applications.c.id)
                .where(
                    applications.c.state == State.APPROVED.value,
                    grants.c.state == "active",
                    grants.c.valid_from <= now,
                )
            ).all()
            for (app_id,) in started:
                conn.execute(
                    update(applications)
                    .where(applications.c.id == app_id)
                    .values(
                        state=State.ACTIVE.value, updated_at=now, version=applications.c.version + 1
                    )
                )
                eid, event = self._event(
                    conn, app_id, None, "activate", State.APPROVED, State.ACTIVE, now
                )
                self._evidence(conn, eid, record, {"type": "grant.activated", **event})
                out["activated"].append(app_id)
            due = conn.execute(
                select(grants, applications.c.created_by, applications.c.provider_department)
                .join(applications, grants.c.application_id == applications.c.id)
                .where(
                    grants.c.state == "active",
                    grants.c.reminded_at.is_(None),
                    grants.c.valid_until <= soon,
                    grants.c.valid_until > now,
                )
            ).all()
            for g in due:
                conn.execute(update(grants).where(grants.c.id == g.id).values(reminded_at=now))
                Outbox.add(
                    conn,
                    [
                        Recipient.account(g.created_by),
                        Recipient.role(Role.APPLICANT, g.consumer_department),
                        Recipient.role(Role.PROVIDER_OFFICER, g.provider_department),
                    ],
                    kind="grant.expiring",
                    subject=(
                        f"授权 {g.id} 将于 {g.valid_until.astimezone(CHINA):%Y-%m-%d} 到期，"
                        "如需继续请申请续期"
                    ),
                    body={
                        "grant": g.id,
                        "application": g.application_id,
                        "valid_until": g.valid_until.isoformat(),
                    },
                    now=now,
                )
                out["reminded"].append(g.id)
        return out

    # -- helpers -----------------------------------------------------------------------

    def _relations(self, viewer: Principal, row: Row[Any]) -> frozenset[Relation]:
        if not viewer.is_person:
            return frozenset()
        return relations_of(
            viewer.roles,
            viewer.department,
            consumer=row.consumer_department,
            provider=row.provider_department,
        )

    def _locked(self, conn: Connection, app_id: str, actor: Principal) -> Row[Any]:
        row = conn.execute(
            select(applications).where(applications.c.id == app_id).with_for_update()
        ).first()
        if row is None or not self._relations(actor, row):
            raise NotFoundError(msg("No application {app_id!r} that you may see.", app_id=app_id))
        return row

    @staticmethod
    def _event(
        conn: Connection,
        app_id: str,
        actor: Principal | None,
        action: str,
        before: State | None,
        after: State | None,
        now: datetime,
        *,
        comment: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Insert one history entry; returns its row id (to link its audit record with
        :meth:`_evidence`) and the event as notifications and the audit record carry it."""
        name = (actor.officer or actor.system) if actor else "gateway"
        inserted = conn.execute(
            insert(application_events).values(
                application_id=app_id,
                at=now,
                actor=name,
                action=action,
                from_state=before.value if before else None,
                to_state=after.value if after else None,
                comment=comment,
                details=dict(details) if details else None,
            )
        )
        # An INSERT of one row always has its key (SQLAlchemy types it optional).
        event_id: int = (inserted.inserted_primary_key or (0,))[0]
        return event_id, {
            "application": app_id,
            "actor": name,
            "action": action,
            "from": before.value if before else None,
            "to": after.value if after else None,
            "at": now.isoformat(),
            "comment": comment,
        }

    @staticmethod
    def _evidence(
        conn: Connection, event_id: int, record: Recorder, payload: dict[str, Any]
    ) -> None:
        """Commit the audit record of one history entry and link the entry to it, so an
        application's history points at the evidence of each step."""
        receipt = record(payload)
        if receipt is not None:
            conn.execute(
                update(application_events)
                .where(application_events.c.id == event_id)
                .values(audit_id=receipt.audit_id)
            )

    @staticmethod
    def _to_applicant(
        app: Application, kind: str, subject: str
    ) -> tuple[list[Recipient], str, str]:
        return (
            [
                Recipient.account(app.created_by),
                Recipient.role(Role.APPLICANT, app.consumer_department),
            ],
            kind,
            subject,
        )

    def _check_input(self, department: str, data: ApplicationInput) -> str:
        """Validate what is asked for; returns the provider department."""
        dataset = self._catalog_of().datasets.get(data.dataset)
        if dataset is None:
            raise InvalidRequestError(
                msg(
                    "No dataset {dataset!r} in the catalog (see GET /v1/catalog).",
                    dataset=data.dataset,
                )
            )
        if dataset.sharing_class is SharingClass.NOT_SHARED:
            raise InvalidRequestError(
                msg(
                    "Dataset {dataset} is not shared (不予共享); it cannot be applied for.",
                    dataset=data.dataset,
                )
            )
        if dataset.sharing_class is SharingClass.UNCONDITIONAL:
            raise InvalidRequestError(
                msg(
                    "Dataset {dataset} is shared unconditionally (无条件共享): every "
                    "registered system may query it without an application.",
                    dataset=data.dataset,
                )
            )
        if not data.columns:
            raise InvalidRequestError(msg("Name the tables and columns you need ('columns')."))
        for table_name, columns in data.columns.items():
            table = self._catalog_of().table(table_name)
            if table is None or table.dataset != data.dataset:
                raise InvalidRequestError(
                    msg(
                        "{table!r} is not a table of {dataset}; tables: {tables}",
                        table=table_name,
                        dataset=data.dataset,
                        tables=", ".join(sorted(t.qualified_name for t in dataset.tables.values())),
                    )
                )
            table_class = self._catalog_of().sharing_class_of(table)
            if table_class is SharingClass.NOT_SHARED:
                raise InvalidRequestError(
                    msg(
                        "Table {table} is not shared (不予共享); it cannot be applied for.",
                        table=table_name,
                    )
                )
            unknown = [c for c in columns if table.column(c) is None]
            if unknown or not columns:
                raise InvalidRequestError(
                    msg(
                        "{table} has no column(s) {unknown}; columns: {columns}",
                        table=table_name,
                        unknown=", ".join(unknown),
                        columns=", ".join(table.columns),
                    )
                    if unknown
                    else msg("Name at least one column of {table}.", table=table_name)
                )
        if data.purpose not in self._catalog_of().purposes:
            known = ", ".join(sorted(self._catalog_of().purposes))
            raise InvalidRequestError(
                msg(
                    "Unknown purpose {purpose!r}; purposes: {known}",
                    purpose=data.purpose,
                    known=known,
                )
            )
        if not data.systems:
            raise InvalidRequestError(msg("Name the system(s) that will query under the grant."))
        for system_id in data.systems:
            system = self._registry_of().get(system_id)
            if system is None or system.department != department:
                raise InvalidRequestError(
                    msg(
                        "{system!r} is not a registered system of your department.",
                        system=system_id,
                    )
                )
            if data.purpose not in system.purposes:
                raise InvalidRequestError(
                    msg(
                        "System {system} is not entitled to purpose {purpose!r}; ask the "
                        "gateway's administrator to register it first.",
                        system=system_id,
                        purpose=data.purpose,
                    )
                )
        if data.period_until is not None and data.period_until <= data.period_from:
            raise InvalidRequestError(msg("period_until must be after period_from."))
        if data.row_cap is not None and data.row_cap <= 0:
            raise InvalidRequestError(msg("row_cap must be a positive number of rows."))
        _check_quotas(data.quotas, "quotas")
        return dataset.owner

    @staticmethod
    def _check_complete(app: Application) -> None:
        missing = [
            name
            for name in ("legal_basis", "scenario", "justification", "contact")
            if not str(getattr(app, name)).strip()
        ]
        if missing:
            raise InvalidRequestError(
                "Before submitting, fill in: "
                + ", ".join(missing)
                + " (依据, 使用场景, 理由, 联系人)."
            )

    def _grant_values(
        self, app: Application, narrow: Narrowing, now: datetime
    ) -> tuple[str, dict[str, Any]]:
        columns: dict[str, list[str]] = {t: list(c) for t, c in app.columns.items()}
        for qualified in narrow.drop_columns:
            owner, _, column = qualified.rpartition(".")
            if column not in columns.get(owner, []):
                raise InvalidRequestError(
                    msg("{column} was not asked for; it cannot be dropped.", column=qualified)
                )
            columns[owner].remove(column)
        columns = {t: c for t, c in columns.items() if c}
        if not columns:
            raise InvalidRequestError(
                msg("Dropping every column is a refusal: refuse with a reason.")
            )
        for qualified, spec in narrow.masks.items():
            table_name, _, column = qualified.rpartition(".")
            if column not in columns.get(table_name, []):
                raise InvalidRequestError(
                    msg("{column} is not granted; it cannot be masked.", column=qualified)
                )
            described = self._catalog_of().table(table_name)
            col = described.column(column) if described else None
            if col is None:
                raise InvalidRequestError(msg("Unknown column {column}.", column=qualified))
            try:
                mask = MaskSpec.parse(spec)
                self._check_mask(mask, col.type)
                key = mask_key_column(mask)
            except ConfigurationError as exc:
                raise InvalidRequestError(f"Mask for {qualified}: {exc.detail}") from None
            key_col = described.column(key) if described and key else None
            if key and (key_col is None or key_col.type not in ("text", "integer")):
                raise InvalidRequestError(
                    f"Mask for {qualified}: key={key} must be a text or integer column of "
                    f"{table_name}."
                )
        for table_name, template in narrow.row_filters.items():
            filtered = self._catalog_of().table(table_name)
            if filtered is None or table_name not in columns:
                raise InvalidRequestError(
                    msg("{table} is not granted; it cannot be filtered.", table=table_name)
                )
            try:
                parse_row_filter(template, filtered)
            except ConfigurationError as exc:
                raise InvalidRequestError(f"Row filter for {table_name}: {exc.detail}") from None
        _check_quotas(narrow.quotas, "narrowing.quotas")
        cap = app.row_cap
        if narrow.row_cap is not None:
            if narrow.row_cap <= 0 or (cap is not None and narrow.row_cap > cap):
                raise InvalidRequestError(msg("A narrower approval may only lower the row cap."))
            cap = narrow.row_cap
        until = app.period_until
        if narrow.period_until is not None:
            if (
                until is not None and narrow.period_until > until
            ) or narrow.period_until <= app.period_from:
                raise InvalidRequestError(msg("A narrower approval may only shorten the period."))
            until = narrow.period_until
        grant_id = f"GR-{app.id}"
        if app.renewal_of:
            grant_id += "-R"
        return grant_id, {
            "id": grant_id,
            "application_id": app.id,
            "consumer_department": app.consumer_department,
            "systems": list(app.systems),
            "dataset": app.dataset,
            "columns": columns,
            "purpose": app.purpose,
            "masks": dict(narrow.masks),
            "row_filters": dict(narrow.row_filters),
            "row_cap": cap,
            "quotas": check_narrower(app.quotas, narrow.quotas),
            # The period is in Beijing dates: from the start of its first day to the end
            # of its last (the start of the next day).
            # Never valid before it was approved (the grant is evidence of when).
            "valid_from": max(_start_of(app.period_from), now),
            "valid_until": _start_of(until + timedelta(days=1)) if until else None,
            "state": "active",
            "created_at": now,
        }


def _check_quotas(quotas: Mapping[str, int], where: str) -> None:
    try:
        parse_quotas(quotas, where)
    except ConfigurationError as exc:
        raise InvalidRequestError(exc.detail) from None


def _input_values(data: ApplicationInput) -> dict[str, Any]:
    return {
        "systems": sorted(set(data.systems)),
        "dataset": data.dataset,
        "columns": {t: list(dict.fromkeys(c)) for t, c in sorted(data.columns.items())},
        "purpose": data.purpose,
        "legal_basis": data.legal_basis,
        "scenario": data.scenario,
        "period_from": data.period_from,
        "period_until": data.period_until,
        "row_cap": data.row_cap,
        "quotas": dict(data.quotas),
        "justification": data.justification,
        "contact": data.contact,
    }


def _input_json(data: ApplicationInput) -> dict[str, Any]:
    values = _input_values(data)
    values["period_from"] = data.period_from.isoformat()
    values["period_until"] = data.period_until.isoformat() if data.period_until else None
    return values


class StoredGrants:
    """The engine's view of the grants (a :class:`~gateway.policy.grants.GrantSource`):
    every non-revoked grant, loaded once per change of the ``grants`` counter. The
    counter is read at most every ``poll_s`` seconds from the store (other replicas'
    changes), and at once after a change made through this process."""

    def __init__(self, db: AdminDb, *, clock: Callable[[], float], poll_s: float = 0.5) -> None:
        self._db = db
        self._clock = clock
        self._poll_s = poll_s
        self._lock = threading.Lock()
        self._epoch = -1
        self._checked_at = float("-inf")
        self._by_department: dict[str, tuple[Grant, ...]] = {}

    def epoch(self) -> int:
        with self._lock:
            now = self._clock()
            if now - self._checked_at >= self._poll_s:
                current = self._db.epoch("grants")
                self._checked_at = now
                if current != self._epoch:
                    self._load(current)
            return self._epoch

    def refresh(self) -> None:
        """Drop the poll interval once (after a change made by this process)."""
        with self._lock:
            self._checked_at = float("-inf")

    def grants_of(self, department: str) -> tuple[Grant, ...]:
        self.epoch()
        with self._lock:
            return self._by_department.get(department, ())

    def _load(self, epoch: int) -> None:
        with self._db.read() as conn:
            rows = conn.execute(select(grants).where(grants.c.state == "active")).all()
        by_department: dict[str, list[Grant]] = {}
        for row in rows:
            grant = _grant(row)
            by_department.setdefault(grant.department, []).append(grant)
        self._by_department = {d: tuple(g) for d, g in by_department.items()}
        self._epoch = epoch
