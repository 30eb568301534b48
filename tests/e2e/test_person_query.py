"""A person queries through one of their department's systems (the console's SQL editor):
POST /v1/query with their session and ``system``. The server checks membership, the
system's department and status, and the CSRF token; every refusal is audited, and the
served record names the system and the person."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.audit.store.memory import MemoryAuditStore
from tests.e2e.harness import Gateway, demo_dsn, demo_signer, running_gateway
from tests.unit.admin.support import PASSWORD, FakeClock

SQL = "SELECT person_id, name FROM population.people ORDER BY person_id LIMIT 3"
PURPOSE = "employment_subsidy_review"


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[tuple[Gateway, MemoryAuditStore]]:
    clock = FakeClock()
    store = MemoryAuditStore(demo_signer())
    with running_gateway(
        "sqlite", demo_dsn("sqlite", tmp_path), tmp_path, audit=store, clock=clock
    ) as gw:
        accounts = gw.services.admin.accounts
        # swj-tax belongs to another department: membership alone must not be enough.
        accounts.create(
            username="zhang",
            display_name="张伟",
            department="rsj",
            roles=["applicant"],
            password=PASSWORD,
            systems=["rsj-subsidy", "swj-tax"],
            now=clock(),
        )
        yield gw, store


def _cookie_login(gw: Gateway) -> str:
    resp = gw.client.post(
        "/v1/auth/login", json={"username": "zhang", "password": PASSWORD, "session": "cookie"}
    )
    assert resp.status_code == 200, resp.text
    csrf: str = resp.json()["csrf_token"]
    return csrf


def test_a_person_queries_through_their_system_and_the_record_names_both(
    gw: tuple[Gateway, MemoryAuditStore],
) -> None:
    client, store = gw
    csrf = _cookie_login(client)
    resp = client.client.post(
        "/v1/query",
        json={"sql": SQL, "purpose": PURPOSE, "system": "rsj-subsidy"},
        headers={"X-CSRF-Token": csrf},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["row_count"] == 3
    masked = {c["name"]: c.get("masking") for c in body["columns"]}
    assert masked["name"]  # the system's policy masks names for people too
    found = store.get(resp.headers["gateway-audit-id"])
    assert found is not None
    record = found[1]
    assert record.system == "rsj-subsidy" and record.officer == "zhang"
    assert record.outcome == "served"


@pytest.mark.parametrize(
    ("system", "csrf_ok", "status"),
    [
        ("rsj-subsidy", False, 403),  # no CSRF token: a forged cross-site request
        ("rsj-portal", True, 403),  # a system of the department, but not theirs
        ("swj-tax", True, 401),  # theirs by membership, but of another department
        ("nope", True, 403),
        (None, True, 403),
    ],
)
def test_refusals_are_audited(
    gw: tuple[Gateway, MemoryAuditStore], system: str | None, csrf_ok: bool, status: int
) -> None:
    client, store = gw
    csrf = _cookie_login(client)
    resp = client.client.post(
        "/v1/query",
        json={"sql": SQL, "purpose": PURPOSE, "system": system},
        headers={"X-CSRF-Token": csrf} if csrf_ok else {},
    )
    assert resp.status_code == status, resp.text
    assert "rows" not in resp.json()
    found = store.get(resp.headers["gateway-audit-id"])
    assert found is not None and found[1].outcome != "served"


def test_without_a_session_a_query_is_unauthenticated(
    gw: tuple[Gateway, MemoryAuditStore],
) -> None:
    client, _ = gw
    resp = client.client.post(
        "/v1/query", json={"sql": SQL, "purpose": PURPOSE, "system": "rsj-subsidy"}
    )
    assert resp.status_code == 401


def test_a_system_token_cannot_claim_another_system(
    gw: tuple[Gateway, MemoryAuditStore],
) -> None:
    client, _ = gw
    headers = {"Authorization": f"Bearer {client.token('rsj-subsidy')}"}

    def ask(system: str) -> int:
        body = {"sql": SQL, "purpose": PURPOSE, "system": system}
        return client.client.post("/v1/query", json=body, headers=headers).status_code

    assert ask("rsj-subsidy") == 200
    assert ask("rsj-portal") == 403


def test_the_catalog_as_one_of_their_systems_shows_what_they_would_see(
    gw: tuple[Gateway, MemoryAuditStore],
) -> None:
    client, _ = gw
    _cookie_login(client)
    plain = client.client.get("/v1/catalog").json()
    assert plain["system"] == "" and plain["purposes"] == {}
    seen = client.client.get("/v1/catalog", params={"system": "rsj-subsidy"})
    assert seen.status_code == 200, seen.text
    assert seen.json()["system"] == "rsj-subsidy" and PURPOSE in seen.json()["purposes"]
    assert client.client.get("/v1/catalog", params={"system": "rsj-portal"}).status_code == 403
