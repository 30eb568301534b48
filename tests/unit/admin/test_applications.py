"""The application life cycle in the store: every transition, who may take it, the reply
clock, escalation, arbitration, narrowing, revocation, expiry and reminders."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.admin.applications import ApplicationInput, ApplicationStore, Narrowing, StoredGrants
from gateway.admin.calendar import WorkingCalendar
from gateway.admin.db import AdminDb
from gateway.admin.lifecycle import Action, State
from gateway.admin.outbox import Outbox
from gateway.catalog import SharingClass
from gateway.domain import Principal
from gateway.errors import AccessDeniedError, ConflictError, InvalidRequestError, NotFoundError
from gateway.policy.roles import Role
from gateway.query.rewrite.masks import check_mask_spec
from gateway.settings import Settings
from gateway.wiring import load_policy_bundle

ROOT = Path(__file__).resolve().parents[3]
# A Friday before the 2026 Spring Festival: ten working days end on 2026-03-05.
FRIDAY = datetime(2026, 2, 13, 2, 0, tzinfo=UTC)  # 10:00 in Beijing


def person(username: str, department: str, *roles: Role) -> Principal:
    return Principal(system="", department=department, officer=username, roles=frozenset(roles))


APPLICANT = person("zhang.san", "rsj", Role.APPLICANT)
OFFICER = person("li.si", "gaj", Role.PROVIDER_OFFICER)
OTHER_OFFICER = person("wang.wu", "mzj", Role.PROVIDER_OFFICER)
COORDINATOR = person("zhao.liu", "sjj", Role.COORDINATOR)
AUDITOR = person("qian.qi", "sjj", Role.AUDITOR)
OTHER_APPLICANT = person("sun.ba", "ybj", Role.APPLICANT)

REQUEST = ApplicationInput(
    systems=("rsj-subsidy",),
    dataset="population",
    columns={"population.people": ("person_id", "name", "phone", "district")},
    purpose="employment_subsidy_review",
    legal_basis="《就业补助资金管理办法》第十二条",
    scenario="核验补贴申领人的户籍所在区",
    period_from=date(2026, 2, 13),
    period_until=date(2026, 12, 31),
    justification="申领人须为本区户籍",
    contact="张三 0531-12345678",
    row_cap=500,
)


@pytest.fixture
def store(admin_db: AdminDb) -> ApplicationStore:
    bundle = load_policy_bundle(Settings(policy_dir=ROOT / "policies"))
    return ApplicationStore(
        admin_db,
        catalog=bundle.catalog,
        registry=bundle.registry,
        calendar=WorkingCalendar.load(),
        check_mask=check_mask_spec,
        reply_days=lambda dataset: 10,
    )


def _submitted(store: ApplicationStore) -> str:
    app = store.create(APPLICANT, REQUEST, now=FRIDAY)
    assert app.state is State.DRAFT
    return store.act(app.id, Action.SUBMIT, APPLICANT, now=FRIDAY).id


def test_submit_sets_the_reply_date_in_working_days(store: ApplicationStore) -> None:
    app_id = _submitted(store)
    app = store.get(app_id, OFFICER)
    assert app.state is State.SUBMITTED
    assert app.reply_due == date(2026, 3, 5)
    clock = app.clock(store.calendar, FRIDAY)
    assert clock is not None and clock["working_days_left"] == 10 and not clock["overdue"]
    later = app.clock(store.calendar, datetime(2026, 3, 2, 2, 0, tzinfo=UTC))
    assert later is not None and later["working_days_left"] == 3


def test_approval_narrower_creates_the_narrowed_grant(
    store: ApplicationStore, admin_db: AdminDb
) -> None:
    app_id = _submitted(store)
    store.act(app_id, Action.REVIEW, OFFICER, now=FRIDAY)
    events: list[dict[str, Any]] = []
    narrowing = Narrowing(
        drop_columns=("population.people.phone",),
        masks={"population.people.name": "constant:已脱敏"},
        row_filters={"population.people": "district = {principal.district}"},
        row_cap=100,
        period_until=date(2026, 6, 30),
    )
    app = store.act(
        app_id, Action.APPROVE, OFFICER, now=FRIDAY, narrowing=narrowing, record=events.append
    )
    assert app.state is State.ACTIVE
    assert app.decision is not None and app.decision["narrowed"] is True
    grant = store.grant_of(app_id)
    assert grant is not None
    assert grant.columns == {"population.people": frozenset({"person_id", "name", "district"})}
    assert str(grant.masks["population.people.name"]) == "constant:已脱敏"
    assert grant.row_cap == 100 and grant.systems == {"rsj-subsidy"}
    assert grant.valid_from == FRIDAY  # not valid before it was approved
    assert grant.valid_until == datetime(2026, 6, 30, 16, 0, tzinfo=UTC)  # end of 6/30 Beijing
    assert events and events[-1]["type"] == "application.approve"
    assert events[-1]["details"]["grant"] == grant.id
    assert admin_db.epoch("grants") == 1
    # The applicant is told.
    inbox = Outbox(admin_db).for_person("zhang.san", APPLICANT.roles, "rsj")
    assert any(n.kind == "application.approved" for n in inbox)
    # The history says who did what.
    actions = [e["action"] for e in store.history(app_id)]
    assert actions == ["create", "submit", "review", "approve"]


@pytest.mark.parametrize(
    ("narrowing", "message"),
    [
        (Narrowing(drop_columns=("population.people.address",)), "not asked for"),
        (Narrowing(masks={"population.people.gender": "name"}), "not granted"),
        (Narrowing(masks={"population.people.name": "bucket:10"}), "Mask"),
        (Narrowing(row_cap=501), "only lower"),
        (Narrowing(period_until=date(2027, 1, 31)), "only shorten"),
        (Narrowing(row_filters={"population.people": "nope ="}), "Row filter"),
        (
            Narrowing(
                drop_columns=tuple(
                    f"population.people.{c}" for c in ("person_id", "name", "phone", "district")
                )
            ),
            "refusal",
        ),
    ],
)
def test_a_narrowing_can_only_narrow(
    store: ApplicationStore, narrowing: Narrowing, message: str
) -> None:
    app_id = _submitted(store)
    with pytest.raises(InvalidRequestError, match=message):
        store.act(app_id, Action.APPROVE, OFFICER, now=FRIDAY, narrowing=narrowing)
    assert store.get(app_id, OFFICER).state is State.SUBMITTED
    assert store.grant_of(app_id) is None


def test_refusal_and_return_need_a_reason_and_return_restarts_the_clock(
    store: ApplicationStore,
) -> None:
    app_id = _submitted(store)
    for action in (Action.REFUSE, Action.RETURN):
        with pytest.raises(InvalidRequestError, match="reason"):
            store.act(app_id, action, OFFICER, now=FRIDAY, reason="  ")
    store.act(app_id, Action.RETURN, OFFICER, now=FRIDAY, reason="请补充依据条款原文")
    assert store.get(app_id, APPLICANT).state is State.RETURNED
    store.edit(app_id, APPLICANT, replace(REQUEST, legal_basis="第十二条：……"), now=FRIDAY)
    monday = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    resubmitted = store.act(app_id, Action.SUBMIT, APPLICANT, now=monday)
    assert resubmitted.reply_due == date(2026, 3, 16)
    refused = store.act(app_id, Action.REFUSE, OFFICER, now=monday, reason="与申请用途无关")
    assert refused.state is State.REFUSED and refused.reason == "与申请用途无关"
    with pytest.raises(ConflictError, match="refused"):
        store.act(app_id, Action.APPROVE, OFFICER, now=monday)


def test_who_may_see_and_act(store: ApplicationStore) -> None:
    app_id = _submitted(store)
    with pytest.raises(NotFoundError):
        store.get(app_id, OTHER_APPLICANT)
    with pytest.raises(NotFoundError):
        store.act(app_id, Action.APPROVE, OTHER_OFFICER, now=FRIDAY)
    with pytest.raises(AccessDeniedError, match="provider"):
        store.act(app_id, Action.APPROVE, APPLICANT, now=FRIDAY)
    with pytest.raises(AccessDeniedError, match="provider"):
        store.act(app_id, Action.APPROVE, AUDITOR, now=FRIDAY)
    with pytest.raises(AccessDeniedError, match="applicant"):
        store.act(app_id, Action.WITHDRAW, OFFICER, now=FRIDAY)
    # The coordinator sees everything but arbitrates only escalated applications.
    assert store.get(app_id, COORDINATOR).id == app_id
    with pytest.raises(ConflictError, match="escalated"):
        store.act(app_id, Action.ARBITRATE_APPROVE, COORDINATOR, now=FRIDAY, reason="协调")
    # Anyone who may see it may comment.
    store.act(app_id, Action.COMMENT, AUDITOR, now=FRIDAY, reason="已关注")
    assert [a.id for a in store.visible(OTHER_APPLICANT)] == []
    assert [a.id for a in store.visible(OFFICER)] == [app_id]
    assert [a.id for a in store.visible(OTHER_OFFICER)] == []


def test_an_overdue_application_escalates_once_and_is_arbitrated(
    store: ApplicationStore, admin_db: AdminDb
) -> None:
    app_id = _submitted(store)
    due_day_evening = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)  # 20:00 on the due date
    assert store.escalate_overdue(now=due_day_evening) == []
    next_morning = datetime(2026, 3, 6, 1, 0, tzinfo=UTC)
    records: list[dict[str, Any]] = []
    assert store.escalate_overdue(now=next_morning, record=records.append) == [app_id]
    assert store.escalate_overdue(now=next_morning + timedelta(hours=1)) == []
    assert records[0]["type"] == "application.escalated"
    app = store.get(app_id, COORDINATOR)
    clock = app.clock(store.calendar, next_morning)
    assert clock is not None and clock["overdue"] and clock["escalated"]
    assert clock["working_days_left"] == -1
    inbox = Outbox(admin_db).for_person("zhao.liu", COORDINATOR.roles, "sjj")
    assert [n.kind for n in inbox] == ["application.escalated"]
    with pytest.raises(InvalidRequestError, match="reason"):
        store.act(app_id, Action.ARBITRATE_APPROVE, COORDINATOR, now=next_morning)
    done = store.act(
        app_id, Action.ARBITRATE_APPROVE, COORDINATOR, now=next_morning, reason="依据条例予以共享"
    )
    assert done.state is State.ACTIVE and store.grant_of(app_id) is not None


def test_revocation_reaches_the_engine_view_at_once(
    store: ApplicationStore, admin_db: AdminDb
) -> None:
    app_id = _submitted(store)
    store.act(app_id, Action.APPROVE, OFFICER, now=FRIDAY)
    ticks = iter(range(1000))
    view = StoredGrants(admin_db, clock=lambda: float(next(ticks)), poll_s=1000.0)
    assert [g.id for g in view.grants_of("rsj")] == [f"GR-{app_id}"]
    with pytest.raises(InvalidRequestError, match="reason"):
        store.act(app_id, Action.REVOKE, OFFICER, now=FRIDAY)
    store.act(app_id, Action.REVOKE, OFFICER, now=FRIDAY, reason="用途变更")
    assert store.get(app_id, APPLICANT).state is State.REVOKED
    view.refresh()  # what a change made by this process does
    assert view.grants_of("rsj") == ()


def test_expiry_reminder_and_renewal(store: ApplicationStore, admin_db: AdminDb) -> None:
    app_id = _submitted(store)
    store.act(app_id, Action.APPROVE, OFFICER, now=FRIDAY)
    before = datetime(2026, 12, 23, 2, 0, tzinfo=UTC)  # 6 working days before the end
    assert store.expire_and_remind(now=before)["reminded"] == []
    reminder_day = datetime(2026, 12, 25, 2, 0, tzinfo=UTC)
    assert store.expire_and_remind(now=reminder_day)["reminded"] == [f"GR-{app_id}"]
    assert store.expire_and_remind(now=reminder_day)["reminded"] == []
    inbox = Outbox(admin_db).for_person("zhang.san", APPLICANT.roles, "rsj")
    assert any(n.kind == "grant.expiring" for n in inbox)
    renewal = store.renew(app_id, APPLICANT, now=reminder_day, period_until=date(2027, 12, 31))
    assert renewal.renewal_of == app_id and renewal.period_from == date(2027, 1, 1)
    new_year = datetime(2026, 12, 31, 16, 0, 1, tzinfo=UTC)  # just after midnight in Beijing
    assert store.expire_and_remind(now=new_year)["expired"] == [f"GR-{app_id}"]
    assert store.get(app_id, APPLICANT).state is State.EXPIRED


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"dataset": "legal_person", "columns": {"legal_person.enterprises": ("name",)}},
            "unconditionally",
        ),
        (
            {"dataset": "case_records", "columns": {"case_records.incidents": ("incident_id",)}},
            "不予共享",
        ),
        ({"columns": {"population.people": ("salary",)}}, "no column"),
        ({"columns": {"subsidies.grants": ("amount",)}}, "not a table of population"),
        ({"systems": ("ybj-insurance",)}, "not a registered system of your department"),
        ({"purpose": "statistics"}, "not entitled"),
        ({"period_until": date(2026, 1, 1)}, "after period_from"),
    ],
)
def test_what_may_be_applied_for(
    store: ApplicationStore, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        store.create(APPLICANT, replace(REQUEST, **changes), now=FRIDAY)


def test_a_stale_version_is_a_conflict(store: ApplicationStore) -> None:
    app_id = _submitted(store)
    seen = store.get(app_id, OFFICER).version
    store.act(app_id, Action.REVIEW, OFFICER, now=FRIDAY)
    with pytest.raises(ConflictError, match="changed meanwhile"):
        store.act(app_id, Action.APPROVE, OFFICER, now=FRIDAY, expected_version=seen)


def test_submission_needs_the_mandatory_fields(store: ApplicationStore) -> None:
    app = store.create(APPLICANT, replace(REQUEST, legal_basis="", contact=""), now=FRIDAY)
    with pytest.raises(InvalidRequestError, match="legal_basis, contact"):
        store.act(app.id, Action.SUBMIT, APPLICANT, now=FRIDAY)


def test_a_not_shared_table_of_a_shared_dataset_cannot_be_applied_for(admin_db: AdminDb) -> None:
    bundle = load_policy_bundle(Settings(policy_dir=ROOT / "policies"))
    catalog = bundle.catalog
    population = catalog.datasets["population"]
    people = replace(population.tables["people"], sharing_class=SharingClass.NOT_SHARED)
    narrowed = replace(
        catalog,
        datasets={
            **catalog.datasets,
            "population": replace(population, tables={**population.tables, "people": people}),
        },
    )
    store = ApplicationStore(
        admin_db,
        catalog=narrowed,
        registry=bundle.registry,
        calendar=WorkingCalendar.load(),
        check_mask=check_mask_spec,
        reply_days=lambda dataset: 10,
    )
    with pytest.raises(InvalidRequestError, match=r"Table population\.people is not shared"):
        store.create(APPLICANT, REQUEST, now=FRIDAY)
