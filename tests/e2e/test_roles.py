"""Every endpoint × every kind of caller, against the table in docs/roles.md: a ✓ passes
the role check (any answer but 401/403), a ✗ is refused (401 without credentials, 401 or
403 with them). The table must list exactly the app's routes."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from gateway.audit.store.memory import MemoryAuditStore
from tests.e2e.harness import ROOT, Gateway, demo_dsn, demo_signer, running_gateway

TABLE = (ROOT / "docs" / "roles.md").read_text(encoding="utf-8")
COLUMNS = ("system", "applicant", "officer", "coordinator", "auditor", "admin", "anonymous")
ROLE_OF = {
    "applicant": ("applicant", "rsj"),
    "officer": ("provider_officer", "gaj"),
    "coordinator": ("coordinator", "sjj"),
    "auditor": ("auditor", "sjj"),
    "admin": ("administrator", "sjj"),
}
PASSWORD = "a password for tests"
ROW = re.compile(r"^\| `(GET|POST|PUT|PATCH|DELETE) ([^`]+)` \|(.+)\|$")


def _table() -> list[tuple[str, str, dict[str, bool]]]:
    rows = []
    for line in TABLE.splitlines():
        match = ROW.match(line.strip())
        if match is None:
            continue
        marks = [m.strip() for m in match.group(3).split("|")]
        assert len(marks) == len(COLUMNS), line
        assert set(marks) <= {"✓", "✗"}, line
        rows.append(
            (
                match.group(1),
                match.group(2),
                dict(zip(COLUMNS, [m == "✓" for m in marks], strict=True)),
            )
        )
    return rows


ROWS = _table()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("roles")
    audit = MemoryAuditStore(demo_signer())
    with running_gateway("sqlite", demo_dsn("sqlite", tmp), tmp, audit=audit) as gw:
        for column, (role, department) in ROLE_OF.items():
            gw.services.admin.accounts.create(
                username=f"t-{column}",
                display_name=column,
                department=department,
                roles=[role],
                password=PASSWORD,
                now=gw.services.clock(),
            )
        yield gw


@pytest.fixture
def callers(gateway: Gateway) -> tuple[Gateway, dict[str, dict[str, str]]]:
    """Fresh credentials per test (a logout row ends its sessions)."""
    headers: dict[str, dict[str, str]] = {
        "system": {"Authorization": f"Bearer {gateway.token('rsj-subsidy')}"},
        "anonymous": {},
    }
    for column in ROLE_OF:
        login = {"username": f"t-{column}", "password": PASSWORD}
        resp = gateway.client.post("/v1/auth/login", json=login)
        assert resp.status_code == 200, resp.text
        headers[column] = {"Authorization": f"Bearer {resp.json()['token']}"}
    return gateway, headers


#: What each endpoint is sent, so that only the role check can refuse it.
BODIES = {"/v1/query": {"sql": "SELECT 1", "purpose": "employment_subsidy_review"}}
QUERIES = {"/v1/audit/records": "?dataset=population"}


def _concrete(path: str) -> str:
    if path in QUERIES:
        return path + QUERIES[path]
    return (
        path.replace("{audit_id}", "01a2454e-0000-7000-8000-000000000000")
        .replace("{username}", "nobody")
        .replace("{app_id}", "SQ20260101-000000")
        .replace("{action}", "comment")
    )


def test_the_table_lists_every_route(callers: tuple[Gateway, dict[str, dict[str, str]]]) -> None:
    gw, _ = callers
    routes = set()
    for route in gw.client.app.routes:
        if route.path.startswith("/schema"):
            continue
        for method in getattr(route, "methods", set()) - {"OPTIONS", "HEAD"}:
            routes.add((method, re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)))
    assert {(m, p) for m, p, _ in ROWS} == routes


@pytest.mark.parametrize(("method", "path", "marks"), ROWS, ids=[f"{m} {p}" for m, p, _ in ROWS])
def test_every_caller_on_every_endpoint(
    callers: tuple[Gateway, dict[str, dict[str, str]]],
    method: str,
    path: str,
    marks: dict[str, bool],
) -> None:
    gw, headers = callers
    for column, allowed in marks.items():
        body = BODIES.get(path, {}) if method in ("POST", "PUT", "PATCH") else None
        resp = gw.client.request(method, _concrete(path), headers=headers[column], json=body)
        if allowed:
            assert resp.status_code not in (401, 403), (column, resp.status_code, resp.text[:300])
        elif column == "anonymous":
            assert resp.status_code == 401, (column, resp.status_code, resp.text[:300])
        else:
            assert resp.status_code in (401, 403), (column, resp.status_code, resp.text[:300])
