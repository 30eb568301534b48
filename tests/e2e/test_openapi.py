"""A truthful OpenAPI document (issue 10, point 9): it validates against the OpenAPI
specification, every error status is ``application/problem+json`` with the Problem
schema, the bearer scheme guards what checks the caller, the query and token endpoints
are typed as they really answer, every status a route really answers is documented, and
the docs page loads nothing from outside the gateway."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate

from gateway.audit.store.memory import MemoryAuditStore
from tests.e2e.harness import Gateway, demo_dsn, demo_signer, running_gateway

MAX_BODY = 2048
PASSWORD = "a password for tests"
WITNESS = "/v1/witness/add-checkpoint"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("openapi")
    with running_gateway(
        "sqlite",
        demo_dsn("sqlite", tmp),
        tmp,
        audit=MemoryAuditStore(demo_signer()),
        settings_overrides={"max_body_bytes": MAX_BODY},
    ) as gateway:
        gateway.services.admin.accounts.create(
            username="t-openapi-admin",
            display_name="admin",
            department="sjj",
            roles=["administrator"],
            password=PASSWORD,
            now=gateway.services.clock(),
        )
        yield gateway


@pytest.fixture(scope="module")
def document(gw: Gateway) -> dict[str, Any]:
    resp = gw.client.get("/schema/openapi.json")
    assert resp.status_code == 200
    doc: dict[str, Any] = resp.json()
    return doc


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_every_error_is_problem_json(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
        assert {"500", "503"} <= set(errors), (method, path)
        for status, response in errors.items():
            if path == WITNESS and status in {"400", "403", "404", "409", "422"}:
                # C2SP tlog-witness answers in text: documented as such.
                assert next(iter(response["content"])).startswith("text/"), status
                continue
            assert list(response["content"]) == ["application/problem+json"], (path, status)
            media = response["content"]["application/problem+json"]
            assert media["schema"] == {"$ref": "#/components/schemas/Problem"}
            (example,) = media["examples"].values()
            assert example["value"]["status"] == int(status)
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code", "trace_id"} <= set(problem["required"])


def test_operations_that_check_the_caller_name_the_bearer_scheme(
    document: dict[str, Any],
) -> None:
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, method, operation in _operations(document):
        checks_caller = "401" in operation["responses"]
        # /v1/token refuses a bad assertion with 401 but takes no bearer token; /metrics
        # takes the operator's GATEWAY_METRICS_TOKEN, not a caller's token.
        assert (operation.get("security") == [{"bearer": []}]) is checks_caller or path in {
            "/v1/token",
            "/metrics",
        }, (method, path)
    assert document["paths"]["/v1/query"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in document["paths"]["/healthz"]["get"]


def _schema(document: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    if "allOf" in ref:  # a reference with examples beside it
        (ref,) = ref["allOf"]
    name = ref["$ref"].rsplit("/", 1)[-1]
    found: dict[str, Any] = document["components"]["schemas"][name]
    return found


def test_the_query_response_is_typed_as_it_is_sent(gw: Gateway, document: dict[str, Any]) -> None:
    operation = document["paths"]["/v1/query"]["post"]
    ok_media = operation["responses"]["200"]["content"]["application/json"]
    ok = ok_media["schema"]
    (example,) = ok_media["examples"].values()
    result = _schema(document, ok)
    real = gw.query("tjj-stats", "SELECT enterprise_id FROM legal_person.enterprises").json()
    assert set(result["properties"]) == set(real)
    assert set(result["required"]) == set(real)
    assert set(example["value"]) == set(real)
    column = _schema(document, result["properties"]["columns"]["items"])
    assert set(column["properties"]) == set(real["columns"][0])
    receipt = _schema(document, result["properties"]["receipt"])
    assert set(receipt["properties"]) == set(real["receipt"])
    body = operation["requestBody"]["content"]["application/json"]
    assert _schema(document, body["schema"])["required"] == ["purpose", "sql"]
    assert body["schema"]["examples"], "the query body has an example"


def test_the_token_endpoint_documents_its_form_and_answer(
    gw: Gateway, document: dict[str, Any]
) -> None:
    operation = document["paths"]["/v1/token"]["post"]
    form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    fields = set(_schema(document, form)["properties"])
    assert fields == {"grant_type", "client_assertion_type", "client_assertion"}
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    real = gw.token_response(
        {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": gw.assertion("rsj-subsidy"),
        }
    )
    assert real.status_code == 200, real.text
    assert set(_schema(document, answer)["properties"]) == set(real.json())


@pytest.mark.parametrize("page", ["/schema", "/schema/swagger"])
def test_the_docs_page_loads_only_local_assets(gw: Gateway, page: str) -> None:
    resp = gw.client.get(page)
    assert resp.status_code == 200
    urls = set(re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", resp.text))
    assert urls, "the page loads its scripts from somewhere"
    for url in urls:
        assert url.startswith("/schema/assets/"), url
        asset = gw.client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 100, url
    assert "cdn." not in resp.text and "unpkg" not in resp.text


def _concrete(path: str) -> str:
    """A path with its parameters filled with values that name nothing."""
    return re.sub(r"\{(\w+)\}", lambda m: f"nothing-{m.group(1)}", path)


def _credentials(gw: Gateway) -> dict[str, dict[str, str]]:
    login = gw.client.post(
        "/v1/auth/login", json={"username": "t-openapi-admin", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    return {
        "anonymous": {},
        "system": {"Authorization": f"Bearer {gw.token('rsj-subsidy')}"},
        "admin": {"Authorization": f"Bearer {login.json()['token']}"},
    }


def test_every_status_a_route_answers_is_documented(gw: Gateway, document: dict[str, Any]) -> None:
    """Every route × caller × a body of each kind of wrong (none, empty JSON, wrong type,
    unknown member, malformed, too large): the status answered is in the document."""
    undocumented: set[tuple[str, str, int]] = set()
    answered: set[int] = set()
    for path, method, operation in _operations(document):
        documented = {int(s) for s in operation["responses"]}
        for headers in _credentials(gw).values():
            sends: list[dict[str, Any]] = [{}]
            if method in {"post", "put", "patch"}:
                sends = [
                    {"json": {}},
                    {"json": {"no_such_member": 1}},
                    {"content": b"{", "headers": {"Content-Type": "application/json"}},
                    {"content": b"x=1", "headers": {"Content-Type": "text/plain"}},
                    {"json": {"pad": "x" * MAX_BODY}},
                ]
            for send in sends:
                resp = gw.client.request(
                    method.upper(),
                    _concrete(path),
                    json=send.get("json"),
                    content=send.get("content"),
                    headers={**headers, **send.get("headers", {})},
                )
                answered.add(resp.status_code)
                if resp.status_code not in documented:
                    undocumented.add((method, path, resp.status_code))
    assert not undocumented, sorted(undocumented)
    # The probes did reach the refusals they are meant to provoke.
    assert {400, 401, 403, 404, 413, 415} <= answered
