"""Fail closed: no durable audit record → no data; backend down or slow → a clean error
within the time limit, never partial data."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.audit.record import Outcome
from gateway.audit.store.memory import MemoryAuditStore
from tests.e2e.harness import Gateway, demo_dsn, demo_signer, running_gateway

HEAVY = (
    "SELECT COUNT(*) AS n FROM population.people AS a, population.people AS b, "
    "population.people AS c WHERE a.gender <> c.gender"
)


@pytest.fixture
def broken_audit(tmp_path: Path) -> Iterator[tuple[Gateway, MemoryAuditStore]]:
    store = MemoryAuditStore(demo_signer())
    with running_gateway("sqlite", demo_dsn("sqlite", tmp_path), tmp_path, audit=store) as gw:
        gw.token("rsj-subsidy")  # obtain the token while the store still works
        store.unavailable = True
        yield gw, store


def test_no_audit_record_no_data(broken_audit: tuple[Gateway, MemoryAuditStore]) -> None:
    gw, _store = broken_audit
    resp = gw.query("rsj-subsidy", "SELECT name, phone FROM population.people LIMIT 5")
    assert resp.status_code == 503
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.headers["retry-after"]
    body = resp.json()
    assert body["code"] == "audit_unavailable"
    assert "rows" not in body
    assert "**" not in resp.text  # not even masked values leave


def test_refusal_is_also_503_when_it_cannot_be_audited(
    broken_audit: tuple[Gateway, MemoryAuditStore],
) -> None:
    gw, _store = broken_audit
    resp = gw.query("rsj-subsidy", "SELECT bank_card FROM subsidies.grants")
    assert resp.status_code == 503
    assert resp.json()["code"] == "audit_unavailable"


def test_token_endpoint_refusals_fail_closed_too(
    broken_audit: tuple[Gateway, MemoryAuditStore],
) -> None:
    gw, _store = broken_audit
    resp = gw.token_response({"grant_type": "client_credentials"})
    # A malformed token request is refused (400) only once its refusal is audited; with no
    # audit record possible, the answer is 503 and nothing else.
    assert resp.status_code == 503
    assert resp.json()["code"] == "audit_unavailable"
    assert resp.json()["audit_id"] is None


def test_backend_down_is_503_with_retry_after(tmp_path: Path) -> None:
    dead = "postgresql://postgres@127.0.0.1:1/test?connect_timeout=2"
    with running_gateway("postgres", dead, tmp_path, audit=MemoryAuditStore(demo_signer())) as gw:
        started = time.monotonic()
        resp = gw.query("rsj-subsidy", "SELECT name FROM population.people LIMIT 1")
        elapsed = time.monotonic() - started
        assert resp.status_code == 503, resp.text
        assert resp.json()["code"] == "backend_unavailable"
        assert resp.headers["retry-after"]
        assert elapsed < 15
        audit_id = resp.json()["audit_id"]
        stored = gw.services.audit.get(audit_id)
        assert stored is not None and stored[1].outcome is Outcome.FAILED


def test_slow_query_times_out_within_the_limit(sqlite_gateway: Gateway) -> None:
    started = time.monotonic()
    resp = sqlite_gateway.query("tjj-stats", HEAVY, timeout_ms=300)
    elapsed = time.monotonic() - started
    assert resp.status_code == 504, resp.text
    assert resp.json()["code"] == "query_timeout"
    assert elapsed < 5


def test_timeout_cannot_be_raised_above_the_gateway_limit(tmp_path: Path) -> None:
    with running_gateway(
        "sqlite",
        demo_dsn("sqlite", tmp_path),
        tmp_path,
        settings_overrides={"statement_timeout_s": 0.3},
    ) as gw:
        started = time.monotonic()
        resp = gw.query("tjj-stats", HEAVY, timeout_ms=600_000)
        assert resp.status_code == 504
        assert time.monotonic() - started < 5
