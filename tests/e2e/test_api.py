"""The HTTP surface: result shape, audit record contents, one problem+json shape for
every error path, tokens, JWKS, catalog, OpenAPI."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from gateway.audit.receipt import split_receipt
from gateway.audit.record import Outcome
from gateway.auth.keys import load_pseudonym_secret
from gateway.query.rewrite.masks import derive_pseudonym_key
from tests.e2e import expected as ex
from tests.e2e.harness import ROOT, Gateway


def _hmac_pads(key: bytes) -> tuple[str, str]:
    block = key.ljust(64, b"\x00")
    return bytes(b ^ 0x36 for b in block).hex(), bytes(b ^ 0x5C for b in block).hex()


PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance", "code", "trace_id", "audit_id"}


def test_result_shape_and_receipt(sqlite_gateway: Gateway) -> None:
    resp = sqlite_gateway.query(
        "rsj-subsidy", "SELECT person_id, name, id_number FROM population.people ORDER BY person_id"
    )
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) >= {"columns", "rows", "row_count", "truncated", "audit_id"}
    assert body["audit_id"] == resp.headers["gateway-audit-id"]
    assert body["columns"] == [
        {"name": "person_id", "type": "integer", "masking": []},
        {"name": "name", "type": "text", "masking": ["name"]},
        {"name": "id_number", "type": "text", "masking": ["pseudonym"]},
    ]
    # rsj-subsidy may receive 200 rows of population.people; 历下区 has more
    assert body["row_count"] == 200
    assert body["truncated"] is True
    assert len(body["rows"]) == 200


def test_caller_may_lower_but_not_raise_the_row_limit(sqlite_gateway: Gateway) -> None:
    sql = "SELECT person_id FROM population.people ORDER BY person_id"
    lowered = sqlite_gateway.query("rsj-subsidy", sql, max_rows=7).json()
    assert lowered["row_count"] == 7 and lowered["truncated"] is True
    raised = sqlite_gateway.query("rsj-subsidy", sql, max_rows=100_000).json()
    assert raised["row_count"] == 200


def test_served_query_is_audited_with_the_digest_of_the_exact_body(sqlite_gateway: Gateway) -> None:
    resp = sqlite_gateway.query(
        "rsj-subsidy", "SELECT program, COUNT(*) AS n FROM subsidies.grants GROUP BY program"
    )
    assert resp.status_code == 200
    stored = sqlite_gateway.services.audit.get(resp.headers["gateway-audit-id"])
    assert stored is not None
    index, record = stored
    assert str(index) == resp.headers["gateway-audit-index"]
    assert record.outcome is Outcome.SERVED
    result_bytes, receipt = split_receipt(resp.content)
    assert record.response_sha256 == hashlib.sha256(result_bytes).hexdigest()
    assert receipt.index == index and receipt.audit_id == record.audit_id
    assert receipt.leaf_hash == record.leaf_hash()
    assert record.system == "rsj-subsidy" and record.department == "rsj"
    assert record.purpose == "employment_subsidy_review"
    assert record.sql is not None and "GROUP BY program" in record.sql
    assert record.rewritten_sql is not None and "civil_subsidies" in record.rewritten_sql
    # the department's pseudonym key reaches the backend, never the audit log
    key = derive_pseudonym_key(load_pseudonym_secret(ROOT / "keys" / "demo"), "rsj")
    for secret in (key.hex(), *_hmac_pads(key)):
        assert secret not in record.rewritten_sql.lower()
    assert "<pseudonym key of the department>" in record.rewritten_sql
    assert record.policy_version == resp.json()["policy_version"]
    assert record.decisions["subsidies.grants.bank_card"] == "deny"
    assert record.decisions["subsidies.grants.recipient_id_number"] == "mask:pseudonym"
    assert record.row_filters == ("district = '历下区'",)
    assert record.row_count == resp.json()["row_count"]


def test_refusal_is_audited(sqlite_gateway: Gateway) -> None:
    resp = sqlite_gateway.query("rsj-subsidy", "SELECT bank_card FROM subsidies.grants")
    assert resp.status_code == 403
    stored = sqlite_gateway.services.audit.get(resp.json()["audit_id"])
    assert stored is not None
    record = stored[1]
    assert record.outcome is Outcome.REFUSED
    assert record.error_code == "access_denied"
    assert record.status == 403


def _error_responses(gw: Gateway) -> dict[str, httpx.Response]:
    token = gw.token("rsj-subsidy")
    auth = {"Authorization": f"Bearer {token}"}
    c = gw.client
    q = "/v1/query"
    return {
        "no token": c.post(q, json={"sql": "SELECT 1", "purpose": "x"}),
        "bad token": c.post(
            q, json={"sql": "SELECT 1", "purpose": "x"}, headers={"Authorization": "Bearer x.y.z"}
        ),
        "malformed json": c.post(
            q, content=b'{"sql": ', headers={**auth, "Content-Type": "application/json"}
        ),
        "missing field": c.post(q, json={"sql": "SELECT 1"}, headers=auth),
        "huge body": c.post(
            q, json={"sql": "SELECT " + "1," * 60_000 + "1", "purpose": "x"}, headers=auth
        ),
        "syntax": gw.query("rsj-subsidy", "SELECT name FROM population.people WHERE"),
        "two statements": gw.query("rsj-subsidy", "SELECT 1; SELECT 2"),
        "unknown table": gw.query("rsj-subsidy", "SELECT * FROM population.nothing"),
        "denied column": gw.query("rsj-subsidy", "SELECT bank_card FROM subsidies.grants"),
        "purpose": gw.query("rsj-subsidy", "SELECT 1", purpose="statistics"),
        "empty sql": gw.query("rsj-subsidy", "   "),
        "no route": c.get("/v1/nothing"),
        "wrong method": c.get(q),
        "token garbage": gw.token_response({"grant_type": "client_credentials"}),
    }


def test_every_error_has_the_same_problem_shape(sqlite_gateway: Gateway) -> None:
    for name, resp in _error_responses(sqlite_gateway).items():
        assert resp.status_code >= 400, name
        assert resp.headers["content-type"].startswith("application/problem+json"), name
        body = resp.json()
        assert set(body) >= PROBLEM_MEMBERS, (name, body)
        assert body["status"] == resp.status_code, name
        assert body["detail"] and body["title"], name
        assert len(body["trace_id"]) == 32, name


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("no token", 401, "unauthenticated"),
        ("bad token", 401, "unauthenticated"),
        ("malformed json", 400, "invalid_request"),
        ("missing field", 400, "invalid_request"),
        ("huge body", 413, "request_too_large"),
        ("syntax", 400, "sql_syntax"),
        ("two statements", 400, "unsupported_sql"),
        ("unknown table", 404, "unknown_object"),
        ("denied column", 403, "access_denied"),
        ("purpose", 403, "purpose_not_allowed"),
        ("empty sql", 400, "invalid_request"),
        ("no route", 404, "not_found"),
        ("wrong method", 405, "method_not_allowed"),
        ("token garbage", 400, "invalid_request"),
    ],
)
def test_error_statuses_and_codes(
    sqlite_gateway: Gateway, case: str, status: int, code: str
) -> None:
    resp = _error_responses(sqlite_gateway)[case]
    assert (resp.status_code, resp.json()["code"]) == (status, code), resp.text


def test_data_endpoint_refusals_all_carry_an_audit_id(sqlite_gateway: Gateway) -> None:
    responses = _error_responses(sqlite_gateway)
    for name in (
        "no token",
        "bad token",
        "malformed json",
        "huge body",
        "syntax",
        "denied column",
        "purpose",
        "empty sql",
        "missing field",
    ):
        audit_id = responses[name].json()["audit_id"]
        assert audit_id, name
        assert sqlite_gateway.services.audit.get(audit_id) is not None, name


def test_syntax_error_names_line_and_column(sqlite_gateway: Gateway) -> None:
    body = sqlite_gateway.query(
        "rsj-subsidy", "SELECT name\nFROM population.people\nWHERE = 1"
    ).json()
    assert body["code"] == "sql_syntax"
    assert body["line"] == 3


def test_purpose_refusal_lists_the_entitled_purposes(sqlite_gateway: Gateway) -> None:
    body = sqlite_gateway.query("rsj-subsidy", "SELECT 1", purpose="statistics").json()
    assert body["allowed_purposes"] == ["employment_subsidy_review"]


def test_tokens_are_refused_uniformly(sqlite_gateway: Gateway) -> None:
    gw = sqlite_gateway
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": gw.assertion("rsj-subsidy"),
    }
    assert gw.token_response(form).status_code == 200
    replay = gw.token_response(form)
    assert replay.status_code == 401
    suspended = gw.token_response({**form, "client_assertion": gw.assertion("mzj-suspended")})
    assert suspended.status_code == 401
    # the client learns nothing about which check failed
    assert replay.json()["detail"] == suspended.json()["detail"]


def test_jwks_has_only_public_keys(sqlite_gateway: Gateway) -> None:
    jwks = sqlite_gateway.client.get("/.well-known/jwks.json").json()
    assert jwks["keys"]
    for key in jwks["keys"]:
        assert "d" not in key
        assert key["kty"] == "OKP" and key["crv"] == "Ed25519"


def test_catalog_lists_fields_and_this_systems_access(sqlite_gateway: Gateway) -> None:
    token = sqlite_gateway.token("ybj-insurance")
    doc = sqlite_gateway.client.get(
        "/v1/catalog", headers={"Authorization": f"Bearer {token}"}
    ).json()
    datasets = {d["name"]: d for d in doc["datasets"]}
    assert datasets["case_records"]["sharing_class"] == "not_shared"
    people = next(t for t in datasets["population"]["tables"] if t["name"] == "population.people")
    access = {
        c["name"]: c["your_access"]["medical_insurance_enrollment"] for c in people["columns"]
    }
    assert access["address"] == "deny"
    assert access["id_number"] == "mask:id_number"
    id_number = next(c for c in people["columns"] if c["name"] == "id_number")
    words = id_number["mask_descriptions"]["id_number"]
    assert words["en"].startswith("first 1 and last 2 characters kept")
    assert words["zh"].startswith("保留前1位和后2位")
    assert access["gender"] == "allow"
    assert "历下区" not in json.dumps(doc, ensure_ascii=False)  # no values, only metadata


def test_catalog_shows_the_row_limit_that_applies_to_the_caller(
    sqlite_gateway: Gateway,
) -> None:
    """Per table and purpose: the p3 limit or else the catalog default (tests/e2e/expected.py
    restates them by hand); null where the table is not shared with the caller."""
    doc = sqlite_gateway.get("tjj-stats", "/v1/catalog").json()
    assert doc["default_max_rows"] == ex.DEFAULT_MAX_ROWS
    limits = {
        t["name"]: t["your_max_rows"]["statistics"] for d in doc["datasets"] for t in d["tables"]
    }
    for table, policy in ex.POLICIES["tjj-stats"].tables.items():
        assert limits[table] == policy.max_rows, table
    assert limits["legal_person.enterprises"] == ex.DEFAULT_MAX_ROWS  # no p3 line: the default
    assert limits["case_records.incidents"] is None  # not shared
    by_dataset = {d["name"]: d["default_max_rows"] for d in doc["datasets"]}
    assert set(by_dataset.values()) == {ex.DEFAULT_MAX_ROWS}


def test_openapi_is_served(sqlite_gateway: Gateway) -> None:
    spec = sqlite_gateway.client.get("/schema/openapi.json").json()
    assert {"/v1/query", "/v1/token", "/v1/catalog", "/.well-known/jwks.json"} <= set(spec["paths"])
