"""The sharing workflow end to end, through HTTP only (people sign in, systems query):
refusal without a grant (saying how to apply), application, return for information,
narrower approval, queries under the grant (the record names it), a grant's quota (429
with Retry-After), revocation between two queries, refusal with a reason, escalation of
an overdue application and the coordinators' arbitration, expiry by the (injected) clock
and renewal, sharing statistics — and every state change is an audit event that
verifies offline in an exported evidence bundle.

The gateway starts with an empty administration store (no demo seed): the only grants
are the ones these tests create.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.audit.record import AuditRecord
from gateway.audit.store.memory import MemoryAuditStore
from gateway.audit.verify import verify_bundle_json
from tests.e2e.harness import Gateway, demo_dsn, demo_signer, running_gateway
from tests.unit.admin.support import PASSWORD, FakeClock

#: Monday 2 March 2026, 10:00 in Beijing.
START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
PEOPLE_SQL = "SELECT person_id, name, district FROM population.people ORDER BY person_id"

ACCOUNTS = {
    "zhang.wei": ("rsj", "applicant"),
    "li.qiang": ("gaj", "provider_officer"),
    "wang.fang": ("mzj", "provider_officer"),
    "zhao.min": ("sjj", "coordinator"),
    "qian.hui": ("sjj", "auditor"),
}


class World:
    """A running gateway, its audit log and clock, and people who sign in over HTTP."""

    def __init__(self, gw: Gateway, store: MemoryAuditStore, clock: FakeClock) -> None:
        self.gw = gw
        self.store = store
        self.clock = clock
        self._sessions: dict[str, str] = {}

    def advance(self, **delta: float) -> None:
        """Move time on: tokens and sessions of the old time are dropped (they expire)."""
        self.clock.advance(**delta)
        self._sessions.clear()
        self.gw._tokens.clear()

    def as_(self, username: str) -> dict[str, str]:
        if username not in self._sessions:
            resp = self.gw.client.post(
                "/v1/auth/login", json={"username": username, "password": PASSWORD}
            )
            assert resp.status_code == 200, resp.text
            self._sessions[username] = resp.json()["token"]
        return {"Authorization": f"Bearer {self._sessions[username]}"}

    def post(self, who: str, path: str, body: Any = None) -> httpx.Response:
        return self.gw.client.post(path, json=body, headers=self.as_(who))

    def get(self, who: str, path: str, **params: Any) -> httpx.Response:
        return self.gw.client.get(path, params=params, headers=self.as_(who))

    def act(self, who: str, app_id: str, action: str, **body: Any) -> dict[str, Any]:
        resp = self.post(who, f"/v1/applications/{app_id}/{action}", body or None)
        assert resp.status_code == 200, resp.text
        out: dict[str, Any] = resp.json()
        return out

    def apply(self, *, submit: bool = True, **changes: Any) -> dict[str, Any]:
        """zhang.wei (人社局) applies for population.people for rsj-subsidy."""
        body = {
            "systems": ["rsj-subsidy"],
            "dataset": "population",
            "columns": {"population.people": ["person_id", "name", "phone", "district"]},
            "purpose": "employment_subsidy_review",
            "legal_basis": "《就业促进法》第五十五条",
            "scenario": "就业补贴申领人身份核验",
            "justification": "核验申领人户籍，防止冒领",
            "contact": "张伟 0531-88880000",
            "row_cap": 100,
        } | changes
        resp = self.post("zhang.wei", "/v1/applications", body)
        assert resp.status_code == 201, resp.text
        app: dict[str, Any] = resp.json()
        if submit:
            app = self.act("zhang.wei", app["id"], "submit")
        return app

    def approved(self, **changes: Any) -> dict[str, Any]:
        app = self.apply(**changes)
        self.act("li.qiang", app["id"], "review")
        return self.act("li.qiang", app["id"], "approve")

    def query(self, sql: str = PEOPLE_SQL) -> httpx.Response:
        return self.gw.query("rsj-subsidy", sql)

    def record(self, resp: httpx.Response) -> AuditRecord:
        found = self.store.get(resp.headers["gateway-audit-id"])
        assert found is not None
        return found[1]

    def events(self) -> list[dict[str, Any]]:
        entries = self.store.entries(0, self.store.size())
        records = [AuditRecord.from_canonical(e.record) for e in entries]
        return [dict(r.event) for r in records if r.event is not None]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = FakeClock(START)
    store = MemoryAuditStore(demo_signer())
    with running_gateway(
        "sqlite",
        demo_dsn("sqlite", tmp_path),
        tmp_path,
        audit=store,
        clock=clock,
        seed=False,
        # The sweeper runs when the test says so (it is what the background thread runs).
        settings_overrides={"sweep_interval_s": 0.0},
    ) as gw:
        for username, (department, role) in ACCOUNTS.items():
            gw.services.admin.accounts.create(
                username=username,
                display_name=username,
                department=department,
                roles=[role],
                password=PASSWORD,
                systems=("rsj-subsidy",) if role == "applicant" else (),
                now=clock(),
            )
        yield World(gw, store, clock)


def test_apply_return_narrow_approve_query_revoke(world: World) -> None:
    # No grant: refused, and told how to apply.
    refused = world.query()
    assert refused.status_code == 403
    assert "POST /v1/applications" in refused.json()["detail"]

    app = world.apply(justification="业务需要")
    assert app["state"] == "submitted"
    # Ten working days from Monday 2 March 2026.
    assert app["deadline"]["reply_due"] == "2026-03-16"
    app_id = app["id"]
    # The officer of another department does not even see it.
    assert world.get("wang.fang", f"/v1/applications/{app_id}").status_code == 404
    world.act("li.qiang", app_id, "review")
    no_reason = world.post("li.qiang", f"/v1/applications/{app_id}/return", {})
    assert no_reason.status_code == 400
    returned = world.act("li.qiang", app_id, "return", reason="请补充申请理由")
    assert returned["state"] == "returned" and returned["reason"] == "请补充申请理由"

    edited = world.gw.client.put(
        f"/v1/applications/{app_id}",
        json={
            "systems": ["rsj-subsidy"],
            "dataset": "population",
            "columns": {"population.people": ["person_id", "name", "phone", "district"]},
            "purpose": "employment_subsidy_review",
            "legal_basis": "《就业促进法》第五十五条",
            "scenario": "就业补贴申领人身份核验",
            "justification": "核验申领人户籍，防止冒领（已补充）",
            "contact": "张伟 0531-88880000",
            "row_cap": 100,
            "quotas": {"queries_per_day": 50},
        },
        headers=world.as_("zhang.wei"),
    )
    assert edited.status_code == 200, edited.text
    world.act("zhang.wei", app_id, "submit")
    # An approval cannot raise what was asked.
    wider = world.post(
        "li.qiang",
        f"/v1/applications/{app_id}/approve",
        {"narrowing": {"quotas": {"queries_per_day": 51}}},
    )
    assert wider.status_code == 400 and "only lower" in wider.json()["detail"]
    approved = world.act(
        "li.qiang",
        app_id,
        "approve",
        narrowing={
            "drop_columns": ["population.people.phone"],
            "masks": {"population.people.name": "constant:已脱敏"},
            "row_cap": 5,
            "quotas": {"queries_per_day": 40},
        },
    )
    assert approved["state"] == "active"
    grant = approved["grant"]
    assert grant["columns"] == {"population.people": ["district", "name", "person_id"]}
    assert grant["row_cap"] == 5 and grant["quotas"] == {"queries_per_day": 40}

    # Served at once, narrowed, and the record names the grant.
    served = world.query()
    assert served.status_code == 200, served.text
    body = served.json()
    assert body["row_count"] == 5 and {r[1] for r in body["rows"]} == {"已脱敏"}
    assert world.record(served).grants == (grant["id"],)
    dropped = world.query("SELECT phone FROM population.people")
    assert dropped.status_code == 403

    # Revoked between two queries of the same consumer: the second is refused.
    assert world.query().status_code == 200
    revoked = world.act("li.qiang", app_id, "revoke", reason="发现超范围使用")
    assert revoked["state"] == "revoked"
    after = world.query()
    assert after.status_code == 403
    assert world.record(after).grants == ()

    history = world.get("zhao.min", f"/v1/applications/{app_id}").json()["history"]
    assert [h["action"] for h in history] == [
        "create",
        "submit",
        "review",
        "return",
        "edit",
        "submit",
        "approve",
        "revoke",
    ]
    assert all(h["actor"] for h in history)
    types = [e["type"] for e in world.events() if e.get("application") == app_id]
    assert types == [
        "application.created",
        "application.submit",
        "application.review",
        "application.return",
        "application.edited",
        "application.submit",
        "application.approve",
        "application.revoke",
    ]


def test_a_grant_quota_is_enforced_and_visible(world: World) -> None:
    app = world.approved(quotas={"queries_per_day": 2, "rows_per_month": 1000})
    grant_id = app["grant"]["id"]
    delivered = 0
    for _ in range(2):
        served = world.query()
        assert served.status_code == 200, served.text
        delivered += served.json()["row_count"]
    over = world.query()
    assert over.status_code == 429
    problem = over.json()
    assert problem["code"] == "quota_exceeded"
    assert problem["quota"]["subject"] == grant_id
    assert problem["quota"]["name"] == "queries_per_day"
    # Until midnight in Beijing (it is 10:00 there).
    assert over.headers["retry-after"] == str(14 * 3600)
    assert grant_id in problem["detail"]
    # The refusal is evidence like any other.
    assert world.record(over).error_code == "quota_exceeded"

    mine = world.gw.get("rsj-subsidy", "/v1/quotas").json()["items"]
    used = {(q["subject"], q["name"]): (q["used"], q["limit"]) for q in mine}
    assert used[(grant_id, "queries_per_day")] == (2, 2)
    assert used[(grant_id, "rows_per_month")] == (delivered, 1000)
    officer = world.get("li.qiang", "/v1/quotas").json()["items"]
    assert (grant_id, "queries_per_day") in {(q["subject"], q["name"]) for q in officer}
    assert world.get("wang.fang", "/v1/quotas").json()["items"] == []

    # A new day in Beijing: the day's quota is fresh, the month's keeps counting.
    world.advance(hours=14)
    assert world.query().status_code == 200


def test_refusal_with_a_reason_escalation_and_arbitration(world: World) -> None:
    refused = world.apply()
    world.act("li.qiang", refused["id"], "review")
    bare = world.post("li.qiang", f"/v1/applications/{refused['id']}/refuse", {"reason": " "})
    assert bare.status_code == 400
    out = world.act("li.qiang", refused["id"], "refuse", reason="申请字段超出最小必要范围")
    assert out["state"] == "refused" and out["reason"] == "申请字段超出最小必要范围"
    told = world.get("zhang.wei", "/v1/notifications").json()["items"]
    assert any("申请字段超出最小必要范围" in n["subject"] for n in told)
    assert world.query().status_code == 403

    overdue = world.apply()
    app_id = overdue["id"]
    # Not escalated yet: the coordinators cannot arbitrate.
    early = world.post("zhao.min", f"/v1/applications/{app_id}/arbitrate_approve", {"reason": "x"})
    assert early.status_code == 409
    # The reply date (16 March) passes without an answer; the sweep escalates it.
    world.advance(days=15)
    assert app_id in world.gw.services.sweeper.sweep()["escalated"]
    assert world.gw.services.sweeper.sweep()["escalated"] == []  # once
    listed = world.get("zhao.min", "/v1/applications", view="escalated").json()["items"]
    assert [a["id"] for a in listed] == [app_id]
    assert listed[0]["deadline"]["overdue"] and listed[0]["deadline"]["escalated"]
    coordinators = world.get("zhao.min", "/v1/notifications").json()["items"]
    assert any(n["kind"] == "application.escalated" for n in coordinators)
    # The auditor reads but cannot decide.
    auditor = world.post(
        "qian.hui", f"/v1/applications/{app_id}/arbitrate_approve", {"reason": "x"}
    )
    assert auditor.status_code == 403
    decided = world.act(
        "zhao.min", app_id, "arbitrate_approve", reason="提供方逾期未答复，数据局协调同意"
    )
    assert decided["state"] == "active"
    assert world.query().status_code == 200


def test_expiry_by_the_clock_and_renewal(world: World) -> None:
    app = world.approved(period_until="2026-03-10")
    assert app["grant"]["valid_until"] == "2026-03-10T16:00:00+00:00"  # end of 10 March, Beijing
    assert world.query().status_code == 200
    renewal = world.post(
        "zhang.wei", f"/v1/applications/{app['id']}/renewal", {"period_until": "2026-12-31"}
    )
    assert renewal.status_code == 201, renewal.text
    renewal_id = renewal.json()["id"]
    assert renewal.json()["renewal_of"] == app["id"]
    world.act("zhang.wei", renewal_id, "submit")

    # 11 March in Beijing: the grant has ended, whatever the sweeper has done so far.
    world.advance(days=9)
    assert world.query().status_code == 403
    swept = world.gw.services.sweeper.sweep()
    assert swept["expired"] == [app["grant"]["id"]]
    assert world.get("zhang.wei", f"/v1/applications/{app['id']}").json()["state"] == "expired"

    world.act("li.qiang", renewal_id, "review")
    renewed = world.act("li.qiang", renewal_id, "approve")
    assert renewed["state"] == "active" and renewed["grant"]["id"].endswith("-R")
    served = world.query()
    assert served.status_code == 200
    assert world.record(served).grants == (renewed["grant"]["id"],)


def test_statistics_per_department_and_dataset(world: World) -> None:
    fast = world.apply()
    world.advance(days=2)  # Wednesday 4 March
    world.act("li.qiang", fast["id"], "review")
    world.act("li.qiang", fast["id"], "approve", narrowing={"row_cap": 3})
    slow = world.apply()
    world.advance(days=7)  # Wednesday 11 March: 5 working days after the 4th
    world.act("li.qiang", slow["id"], "review")
    world.act("li.qiang", slow["id"], "refuse", reason="用途不明确")
    late = world.apply()
    world.advance(days=16)  # 27 March: the reply date (25 March) has passed
    world.gw.services.sweeper.sweep()
    assert world.query().status_code == 200
    assert world.query("SELECT phone FROM population.people").status_code == 200
    assert world.query("SELECT id_number FROM population.people").status_code == 403

    resp = world.get("zhao.min", "/v1/statistics", **{"from": "2026-03-01", "until": "2026-03-31"})
    assert resp.status_code == 200, resp.text
    stats = resp.json()
    by_department = {d["department"]: d for d in stats["departments"]}
    assert by_department["gaj"]["datasets_offered"] == {"conditional": 1, "not_shared": 1}
    population = next(d for d in by_department["gaj"]["datasets"] if d["dataset"] == "population")
    apps = population["applications"]
    assert apps["received"] == 3 and apps["answered"] == 2
    assert (apps["approved"], apps["narrowed"], apps["refused"]) == (1, 1, 1)
    assert apps["refused_by_reason"] == {"用途不明确": 1}
    assert apps["overdue"] == 1  # the late one, unanswered past its date
    # Replies after 2 and 5 working days.
    assert (apps["median_reply_working_days"], apps["longest_reply_working_days"]) == (3.5, 5)
    queries = population["queries"]
    assert queries["served"] == 2 and queries["rows_delivered"] == 6
    assert queries["refused"] == 1 and queries["refused_by_reason"] == {"access_denied": 1}
    assert late["id"]

    csv_resp = world.get(
        "zhao.min", "/v1/statistics", **{"from": "2026-03-01", "until": "2026-03-31"}, format="csv"
    )
    assert csv_resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_resp.text)))
    row = next(r for r in rows if r["dataset"] == "population")
    assert row["applications_received"] == "3" and row["rows_delivered"] == "6"

    # An officer sees its own department only; another department's is refused.
    own = world.get("li.qiang", "/v1/statistics", **{"from": "2026-03-01"}).json()
    assert {d["department"] for d in own["departments"]} == {"gaj"}
    assert world.get("li.qiang", "/v1/statistics", department="mzj").status_code == 403
    assert world.get("zhang.wei", "/v1/statistics").status_code == 403


def test_every_grant_state_change_verifies_offline_in_an_exported_bundle(world: World) -> None:
    app = world.approved(period_until="2026-03-10")
    other = world.approved()
    world.act("li.qiang", other["id"], "revoke", reason="停止使用")
    world.advance(days=9)
    world.gw.services.sweeper.sweep()
    size = world.store.size()
    export = world.get("qian.hui", "/v1/audit/export", start=0, end=size)
    assert export.status_code == 200, export.text
    pinned = [world.gw.services.audit_signer.verifier]
    report = verify_bundle_json(export.content, pinned)
    assert report.ok, report.failures()
    bundle = export.json()
    events = [
        AuditRecord.from_canonical(e["record"].encode("utf-8")).event for e in bundle["entries"]
    ]
    changes = {(e["type"], e.get("application")) for e in events if e is not None}
    for expected in (
        ("application.approve", app["id"]),
        ("grant.expired", app["id"]),
        ("application.approve", other["id"]),
        ("application.revoke", other["id"]),
    ):
        assert expected in changes, expected
    # A record altered after export no longer verifies.
    tampered = export.content.replace(b"\\u505c\\u6b62", b"\\u5f00\\u59cb")
    if tampered == export.content:
        tampered = export.content.replace("停止使用".encode(), "继续使用".encode())
    assert tampered != export.content
    assert not verify_bundle_json(tampered, pinned).ok


def test_every_event_of_an_application_names_its_own_audit_record(world: World) -> None:
    """One sweep that escalates two applications writes two records (one audit id
    each), and every history entry links to the record that is its evidence."""
    first, second = world.apply(), world.apply()
    world.advance(days=15)
    assert sorted(world.gw.services.sweeper.sweep()["escalated"]) == sorted(
        [first["id"], second["id"]]
    )
    escalations = [e for e in world.events() if e["type"] == "application.escalated"]
    assert sorted(e["application"] for e in escalations) == sorted([first["id"], second["id"]])
    for app in (first, second):
        history = world.get("zhao.min", f"/v1/applications/{app['id']}").json()["history"]
        assert [h["action"] for h in history] == ["create", "submit", "escalate"]
        ids = [h["audit_id"] for h in history]
        assert all(ids) and len(set(ids)) == 3, history
        for entry in history:
            found = world.store.get(entry["audit_id"])
            assert found is not None
            event = found[1].event
            assert event is not None and event["application"] == app["id"]
            assert event["action"] == entry["action"]


def test_application_refusals_speak_the_callers_language(world: World) -> None:
    headers = world.as_("zhang.wei")
    # A body of the wrong shape is told where the schema of this endpoint is.
    shape = world.gw.client.post(
        "/v1/applications", json={"dataset": "x"}, headers=headers | {"Accept-Language": "zh-CN"}
    )
    assert shape.status_code == 400
    assert "/v1/applications 的请求体结构" in shape.json()["detail"], shape.json()
    body = {
        "systems": ["rsj-subsidy"],
        "dataset": "legal_person",
        "columns": {"legal_person.enterprises": ["enterprise_id"]},
        "purpose": "employment_subsidy_review",
    }
    zh = world.gw.client.post(
        "/v1/applications", json=body, headers=headers | {"Accept-Language": "zh-CN"}
    )
    en = world.gw.client.post("/v1/applications", json=body, headers=headers)
    assert zh.status_code == en.status_code == 400
    assert "无条件共享" in zh.json()["detail"] and "无需申请" in zh.json()["detail"]
    assert "without an application" in en.json()["detail"]
