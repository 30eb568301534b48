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

    def act(app_id: str, action: Action, officer: str, at: datetime, **kw: Any) -> None:
        store.act(app_id, action, _person(officer), now=at, **kw, **rec)

    def submitted(
        username: str, table: str, columns: tuple[str, ...], purpose: str, at: datetime, **kw: Any
    ) -> str:
        """An application for ``columns`` of ``table`` (every column: empty), submitted."""
        wanted = {table: columns} if columns else _all_columns(catalog, table)
        data = ask(username, table.split(".")[0], wanted, purpose, **kw)
        app = store.create(_person(username), data, now=at, **rec)
        act(app.id, Action.SUBMIT, username, at)
        return app.id

    def approved(app_id: str, officer: str, at: datetime, narrowing: Narrowing | None) -> None:
        act(app_id, Action.REVIEW, officer, at)
        act(app_id, Action.APPROVE, officer, at, narrowing=narrowing)

    people = "population.people"
    grants = "subsidies.grants"
    # The grants the demo systems query under (they grant every column: the policy's
    # terms decide what each column shows): applicant, officer, table, purpose, scenario,
    # submitted and decided (working days ago).
    for username, officer, table, purpose, scenario, sent, decided in (
        (
            "zhang.wei",
            "li.qiang",
            people,
            "employment_subsidy_review",
            "就业补贴申领人户籍与身份核验",
            44,
            40,
        ),
        ("zhang.wei", "wang.fang", grants, "employment_subsidy_review", "防止重复领取补贴", 43, 39),
        (
            "liu.yang",
            "li.qiang",
            people,
            "medical_insurance_enrollment",
            "城乡居民医保参保身份核验",
            42,
            38,
        ),
        ("chen.jing", "li.qiang", people, "statistics", "人口结构统计分析", 41, 37),
        ("chen.jing", "wang.fang", grants, "statistics", "社会救助资金统计", 41, 36),
    ):
        app_id = submitted(username, table, (), purpose, ago(sent), scenario=scenario)
        approved(app_id, officer, ago(decided), None)
    # ybj's subsidies grant ended on 2025-06-30.
    expired_from = datetime(2024, 12, 2, 2, 0, tzinfo=UTC)
    app_id = submitted(
        "liu.yang",
        grants,
        (),
        "medical_insurance_enrollment",
        expired_from,
        period_from=date(2025, 1, 1),
        period_until=date(2025, 6, 30),
        scenario="医疗救助对象参保资助核对",
    )
    approved(app_id, "wang.fang", expired_from + timedelta(days=5), None)
    # Narrower, and ending in four working days (renewal reminders).
    app_id = submitted(
        "zhou.min",
        people,
        (),
        "social_assistance_review",
        ago(20),
        period_until=cal.add_working_days(today, 4),
        row_cap=200,
        scenario="低保申请家庭成员户籍核查",
    )
    narrowing = Narrowing(
        drop_columns=("population.people.phone",),
        masks={"population.people.address": "constant:***"},
        row_cap=50,
    )
    approved(app_id, "li.qiang", ago(12), narrowing)
    store.expire_and_remind(now=now, **rec)
    # Refused, with the reason.
    app_id = submitted(
        "chen.jing",
        people,
        ("name", "id_number", "district"),
        "statistics",
        ago(9),
        scenario="按姓名统计重名情况",
    )
    reason = "统计分析无需姓名和身份证号，请使用汇总或脱敏数据（最小必要原则）"
    act(app_id, Action.REFUSE, "li.qiang", ago(6), reason=reason)
    # Returned for information.
    app_id = submitted(
        "zhang.wei",
        grants,
        ("grant_id", "bank_card", "amount"),
        "employment_subsidy_review",
        ago(8),
        scenario="核对补贴发放账户",
    )
    reason = "请补充银行卡号的具体用途及法律依据条款"
    act(app_id, Action.RETURN, "wang.fang", ago(5), reason=reason)
    # Overdue and escalated to the coordinators, who commented.
    app_id = submitted(
        "liu.yang",
        people,
        ("person_id", "phone", "district"),
        "medical_insurance_enrollment",
        ago(15),
        scenario="参保缴费提醒短信",
    )
    store.escalate_overdue(now=ago(3), **rec)
    act(app_id, Action.COMMENT, "zhao.min", ago(2), reason="已联系市公安局，请于本周内答复")
    # Under review, due in four working days.
    app_id = submitted(
        "huang.lei",
        people,
        ("person_id", "name", "district"),
        "tax_administration",
        ago(6),
        scenario="个体工商户经营者身份核验",
    )
    act(app_id, Action.REVIEW, "li.qiang", ago(4))
    # A draft.
    draft = ask(
        "liu.yang",
        "subsidies",
        {grants: ("grant_id", "program", "amount")},
        "medical_insurance_enrollment",
        scenario="医疗救助对象资助参保",
    )
    store.create(_person("liu.yang"), draft, now=ago(1), **rec)
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
