"""People over HTTP: login (bearer and console cookie), CSRF, session expiry, logout,
self-service and account administration — each audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest

from gateway.audit.store.memory import MemoryAuditStore
from gateway.auth.callers import SESSION_COOKIE
from tests.e2e.harness import Gateway, demo_dsn, demo_signer, running_gateway
from tests.unit.admin.support import PASSWORD, FakeClock

ADMIN_PASSWORD = "admin password 2026"


@pytest.fixture
def people(tmp_path: Path) -> Iterator[tuple[Gateway, MemoryAuditStore, FakeClock]]:
    clock = FakeClock()
    store = MemoryAuditStore(demo_signer())
    with running_gateway(
        "sqlite", demo_dsn("sqlite", tmp_path), tmp_path, audit=store, clock=clock
    ) as gw:
        gw.services.admin.accounts.create(
            username="root-admin",
            display_name="系统管理员",
            department="sjj",
            roles=["administrator"],
            password=ADMIN_PASSWORD,
            now=clock(),
        )
        yield gw, store, clock


def _login(gw: Gateway, username: str, password: str, **extra: str) -> dict[str, object]:
    resp = gw.client.post(
        "/v1/auth/login", json={"username": username, "password": password, **extra}
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, object] = resp.json()
    return body


def _bearer(token: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_administrator_creates_an_account_and_the_change_is_evidence(
    people: tuple[Gateway, MemoryAuditStore, FakeClock],
) -> None:
    gw, store, _ = people
    admin = _login(gw, "root-admin", ADMIN_PASSWORD)
    resp = gw.client.post(
        "/v1/accounts",
        headers=_bearer(admin["token"]),
        json={
            "username": "li.officer",
            "display_name": "李警官",
            "department": "gaj",
            "roles": ["provider_officer"],
            "password": PASSWORD,
        },
    )
    assert resp.status_code == 201, resp.text
    found = store.get(resp.headers["gateway-audit-id"])
    assert found is not None
    record = found[1]
    assert record.officer == "root-admin" and record.system is None
    assert record.event is not None and record.event["type"] == "account.created"
    assert record.event["username"] == "li.officer"
    assert PASSWORD not in record.canonical_bytes().decode()
    officer = _login(gw, "li.officer", PASSWORD)
    me = gw.client.get("/v1/me", headers=_bearer(officer["token"]))
    assert me.status_code == 200 and me.json()["roles"] == ["provider_officer"]


def test_roles_are_checked_on_every_account_endpoint(
    people: tuple[Gateway, MemoryAuditStore, FakeClock],
) -> None:
    gw, _, clock = people
    gw.services.admin.accounts.create(
        username="zhang",
        display_name="",
        department="rsj",
        roles=["applicant"],
        password=PASSWORD,
        now=clock(),
    )
    applicant = _login(gw, "zhang", PASSWORD)
    for method, path in (
        ("GET", "/v1/accounts"),
        ("GET", "/v1/accounts/zhang"),
        ("POST", "/v1/accounts/zhang/password"),
    ):
        resp = gw.client.request(
            method, path, headers=_bearer(applicant["token"]), json={"password": PASSWORD}
        )
        assert resp.status_code == 403, (path, resp.text)
        assert resp.json()["required_roles"] == ["administrator"]
    # A system's token is not a person, whatever its roles.
    system = gw.token("sjj-audit")
    assert gw.client.get("/v1/me", headers=_bearer(system)).status_code == 403


def test_wrong_password_then_lockout_over_http(
    people: tuple[Gateway, MemoryAuditStore, FakeClock],
) -> None:
    gw, store, clock = people
    for _ in range(5):
        resp = gw.client.post(
            "/v1/auth/login", json={"username": "root-admin", "password": "nope nope nope"}
        )
        assert resp.status_code == 401
    resp = gw.client.post(
        "/v1/auth/login", json={"username": "root-admin", "password": ADMIN_PASSWORD}
    )
    assert resp.status_code == 401
    found = store.get(resp.json()["audit_id"])
    assert found is not None and "locked" in (found[1].internal_reason or "")
    clock.advance(minutes=16)
    assert _login(gw, "root-admin", ADMIN_PASSWORD)["account"]


def test_totp_enrolment_login_and_replay_over_http(
    people: tuple[Gateway, MemoryAuditStore, FakeClock],
) -> None:
    gw, _, clock = people
    token = _login(gw, "root-admin", ADMIN_PASSWORD)["token"]
    start = gw.client.post("/v1/me/totp", headers=_bearer(token))
    assert start.status_code == 200
    totp = pyotp.TOTP(start.json()["secret"])
    confirm = gw.client.post(
        "/v1/me/totp/confirm", headers=_bearer(token), json={"code": totp.at(clock())}
    )
    assert confirm.status_code == 200 and confirm.json()["totp_enabled"]
    clock.advance(seconds=31)
    code = totp.at(clock())
    assert _login(gw, "root-admin", ADMIN_PASSWORD, totp=code)["token"]
    replay = gw.client.post(
        "/v1/auth/login", json={"username": "root-admin", "password": ADMIN_PASSWORD, "totp": code}
    )
    assert replay.status_code == 401
    without = gw.client.post(
        "/v1/auth/login", json={"username": "root-admin", "password": ADMIN_PASSWORD}
    )
    assert without.status_code == 401


def test_console_cookie_needs_csrf_on_changes_and_expires(
    people: tuple[Gateway, MemoryAuditStore, FakeClock],
) -> None:
    gw, _, clock = people
    resp = gw.client.post(
        "/v1/auth/login",
        json={"username": "root-admin", "password": ADMIN_PASSWORD, "session": "cookie"},
    )
    assert resp.status_code == 200
    set_cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "samesite=strict" in set_cookie.lower()
    assert "Max-Age=28800" in set_cookie
    assert "token" not in resp.json()
    csrf = resp.json()["csrf_token"]
    cookie = gw.client.cookies.get(SESSION_COOKIE)
    assert cookie
    # Reading needs only the cookie; a change needs the CSRF header too.
    assert gw.client.get("/v1/me").status_code == 200
    new = {
        "username": "wu",
        "display_name": "",
        "department": "tjj",
        "roles": ["applicant"],
        "password": PASSWORD,
    }
    forged = gw.client.post("/v1/accounts", json=new)
    assert forged.status_code == 403 and "CSRF" in forged.json()["detail"]
    wrong = gw.client.post("/v1/accounts", json=new, headers={"X-CSRF-Token": csrf + "x"})
    assert wrong.status_code == 403
    ok = gw.client.post("/v1/accounts", json=new, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201
    clock.advance(hours=8, seconds=1)
    expired = gw.client.get("/v1/me")
    assert expired.status_code == 401
    gw.client.cookies.clear()


def test_logout_and_disabling_end_sessions(
    people: tuple[Gateway, MemoryAuditStore, FakeClock],
) -> None:
    gw, _, clock = people
    gw.services.admin.accounts.create(
        username="zhao",
        display_name="",
        department="rsj",
        roles=["applicant"],
        password=PASSWORD,
        now=clock(),
    )
    admin = _login(gw, "root-admin", ADMIN_PASSWORD)["token"]
    first = _login(gw, "zhao", PASSWORD)["token"]
    second = _login(gw, "zhao", PASSWORD)["token"]
    assert gw.client.post("/v1/auth/logout", headers=_bearer(first)).status_code == 200
    assert gw.client.get("/v1/me", headers=_bearer(first)).status_code == 401
    assert gw.client.get("/v1/me", headers=_bearer(second)).status_code == 200
    disabled = gw.client.patch(
        "/v1/accounts/zhao", headers=_bearer(admin), json={"status": "disabled"}
    )
    assert disabled.status_code == 200
    assert gw.client.get("/v1/me", headers=_bearer(second)).status_code == 401
    assert (
        gw.client.post(
            "/v1/auth/login", json={"username": "zhao", "password": PASSWORD}
        ).status_code
        == 401
    )
