"""Policy administration over HTTP: officers propose, validate, approve (two-person rule),
activate and roll back versions; each change is an audit record; refused proposals say
what is wrong; explain and replay show what a version does without running queries.

The demo: 公安局 (gaj) owns population.people; its officer is li.qiang. ybj-insurance
reads people.phone masked (mask:phone) for medical_insurance_enrollment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.audit.store.memory import MemoryAuditStore
from gateway.audit.store.protocol import SearchQuery
from gateway.demo.sharing import DEMO_PASSWORD
from tests.e2e.harness import PURPOSES, Gateway, demo_dsn, demo_signer, running_gateway

YBJ_PHONE = (
    "p, 10, role:ybj-enrollment, ybj, population.people.phone, select, "
    "medical_insurance_enrollment, mask:phone, 2099-12-31T00:00:00Z, allow"
)
PHONE_QUERY = "SELECT person_id, phone FROM population.people ORDER BY person_id LIMIT 3"


@pytest.fixture
def gw(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Gateway, MemoryAuditStore]]:
    overrides: dict[str, Any] = getattr(request, "param", {})
    store = MemoryAuditStore(demo_signer())
    with running_gateway(
        "sqlite", demo_dsn("sqlite", tmp_path), tmp_path, audit=store, settings_overrides=overrides
    ) as gateway:
        yield gateway, store


def _login(gw: Gateway, username: str) -> dict[str, str]:
    resp = gw.client.post("/v1/auth/login", json={"username": username, "password": DEMO_PASSWORD})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


def _policy_csv(gw: Gateway) -> str:
    active = gw.services.admin.versions.active()
    assert active is not None
    return active.source.files["policy.csv"]


def _propose(
    gw: Gateway, who: dict[str, str], policy_csv: str, **extra: Any
) -> tuple[int, dict[str, Any]]:
    body = {"files": {"policy.csv": policy_csv}, "reason": "test change"} | extra
    resp = gw.client.post("/v1/policy/versions", json=body, headers=who)
    return resp.status_code, resp.json()


def _ybj_phone(gw: Gateway) -> Any:
    return gw.query("ybj-insurance", PHONE_QUERY, purpose=PURPOSES["ybj-insurance"])


def _deny_phone(gw: Gateway) -> str:
    text = _policy_csv(gw)
    assert YBJ_PHONE in text
    return text.replace(YBJ_PHONE, YBJ_PHONE.replace("mask:phone", "deny").replace("allow", "deny"))


def test_propose_activate_and_roll_back_and_every_step_is_evidence(
    gw: tuple[Gateway, MemoryAuditStore],
) -> None:
    gateway, store = gw
    officer = _login(gateway, "li.qiang")
    before = _ybj_phone(gateway)
    assert before.status_code == 200, before.text
    assert [c["name"] for c in before.json()["columns"]] == ["person_id", "phone"]
    first_version = gateway.services.policies.current().version

    status, proposed = _propose(gateway, officer, _deny_phone(gateway))
    assert status == 201, proposed
    assert proposed["state"] == "proposed" and proposed["parent"] == first_version
    assert proposed["departments"] == ["gaj"]
    assert any(
        "population.people.phone" in line for line in proposed["diff"]["unified"].splitlines()
    )
    # Not active yet: the consumer still gets the phone column.
    assert _ybj_phone(gateway).status_code == 200

    resp = gateway.client.post(f"/v1/policy/versions/{proposed['id']}/activate", headers=officer)
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "active"
    after = _ybj_phone(gateway)
    assert after.status_code == 403, after.text
    assert "phone" in after.json()["detail"]
    assert after.json()["audit_id"]
    readyz = gateway.client.get("/readyz").json()
    assert readyz["policy_version"] == proposed["version"]

    # Roll back: a new change with the first version's contents, activated as usual.
    resp = gateway.client.post(
        "/v1/policy/rollback",
        json={"to": first_version, "reason": "phone is needed after all"},
        headers=officer,
    )
    assert resp.status_code == 201, resp.text
    rollback = resp.json()
    assert rollback["version"] == first_version and rollback["id"] != proposed["id"]
    resp = gateway.client.post(f"/v1/policy/versions/{rollback['id']}/activate", headers=officer)
    assert resp.status_code == 200, resp.text
    assert _ybj_phone(gateway).status_code == 200

    events = [
        r.event["type"]
        for _, r in store.search(SearchQuery(limit=1000))[::-1]
        if r.event is not None and r.event["type"].startswith("policy.")
    ]
    assert events == [
        "policy.proposed",
        "policy.activated",
        "policy.proposed",
        "policy.activated",
    ]
    listing = gateway.client.get("/v1/policy/versions", headers=officer).json()
    assert listing["active"] == first_version
    assert [i["state"] for i in listing["items"]][:3] == ["active", "superseded", "superseded"]


@pytest.mark.parametrize("gw", [{"two_person_departments": frozenset({"gaj"})}], indirect=True)
def test_the_two_person_rule(gw: tuple[Gateway, MemoryAuditStore]) -> None:
    gateway, _ = gw
    admin = _login(gateway, "admin")
    resp = gateway.client.post(
        "/v1/accounts",
        headers=admin,
        json={
            "username": "ma.jun",
            "display_name": "马骏",
            "department": "gaj",
            "roles": ["provider_officer"],
            "password": "second officer password",
        },
    )
    assert resp.status_code == 201, resp.text
    author = _login(gateway, "li.qiang")
    status, proposed = _propose(gateway, author, _deny_phone(gateway))
    assert status == 201, proposed
    change = proposed["id"]

    early = gateway.client.post(f"/v1/policy/versions/{change}/activate", headers=author)
    assert early.status_code == 409 and "two-person" in early.json()["detail"]
    own = gateway.client.post(f"/v1/policy/versions/{change}/approve", headers=author)
    assert own.status_code == 403 and "author" in own.json()["detail"]
    outsider = _login(gateway, "sun.li")  # scjgj: not the department of the change
    foreign = gateway.client.post(f"/v1/policy/versions/{change}/approve", headers=outsider)
    assert foreign.status_code == 403

    second = gateway.client.post(
        "/v1/auth/login", json={"username": "ma.jun", "password": "second officer password"}
    ).json()["token"]
    ok = gateway.client.post(
        f"/v1/policy/versions/{change}/approve", headers={"Authorization": f"Bearer {second}"}
    )
    assert ok.status_code == 200 and ok.json()["approved_by"] == "ma.jun"
    done = gateway.client.post(f"/v1/policy/versions/{change}/activate", headers=author)
    assert done.status_code == 200, done.text
    assert _ybj_phone(gateway).status_code == 403


def test_unsafe_and_out_of_scope_proposals_are_refused_with_the_reason(
    gw: tuple[Gateway, MemoryAuditStore],
) -> None:
    gateway, _ = gw
    officer = _login(gateway, "li.qiang")
    unmasked = _policy_csv(gateway).replace(YBJ_PHONE, YBJ_PHONE.replace("mask:phone", "allow"))

    check = gateway.client.post(
        "/v1/policy/validate",
        json={"files": {"policy.csv": unmasked}, "reason": "x"},
        headers=officer,
    ).json()
    assert check["valid"] is False
    assert any("population.people.phone" in p and "acknowledge" in p for p in check["problems"])
    status, body = _propose(gateway, officer, unmasked)
    assert status == 400 and "acknowledge" in body["detail"]
    status, body = _propose(
        gateway, officer, unmasked, acknowledged_unmasked=["population.people.phone"]
    )
    assert status == 201, body

    # A rule naming a column that does not exist.
    typo = _policy_csv(gateway) + YBJ_PHONE.replace(".phone", ".phone_number") + "\n"
    status, body = _propose(gateway, officer, typo)
    assert status == 400 and "phone_number" in body["detail"]

    # Another department's officer may not change gaj's dataset.
    status, body = _propose(gateway, _login(gateway, "sun.li"), _deny_phone(gateway))
    assert status == 403, body
    # Auditors read versions but do not change them.
    auditor = _login(gateway, "qian.hui")
    assert gateway.client.get("/v1/policy/versions", headers=auditor).status_code == 200
    status, body = _propose(gateway, auditor, _deny_phone(gateway))
    assert status == 403
    # An empty reason is refused.
    status, body = _propose(gateway, officer, _deny_phone(gateway), reason=" ")
    assert status == 400 and "reason" in body["detail"]


def test_explain_as_a_consumer_and_as_an_officer_under_a_proposed_version(
    gw: tuple[Gateway, MemoryAuditStore],
) -> None:
    gateway, _ = gw
    token = gateway.token("ybj-insurance")
    body = {"sql": PHONE_QUERY, "purpose": PURPOSES["ybj-insurance"]}
    resp = gateway.client.post(
        "/v1/explain", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status_code == 200, resp.text
    mine = resp.json()
    assert mine["verdict"] == "served" and mine["executed"] is False
    served = _ybj_phone(gateway).json()
    assert mine["columns"] == served["columns"]
    phone = mine["tables"]["population.people"]["columns"]["phone"]
    assert phone["decision"] == "mask" and phone["mask"] == "phone" and phone["rule"]
    assert "SELECT" in mine["rewritten_sql"].upper()
    previewed = gateway.client.post(
        "/v1/explain", json=body | {"preview": True}, headers={"Authorization": f"Bearer {token}"}
    ).json()["preview"]
    assert previewed["synthetic"] is True and len(previewed["rows"]) == 3
    assert previewed["columns"] == mine["columns"]
    assert all("****" in row[1] for row in previewed["rows"]), previewed

    officer = _login(gateway, "li.qiang")
    _, proposed = _propose(gateway, officer, _deny_phone(gateway))
    as_ybj = gateway.client.post(
        "/v1/explain",
        json=body | {"system": "ybj-insurance", "version": proposed["id"]},
        headers=officer,
    )
    assert as_ybj.status_code == 200, as_ybj.text
    explained = as_ybj.json()
    assert explained["verdict"] == "refused"
    assert explained["policy_version"] == proposed["version"]
    assert explained["refusal"]["code"] == "access_denied"
    assert explained["tables"]["population.people"]["columns"]["phone"]["decision"] == "deny"

    # An officer of another department does not see gaj's rules this way.
    other = gateway.client.post(
        "/v1/explain", json=body | {"system": "ybj-insurance"}, headers=_login(gateway, "sun.li")
    )
    assert other.status_code == 403
    # A system explains only itself.
    spoof = gateway.client.post(
        "/v1/explain",
        json=body | {"system": "rsj-subsidy"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert spoof.status_code == 403


def test_replay_reports_what_a_tightening_and_a_loosening_change(
    gw: tuple[Gateway, MemoryAuditStore],
) -> None:
    gateway, _ = gw
    for sql in (
        PHONE_QUERY,
        "SELECT person_id FROM population.people ORDER BY person_id LIMIT 2",
        "SELECT COUNT(*) AS n FROM legal_person.enterprises",
    ):
        assert (
            gateway.query("ybj-insurance", sql, purpose=PURPOSES["ybj-insurance"]).status_code
            == 200
        )
    officer = _login(gateway, "li.qiang")
    _, tighter = _propose(gateway, officer, _deny_phone(gateway))
    resp = gateway.client.post(
        "/v1/policy/replay", json={"version": tighter["id"], "limit": 50}, headers=officer
    )
    assert resp.status_code == 200, resp.text
    report = resp.json()
    # Only the two queries over gaj's dataset concern li.qiang.
    assert report["replayed"] == 2
    by_sql = {i["audit_id"]: i for i in report["items"]}
    changed = [i for i in by_sql.values() if i["changes"]]
    assert len(changed) == 1 and changed[0]["changes"] == ["served → refused"]

    looser_csv = _policy_csv(gateway).replace(YBJ_PHONE, YBJ_PHONE.replace("mask:phone", "allow"))
    _, looser = _propose(
        gateway, officer, looser_csv, acknowledged_unmasked=["population.people.phone"]
    )
    csv_resp = gateway.client.post(
        "/v1/policy/replay",
        json={"version": looser["id"], "limit": 50, "format": "csv"},
        headers=officer,
    )
    assert csv_resp.status_code == 200
    assert csv_resp.headers["content-type"].startswith("text/csv")
    lines = csv_resp.text.strip().splitlines()
    assert lines[0].startswith("audit_id,")
    assert sum("masks changed: phone: phone → as stored" in ln for ln in lines) == 1


YBJ_LIMIT = "p3, role:ybj-enrollment, ybj, population.people, *, 100, 2099-12-31T00:00:00Z"


def test_replay_counts_rows_within_a_budget_and_streams_its_progress(
    gw: tuple[Gateway, MemoryAuditStore],
) -> None:
    gateway, _ = gw
    for sql in (
        "SELECT person_id FROM population.people ORDER BY person_id LIMIT 3",
        "SELECT COUNT(*) AS n FROM population.people",
    ):
        resp = gateway.query("ybj-insurance", sql, purpose=PURPOSES["ybj-insurance"])
        assert resp.status_code == 200, resp.text
    officer = _login(gateway, "li.qiang")
    text = _policy_csv(gateway)
    assert YBJ_LIMIT in text
    _, one_row = _propose(gateway, officer, text.replace(YBJ_LIMIT, YBJ_LIMIT.replace("100", "1")))
    body = {"version": one_row["id"], "limit": 50, "execute": True}
    report = gateway.client.post("/v1/policy/replay", json=body, headers=officer).json()
    assert report["replayed"] == 2
    rows = {(i["before"]["rows"], i["after"]["rows"]): i["changes"] for i in report["items"]}
    # Three rows before, one after the new limit (the query's own LIMIT 3 was the limit
    # before); the count is one row either way.
    assert rows.get((3, 1)) == ["row limit: 3 → 1", "rows: 3 → 1"], report["items"]
    assert rows[(1, 1)] == ["row limit: 100 → 1"]
    # A row budget below the rows counts no further; a spent time budget counts nothing.
    capped = gateway.client.post(
        "/v1/policy/replay", json=body | {"row_budget": 2}, headers=officer
    ).json()
    assert {i["before"]["rows"] for i in capped["items"]} == {"> 2", 1}
    # Without execute nothing runs and no count is reported.
    plain = gateway.client.post(
        "/v1/policy/replay", json={"version": one_row["id"], "limit": 50}, headers=officer
    ).json()
    assert all("rows" not in i["before"] for i in plain["items"])

    streamed = gateway.client.post(
        "/v1/policy/replay", json=body | {"format": "ndjson"}, headers=officer
    )
    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in streamed.text.splitlines()]
    progress = [ln["progress"] for ln in lines if "progress" in ln]
    assert progress and progress[-1]["done"] == progress[-1]["of"]
    assert [p["done"] for p in progress] == list(range(1, progress[-1]["of"] + 1))
    assert sorted(ln["item"]["changes"] for ln in lines if "item" in ln) == sorted(
        i["changes"] for i in report["items"]
    )
    assert lines[-1]["summary"]["replayed"] == 2 and lines[-1]["summary"]["changed"] == 2
    bad = gateway.client.post("/v1/policy/replay", json=body | {"row_budget": 0}, headers=officer)
    assert bad.status_code == 400


def test_catalog_fields_search_csv_and_masked_samples(
    gw: tuple[Gateway, MemoryAuditStore],
) -> None:
    gateway, _ = gw
    doc = gateway.get("ybj-insurance", "/v1/catalog").json()
    population = next(d for d in doc["datasets"] if d["name"] == "population")
    assert population["resource_code"] == "370100-GAJ/00001"
    assert population["open_class_zh"] == "不予开放"
    assert population["share_condition"]["zh"].startswith("用于法定职责")
    assert population["published"] == "2026-01-15"
    assert "基础信息资源/人口" in population["categories"]
    id_number = next(c for c in population["tables"][0]["columns"] if c["name"] == "id_number")
    assert id_number["length"] == 18

    # Search in Chinese finds a field; the dataset keeps only the matching table and field.
    found = gateway.get("ybj-insurance", "/v1/catalog", q="手机").json()["datasets"]
    assert [d["name"] for d in found] == ["population"]
    assert [c["name"] for c in found[0]["tables"][0]["columns"]] == ["phone"]
    # In English too, and several words must all match.
    found = gateway.get("ybj-insurance", "/v1/catalog", q="enterprise registrations").json()
    assert [d["name"] for d in found["datasets"]] == ["legal_person"]
    assert gateway.get("ybj-insurance", "/v1/catalog", q="no-such-thing").json()["datasets"] == []

    csv_resp = gateway.get("ybj-insurance", "/v1/catalog", format="csv")
    assert csv_resp.headers["content-type"].startswith("text/csv")
    lines = csv_resp.text.splitlines()
    assert lines[0].startswith("信息资源代码 resource_code,")
    phone_line = next(ln for ln in lines if ",phone," in ln and "population.people" in ln)
    assert "medical_insurance_enrollment=mask:phone" in phone_line
    assert "370100-GAJ/00001" in phone_line and "有条件共享" in phone_line

    samples = gateway.get(
        "ybj-insurance",
        "/v1/catalog/samples",
        table="population.people",
        purpose=PURPOSES["ybj-insurance"],
    )
    assert samples.status_code == 200, samples.text
    preview = samples.json()
    assert preview["synthetic"] is True and len(preview["rows"]) == 3
    names = [c["name"] for c in preview["columns"]]
    served = _ybj_phone(gateway).json()["columns"]
    assert {c["name"]: c["masking"] for c in served} == {
        c["name"]: c["masking"] for c in preview["columns"] if c["name"] in ("person_id", "phone")
    }
    phones = [row[names.index("phone")] for row in preview["rows"]]
    # Synthetic numbers are 1380013800x; masked, their middle digits are gone.
    assert all(p and "****" in p and not p.startswith("1380013") for p in phones), phones
    assert "address" not in names  # denied to ybj: absent, as from a real answer
    refused = gateway.get(
        "ybj-insurance",
        "/v1/catalog/samples",
        table="case_records.cases",
        purpose=PURPOSES["ybj-insurance"],
    )
    assert refused.status_code in (403, 404)
