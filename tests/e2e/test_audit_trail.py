"""One audit trail: every route × every way a request can fail (and every data access that
succeeds) leaves exactly one audit record, whose id the response carries.

The routes are enumerated from the running app, so a route added later without its
failure kinds being audited fails here. Each request sends its own ``X-Request-Id``; the
test then counts the records that carry it in the log (exactly one) and checks the
response names that record's audit id.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.audit.record import AuditRecord, Outcome
from gateway.audit.store.memory import MemoryAuditStore
from gateway.settings import TelemetrySettings
from tests.e2e.harness import Gateway, demo_dsn, demo_signer, running_gateway

#: Successful responses that are not audited, by design (docs/design.md "One audit
#: trail"): probes, metrics scrapes, public keys and checkpoints, the API description,
#: the console's static files (its data comes from the audited API).
UNAUDITED_SUCCESS = {
    "/console",
    "/console/static/{name:path}",
    "/healthz",
    "/readyz",
    "/metrics",
    "/.well-known/jwks.json",
    "/v1/audit/checkpoint",
    "/v1/audit/checkpoints",
    "/v1/audit/cosigned",
    "/v1/audit/keys",
}

#: Routes behind the role guard (a bearer token or a session is required).
AUTHENTICATED = {
    "/v1/catalog",
    "/v1/catalog/samples",
    "/v1/audit/records",
    "/v1/audit/records/{audit_id:str}",
    "/v1/audit/export",
    "/v1/audit/proof/inclusion",
    "/v1/audit/proof/consistency",
    "/v1/auth/logout",
    "/v1/me",
    "/v1/me/password",
    "/v1/me/totp",
    "/v1/me/totp/confirm",
    "/v1/accounts",
    "/v1/accounts/{username:str}",
    "/v1/accounts/{username:str}/password",
    "/v1/accounts/{username:str}/totp/remove",
    "/v1/applications",
    "/v1/applications/{app_id:str}",
    "/v1/applications/{app_id:str}/{action:str}",
    "/v1/applications/{app_id:str}/renewal",
    "/v1/grants",
    "/v1/notifications",
    "/v1/notifications/read",
    "/v1/quotas",
    "/v1/statistics",
    "/v1/explain",
    "/v1/policy/versions",
    "/v1/policy/versions/{change_id:str}",
    "/v1/policy/versions/{change_id:str}/{action:str}",
    "/v1/policy/validate",
    "/v1/policy/rollback",
    "/v1/policy/replay",
}

#: POST routes that authenticate by their body (no guard).
PUBLIC_POSTS = {
    "/v1/query",
    "/v1/token",
    "/v1/witness/add-checkpoint",
    "/v1/auth/login",
    "/v1/auth/oidc",
}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, MemoryAuditStore]]:
    tmp = tmp_path_factory.mktemp("trail")
    store = MemoryAuditStore(demo_signer())
    # Metrics served, so that /metrics answers 200 like the other unaudited reads.
    prometheus = {"telemetry": TelemetrySettings(metrics_exporter="prometheus")}
    with running_gateway(
        "sqlite", demo_dsn("sqlite", tmp), tmp, audit=store, settings_overrides=prometheus
    ) as gateway:
        yield gateway, store


def _records_of(store: MemoryAuditStore, request_id: str) -> list[AuditRecord]:
    entries = store.entries(0, store.size())
    found = [AuditRecord.from_canonical(e.record) for e in entries]
    return [r for r in found if r.request_id == request_id]


def _send(
    gateway: Gateway, method: str, path: str, *, token: str | None = None, **kw: Any
) -> tuple[httpx.Response, str]:
    request_id = f"trail-{uuid.uuid4().hex}"
    headers = {"X-Request-Id": request_id, **kw.pop("headers", {})}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    resp = gateway.client.request(method, path, headers=headers, **kw)
    return resp, request_id


def _assert_one_record(
    store: MemoryAuditStore, resp: httpx.Response, request_id: str, what: str
) -> AuditRecord:
    records = _records_of(store, request_id)
    assert len(records) == 1, f"{what}: {len(records)} records for one request"
    record = records[0]
    assert resp.headers.get("gateway-audit-id") == record.audit_id, what
    assert resp.headers.get("x-request-id") == request_id, what
    if resp.headers.get("content-type", "").startswith("application/problem+json"):
        body = resp.json()
        assert body["audit_id"] == record.audit_id, what
        assert body["receipt"]["audit_id"] == record.audit_id, what
        assert record.status == resp.status_code == body["status"], what
        assert record.error_code == body["code"], what
    return record


def _concrete(path: str) -> str:
    return (
        path.replace("{audit_id:str}", "01a2454e-0000-7000-8000-000000000000")
        .replace("{path:str}", "nothing")
        .replace("{username:str}", "nobody")
        .replace("{app_id:str}", "SQ20260101-000000")
        .replace("{action:str}", "submit")
        .replace("{name:path}", "app.js")
    )


def _app_routes(gateway: Gateway) -> list[tuple[str, set[str]]]:
    routes = []
    for route in gateway.client.app.routes:
        methods = set(getattr(route, "methods", set())) - {"OPTIONS", "HEAD"}
        if route.path.startswith("/schema"):
            continue  # the API description: static documentation, tested elsewhere
        routes.append((route.path, methods))
    return routes


def test_the_routes_are_the_ones_this_test_knows(gw: tuple[Gateway, MemoryAuditStore]) -> None:
    gateway, _ = gw
    paths = {p for p, _ in _app_routes(gateway)}
    known = UNAUDITED_SUCCESS | AUTHENTICATED | PUBLIC_POSTS
    assert paths == known, "a route was added or removed: extend this test"


def test_wrong_method_on_every_route_is_audited(gw: tuple[Gateway, MemoryAuditStore]) -> None:
    gateway, store = gw
    for path, methods in _app_routes(gateway):
        wrong = "DELETE" if "DELETE" not in methods else "PUT"
        resp, rid = _send(gateway, wrong, _concrete(path))
        assert resp.status_code == 405, path
        record = _assert_one_record(store, resp, rid, f"{wrong} {path}")
        assert record.outcome is Outcome.REFUSED
        assert record.sql == f"{wrong} {_concrete(path)}"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_routes_are_audited(gw: tuple[Gateway, MemoryAuditStore], method: str) -> None:
    gateway, store = gw
    resp, rid = _send(gateway, method, "/v1/nothing-here")
    assert resp.status_code == 404
    assert _assert_one_record(store, resp, rid, "unknown route").error_code == "not_found"


def test_missing_and_bad_tokens_on_every_authenticated_route(
    gw: tuple[Gateway, MemoryAuditStore],
) -> None:
    gateway, store = gw
    guarded = [(p, m) for p, methods in _app_routes(gateway) if p in AUTHENTICATED for m in methods]
    guarded.append(("/v1/query", "POST"))
    for path, method in guarded:
        body = {"json": {"sql": "SELECT 1", "purpose": "x"}} if method != "GET" else {}
        for token in (None, "not-a-token", "gws_not-a-session"):
            resp, rid = _send(gateway, method, _concrete(path), token=token, **body)
            assert resp.status_code == 401, (method, path, token, resp.text)
            record = _assert_one_record(store, resp, rid, f"{method} {path} token={token}")
            assert record.system is None and record.outcome is Outcome.REFUSED


def test_oversized_and_malformed_bodies_on_every_post_route(
    gw: tuple[Gateway, MemoryAuditStore],
) -> None:
    gateway, store = gw
    limit = gateway.services.settings.max_body_bytes
    for path in ("/v1/query", "/v1/token", "/v1/witness/add-checkpoint"):
        resp, rid = _send(gateway, "POST", path, content=b"x" * (limit + 1))
        assert resp.status_code == 413, path
        _assert_one_record(store, resp, rid, f"413 {path}")
    resp, rid = _send(
        gateway,
        "POST",
        "/v1/query",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 400
    _assert_one_record(store, resp, rid, "malformed JSON")
    resp, rid = _send(gateway, "POST", "/v1/query", json={"purpose": "statistics"})
    assert resp.status_code == 400
    _assert_one_record(store, resp, rid, "missing member")
    resp, rid = _send(gateway, "POST", "/v1/token", data={"grant_type": "password"})
    assert resp.status_code == 400
    _assert_one_record(store, resp, rid, "malformed token request")
    resp, rid = _send(gateway, "POST", "/v1/witness/add-checkpoint", content=b"not a checkpoint")
    assert resp.status_code in (400, 404)  # this gateway is no witness: 404
    _assert_one_record(store, resp, rid, "witness refusal")


def test_refusals_after_authentication_name_the_caller(
    gw: tuple[Gateway, MemoryAuditStore],
) -> None:
    gateway, store = gw
    token = gateway.token("rsj-subsidy")
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        (
            "POST",
            "/v1/query",
            {
                "json": {
                    "sql": "SELECT bank_card FROM subsidies.grants",
                    "purpose": "employment_subsidy_review",
                }
            },
            403,
        ),
        (
            "POST",
            "/v1/query",
            {"json": {"sql": "SELEC", "purpose": "employment_subsidy_review"}},
            400,
        ),
        (
            "POST",
            "/v1/query",
            {"json": {"sql": "SELECT 1 FROM population.people", "purpose": "statistics"}},
            403,
        ),
        ("GET", "/v1/catalog?purpose=statistics", {}, 403),
        ("GET", "/v1/audit/export?start=0&end=1", {}, 403),
        ("GET", "/v1/audit/records/01a2454e-0000-7000-8000-000000000000", {}, 404),
        ("GET", "/v1/audit/proof/inclusion?index=5&size=1", {}, 400),
    ]
    for method, path, kw, status in cases:
        resp, rid = _send(gateway, method, path, token=token, **kw)
        assert resp.status_code == status, (path, resp.text)
        record = _assert_one_record(store, resp, rid, f"{method} {path}")
        assert record.system == "rsj-subsidy", path


def test_every_data_access_that_succeeds_is_audited_once(
    gw: tuple[Gateway, MemoryAuditStore],
) -> None:
    gateway, store = gw
    token = gateway.token("gaj-officer")
    consumer = gateway.token("rsj-subsidy")
    resp, rid = _send(
        gateway,
        "POST",
        "/v1/query",
        token=consumer,
        json={
            "sql": "SELECT COUNT(*) AS n FROM population.people",
            "purpose": "employment_subsidy_review",
        },
    )
    assert resp.status_code == 200
    served = _assert_one_record(store, resp, rid, "query")
    assert served.outcome is Outcome.SERVED and resp.json()["audit_id"] == served.audit_id
    reads = [
        ("/v1/catalog", consumer, "catalog_read"),
        ("/v1/audit/records?dataset=population", token, "audit_log_read"),
        (f"/v1/audit/records/{served.audit_id}", token, "audit_log_read"),
        (f"/v1/audit/export?audit_id={served.audit_id}", token, "audit_log_read"),
    ]
    for path, who, purpose in reads:
        resp, rid = _send(gateway, "GET", path, token=who)
        assert resp.status_code == 200, (path, resp.text)
        record = _assert_one_record(store, resp, rid, path)
        assert record.purpose == purpose and record.outcome is Outcome.SERVED
    for path in (
        "/v1/audit/proof/inclusion?index=0&size=1",
        "/v1/audit/proof/consistency?first=1&second=2",
    ):
        resp, rid = _send(gateway, "GET", path, token=token)
        assert resp.status_code == 200, path
    assertion = gateway.assertion("swj-tax")
    resp, rid = _send(
        gateway,
        "POST",
        "/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )
    assert resp.status_code == 200
    issued = _assert_one_record(store, resp, rid, "token")
    assert issued.system == "swj-tax" and issued.purpose == "token_exchange"


def test_public_reads_are_not_audited(gw: tuple[Gateway, MemoryAuditStore]) -> None:
    gateway, store = gw
    if store.cosigned() is None:  # so that /v1/audit/cosigned has something to answer
        store.add_cosigned(0, store.origin, store.head().checkpoint)
    for path in sorted(UNAUDITED_SUCCESS):
        before = store.size()
        resp, rid = _send(gateway, "GET", _concrete(path))
        assert resp.status_code == 200, path
        assert not _records_of(store, rid), path
        assert store.size() == before, path


def test_a_client_request_id_is_kept_and_a_bad_one_replaced(
    gw: tuple[Gateway, MemoryAuditStore], tmp_path: Path
) -> None:
    gateway, store = gw
    resp = gateway.client.get("/v1/nothing", headers={"X-Request-Id": "bad\x7fid"})
    record = store.get(resp.headers["gateway-audit-id"])
    assert record is not None
    assert record[1].request_id == resp.headers["x-request-id"] != "bad\x7fid"
    uuid.UUID(record[1].request_id)
