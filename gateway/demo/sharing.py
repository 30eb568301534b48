"""The demo's sharing workflow: people of every role, and applications in every state.

Seeded once into an empty administration store (``gateway demo``, and every end-to-end
test gateway), through the same store operations the API uses, with timestamps in the
past so that the reply clocks, the escalation and the expiry are real:

===================  =============================================================
application          state
===================  =============================================================
rsj → 人口库          active: 就业补贴审核 (rsj-subsidy, rsj-portal)
rsj → 社会救助        active
ybj → 人口库          active: 参保核验
ybj → 社会救助        expired on 2025-06-30 (its period ended)
tjj → 人口库, 社会救助 active: 统计分析
mzj → 人口库          active, **approved narrower** (phone dropped, address hidden,
                     at most 50 rows) and **expiring soon** (in four working days)
tjj → 人口库 (names)  **refused**: 统计分析无需个人身份信息
rsj → 社会救助 (card) **returned for information**
ybj → 人口库 (phone)  **overdue and escalated** to the coordinators, with a comment
swj → 人口库          under review, due in four working days
ybj → 社会救助        a draft
===================  =============================================================

Every person's password is :data:`DEMO_PASSWORD` — a published demo credential, like the
demo keys: never use it (or this seed) in production.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from gateway.admin.applications import ApplicationInput, Narrowing
from gateway.admin.calendar import CHINA, WorkingCalendar
from gateway.admin.lifecycle import Action
from gateway.catalog import Catalog
from gateway.domain import Principal
from gateway.policy.roles import Role
from gateway.settings import Settings
from gateway.wiring import AdminServices

__all__ = ["DEMO_PASSWORD", "DEMO_PEOPLE", "ensure_demo_sharing", "seed_sharing"]

#: The password of every demo person (published: demo only).
DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - a published demo credential

#: username -> (name, department, roles, systems)
DEMO_PEOPLE: dict[str, tuple[str, str, tuple[Role, ...], tuple[str, ...]]] = {
    "admin": ("系统管理员", "sjj", (Role.ADMINISTRATOR,), ()),
    "zhang.wei": ("张伟", "rsj", (Role.APPLICANT,), ("rsj-subsidy", "rsj-portal")),
    "liu.yang": ("刘洋", "ybj", (Role.APPLICANT,), ("ybj-insurance",)),
    "chen.jing": ("陈静", "tjj", (Role.APPLICANT,), ("tjj-stats",)),
    "zhou.min": ("周敏", "mzj", (Role.APPLICANT,), ("mzj-assist",)),
    "huang.lei": ("黄磊", "swj", (Role.APPLICANT,), ("swj-tax",)),
    "li.qiang": ("李强", "gaj", (Role.PROVIDER_OFFICER,), ()),
    "wang.fang": ("王芳", "mzj", (Role.PROVIDER_OFFICER,), ()),
    "sun.li": ("孙丽", "scjgj", (Role.PROVIDER_OFFICER,), ()),
    "zhao.min": ("赵敏", "sjj", (Role.COORDINATOR,), ()),
    "qian.hui": ("钱慧", "sjj", (Role.AUDITOR,), ()),
}

Record = Callable[[dict[str, Any]], object]


def _person(username: str) -> Principal:
    _, department, roles, _ = DEMO_PEOPLE[username]
    return Principal(system="", department=department, officer=username, roles=frozenset(roles))


def _working_days_before(calendar: WorkingCalendar, day: date, count: int) -> date:
    while count > 0:
        day -= timedelta(days=1)
        if calendar.is_workday(day):
            count -= 1
    return day


def _at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=CHINA).astimezone(UTC)


def _all_columns(catalog: Catalog, table: str) -> dict[str, tuple[str, ...]]:
    described = catalog.table(table)
    if described is None:
        raise ValueError(f"the demo catalog has no table {table}")
    return {table: tuple(described.columns)}


def seed_sharing(
    admin: AdminServices,
    catalog: Catalog,
    *,
    now: datetime,
    record: Record | None = None,
    password_for: Callable[[str], str] = lambda _username: DEMO_PASSWORD,
) -> bool:
    """Seed people and applications into an empty store. Returns False (and changes
    nothing) when the store already has accounts."""
    if admin.accounts.find():
        return False
    for username, (name, department, roles, systems) in DEMO_PEOPLE.items():
        admin.accounts.create(
            username=username,
            display_name=name,
            department=department,
            roles=[r.value for r in roles],
            password=password_for(username),
            systems=systems,
            contact=f"{name} 0531-8888{len(username):04d}",
            now=now,
        )
    store = admin.applications
    cal = store.calendar
    today = WorkingCalendar.local_date(now)

    def ago(days: int, hour: int = 10) -> datetime:
        moment = _at(_working_days_before(cal, today, days), hour)
        return min(moment, now)

    def ask(
        username: str, dataset: str, tables: dict[str, tuple[str, ...]], purpose: str, **kw: Any
    ) -> ApplicationInput:
        _, _, _, systems = DEMO_PEOPLE[username]
        base = ApplicationInput(
            systems=kw.pop("systems", systems),
            dataset=dataset,
            columns=tables,
            purpose=purpose,
            legal_basis=catalog.purposes[purpose].legal_basis,
            scenario=kw.pop("scenario", "业务办理时核验申请人信息"),
            period_from=kw.pop("period_from", WorkingCalendar.local_date(ago(45))),
            period_until=kw.pop("period_until", None),
            justification=kw.pop("justification", "依法履职所需，最小必要范围"),
            contact=DEMO_PEOPLE[username][0],
            row_cap=kw.pop("row_cap", None),
        )
        return replace(base, **kw)

    rec: dict[str, Any] = {"record": record} if record is not None else {}

    def approved(
        username: str,
        officer: str,
        data: ApplicationInput,
        *,
        submitted: datetime,
        decided: datetime,
        narrowing: Narrowing | None = None,
    ) -> str:
        app = store.create(_person(username), data, now=submitted, **rec)
        store.act(app.id, Action.SUBMIT, _person(username), now=submitted, **rec)
        store.act(app.id, Action.REVIEW, _person(officer), now=decided, **rec)
        store.act(app.id, Action.APPROVE, _person(officer), now=decided, narrowing=narrowing, **rec)
        return app.id

    people = "population.people"
    grants = "subsidies.grants"
    # The grants the demo systems query under (they grant every column: the policy's
    # terms decide what each column shows).
    approved(
        "zhang.wei",
        "li.qiang",
        ask(
            "zhang.wei",
            "population",
            _all_columns(catalog, people),
            "employment_subsidy_review",
            scenario="就业补贴申领人户籍与身份核验",
        ),
        submitted=ago(44),
        decided=ago(40),
    )
    approved(
        "zhang.wei",
        "wang.fang",
        ask(
            "zhang.wei",
            "subsidies",
            _all_columns(catalog, grants),
            "employment_subsidy_review",
            scenario="防止重复领取补贴",
        ),
        submitted=ago(43),
        decided=ago(39),
    )
    approved(
        "liu.yang",
        "li.qiang",
        ask(
            "liu.yang",
            "population",
            _all_columns(catalog, people),
            "medical_insurance_enrollment",
            scenario="城乡居民医保参保身份核验",
        ),
        submitted=ago(42),
        decided=ago(38),
    )
    approved(
        "chen.jing",
        "li.qiang",
        ask(
            "chen.jing",
            "population",
            _all_columns(catalog, people),
            "statistics",
            scenario="人口结构统计分析",
        ),
        submitted=ago(41),
        decided=ago(37),
    )
    approved(
        "chen.jing",
        "wang.fang",
        ask(
            "chen.jing",
            "subsidies",
            _all_columns(catalog, grants),
            "statistics",
            scenario="社会救助资金统计",
        ),
        submitted=ago(41),
        decided=ago(36),
    )
    # ybj's subsidies grant ended on 2025-06-30.
    expired_from = datetime(2024, 12, 2, 2, 0, tzinfo=UTC)
    approved(
        "liu.yang",
        "wang.fang",
        ask(
            "liu.yang",
            "subsidies",
            _all_columns(catalog, grants),
            "medical_insurance_enrollment",
            period_from=date(2025, 1, 1),
            period_until=date(2025, 6, 30),
            scenario="医疗救助对象参保资助核对",
        ),
        submitted=expired_from,
        decided=expired_from + timedelta(days=5),
    )
    # Narrower, and ending in four working days (renewal reminders).
    approved(
        "zhou.min",
        "li.qiang",
        ask(
            "zhou.min",
            "population",
            _all_columns(catalog, people),
            "social_assistance_review",
            period_until=cal.add_working_days(today, 4),
            row_cap=200,
            scenario="低保申请家庭成员户籍核查",
        ),
        submitted=ago(20),
        decided=ago(12),
        narrowing=Narrowing(
            drop_columns=("population.people.phone",),
            masks={"population.people.address": "constant:***"},
            row_cap=50,
        ),
    )
    store.expire_and_remind(now=now, **rec)
    # Refused, with the reason.
    refused = store.create(
        _person("chen.jing"),
        ask(
            "chen.jing",
            "population",
            {people: ("name", "id_number", "district")},
            "statistics",
            scenario="按姓名统计重名情况",
        ),
        now=ago(9),
        **rec,
    )
    store.act(refused.id, Action.SUBMIT, _person("chen.jing"), now=ago(9), **rec)
    store.act(
        refused.id,
        Action.REFUSE,
        _person("li.qiang"),
        now=ago(6),
        reason="统计分析无需姓名和身份证号，请使用汇总或脱敏数据（最小必要原则）",
        **rec,
    )
    # Returned for information.
    returned = store.create(
        _person("zhang.wei"),
        ask(
            "zhang.wei",
            "subsidies",
            {grants: ("grant_id", "bank_card", "amount")},
            "employment_subsidy_review",
            scenario="核对补贴发放账户",
        ),
        now=ago(8),
        **rec,
    )
    store.act(returned.id, Action.SUBMIT, _person("zhang.wei"), now=ago(8), **rec)
    store.act(
        returned.id,
        Action.RETURN,
        _person("wang.fang"),
        now=ago(5),
        reason="请补充银行卡号的具体用途及法律依据条款",
        **rec,
    )
    # Overdue and escalated to the coordinators, who commented.
    overdue = store.create(
        _person("liu.yang"),
        ask(
            "liu.yang",
            "population",
            {people: ("person_id", "phone", "district")},
            "medical_insurance_enrollment",
            scenario="参保缴费提醒短信",
        ),
        now=ago(15),
        **rec,
    )
    store.act(overdue.id, Action.SUBMIT, _person("liu.yang"), now=ago(15), **rec)
    store.escalate_overdue(now=ago(3), **rec)
    store.act(
        overdue.id,
        Action.COMMENT,
        _person("zhao.min"),
        now=ago(2),
        reason="已联系市公安局，请于本周内答复",
        **rec,
    )
    # Under review, due in four working days.
    pending = store.create(
        _person("huang.lei"),
        ask(
            "huang.lei",
            "population",
            {people: ("person_id", "name", "district")},
            "tax_administration",
            scenario="个体工商户经营者身份核验",
        ),
        now=ago(6),
        **rec,
    )
    store.act(pending.id, Action.SUBMIT, _person("huang.lei"), now=ago(6), **rec)
    store.act(pending.id, Action.REVIEW, _person("li.qiang"), now=ago(4), **rec)
    # A draft.
    store.create(
        _person("liu.yang"),
        ask(
            "liu.yang",
            "subsidies",
            {grants: ("grant_id", "program", "amount")},
            "medical_insurance_enrollment",
            scenario="医疗救助对象资助参保",
        ),
        now=ago(1),
        **rec,
    )
    admin.grants.refresh()
    return True


def ensure_demo_sharing(settings: Settings, *, now: datetime) -> bool:
    """Seed the demo's people and applications into the administration store named by
    ``settings`` if it has no accounts yet (``gateway demo``). Returns whether it did."""
    from gateway.wiring import build_services

    services = build_services(settings, clock=lambda: now)
    try:
        return seed_sharing(services.admin, services.bundle.catalog, now=now)
    finally:
        services.close()
