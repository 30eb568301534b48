"""GET /metrics: scraped and parsed with prometheus_client's own text parser; the RED
series per route, department, system and dataset, the audit batches, the plan cache and
the backend pools are there with the right labels; a scrape is not audited; a metrics
token, when set, is required (and a refusal is audited)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from gateway.audit.store.memory import MemoryAuditStore
from gateway.settings import TelemetrySettings
from tests.e2e.harness import Gateway, demo_dsn, demo_signer, running_gateway

PROMETHEUS = {"telemetry": TelemetrySettings(metrics_exporter="prometheus")}
SQL = "SELECT COUNT(*) AS n FROM population.people"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, MemoryAuditStore]]:
    tmp = tmp_path_factory.mktemp("metrics")
    store = MemoryAuditStore(demo_signer())
    with running_gateway(
        "sqlite", demo_dsn("sqlite", tmp), tmp, audit=store, settings_overrides=PROMETHEUS
    ) as gw:
        # Traffic to measure: a served query twice (plan-cache miss, then hit), a refused
        # one, a catalog read, an unknown route, a probe.
        assert gw.query("rsj-subsidy", SQL).status_code == 200
        assert gw.query("rsj-subsidy", SQL).status_code == 200
        denied = gw.query("rsj-subsidy", "SELECT bank_card FROM subsidies.grants")
        assert denied.status_code == 403
        assert gw.get("tjj-stats", "/v1/catalog", purpose="statistics").status_code == 200
        assert gw.client.get("/v1/nothing-here").status_code == 404
        assert gw.client.get("/healthz").status_code == 200
        yield gw, store


def _scrape(gw: Gateway, **headers: str) -> dict[str, list[Sample]]:
    resp = gw.client.get("/metrics", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = text_string_to_metric_families(resp.text)
    return {family.name: family.samples for family in families}


def _find(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    return [
        s
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def test_red_metrics_per_route_department_system_and_dataset(
    served: tuple[Gateway, MemoryAuditStore],
) -> None:
    gw, _ = served
    metrics = _scrape(gw)
    http = metrics["http_server_request_duration_seconds"]
    name = "http_server_request_duration_seconds_count"
    [query_ok] = _find(
        http,
        name,
        http_request_method="POST",
        http_route="/v1/query",
        http_response_status_code="200",
        gateway_department="rsj",
        gateway_system="rsj-subsidy",
        gateway_dataset="population",
    )
    assert query_ok.value == 2
    [query_denied] = _find(
        http,
        name,
        http_route="/v1/query",
        http_response_status_code="403",
        gateway_system="rsj-subsidy",
    )
    # Refused while planning (a denied column): no plan, so no dataset to name. The
    # exporter writes a label a series lacks as "" (other series of the family have it).
    assert query_denied.value == 1 and query_denied.labels["gateway_dataset"] == ""
    [catalog] = _find(
        http, name, http_route="/v1/catalog", gateway_department="tjj", gateway_system="tjj-stats"
    )
    assert catalog.value == 1 and catalog.labels["gateway_dataset"] == ""
    [token] = _find(http, name, http_route="/v1/token", gateway_system="rsj-subsidy")
    assert token.labels["http_response_status_code"] == "200"
    # A path no route matched: counted, but with no route label (its raw path would make
    # one series per probe of an attacker's choosing).
    unmatched = [
        s for s in _find(http, name, http_response_status_code="404") if not s.labels["http_route"]
    ]
    assert [s.value for s in unmatched] == [1]
    assert _find(http, name, http_route="/healthz", http_response_status_code="200")
    # Duration: buckets in seconds, the +Inf bucket equal to the count.
    [inf] = _find(
        http,
        "http_server_request_duration_seconds_bucket",
        http_route="/v1/query",
        http_response_status_code="200",
        le="+Inf",
    )
    assert inf.value == 2


def test_audit_plan_cache_pool_and_stage_metrics(served: tuple[Gateway, MemoryAuditStore]) -> None:
    gw, store = served
    metrics = _scrape(gw)
    [records] = metrics["gateway_audit_records"]
    [batches] = metrics["gateway_audit_batches"]
    assert records.name == "gateway_audit_records_total"
    # Everything audited so far went through the committer: the records it counted are
    # the store's (the scrape itself added none).
    assert records.value == store.size() >= 5
    assert 1 <= batches.value <= records.value
    [largest] = metrics["gateway_audit_batch_largest"]
    assert largest.value >= 1
    lookups = metrics["gateway_plan_cache_lookups"]
    hits = _find(lookups, "gateway_plan_cache_lookups_total", gateway_cache_result="hit")
    misses = _find(lookups, "gateway_plan_cache_lookups_total", gateway_cache_result="miss")
    assert hits[0].value >= 1 and misses[0].value >= 2
    [entries] = metrics["gateway_plan_cache_entries"]
    assert entries.value >= 1
    pools = metrics["db_client_connection_count"]
    states = {
        s.labels["db_client_connection_state"]: s.value
        for s in pools
        if s.labels["db_client_connection_pool_name"] == "demo"
    }
    assert set(states) == {"used", "idle"} and states["used"] == 0 and states["idle"] >= 1
    [pool_max] = metrics["db_client_connection_max"]
    assert pool_max.labels["db_client_connection_pool_name"] == "demo" and pool_max.value >= 1
    stages = {s.labels.get("gateway_stage") for s in metrics["gateway_stage_duration_seconds"]}
    # Audit commit latency is the audit stage: queueing, commit and signature.
    assert {"audit", "execute", "respond", "decide"} <= stages
    requests = metrics["gateway_requests"]
    assert _find(
        requests, "gateway_requests_total", gateway_department="rsj", gateway_outcome="refused"
    )


def test_a_scrape_is_not_audited(served: tuple[Gateway, MemoryAuditStore]) -> None:
    gw, store = served
    before = store.size()
    for _ in range(3):
        _scrape(gw)
    assert store.size() == before


def test_a_metrics_token_is_required_when_set_and_a_refusal_is_audited(tmp_path: Path) -> None:
    store = MemoryAuditStore(demo_signer())
    overrides = PROMETHEUS | {"metrics_token": "scrape-secret-0123456789"}
    with running_gateway(
        "sqlite", demo_dsn("sqlite", tmp_path), tmp_path, audit=store, settings_overrides=overrides
    ) as gw:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
            resp = gw.client.get("/metrics", headers=headers)
            assert resp.status_code == 401, headers
            assert resp.headers["content-type"].startswith("application/problem+json")
            assert "http_server" not in resp.text
            assert store.get(resp.headers["gateway-audit-id"]) is not None
        metrics = _scrape(gw, Authorization="Bearer scrape-secret-0123456789")
        assert "http_server_request_duration_seconds" in metrics


def test_without_the_prometheus_exporter_there_is_nothing_to_scrape(tmp_path: Path) -> None:
    with running_gateway("sqlite", demo_dsn("sqlite", tmp_path), tmp_path) as gw:
        resp = gw.client.get("/metrics")
        assert resp.status_code == 404
        assert "GATEWAY_METRICS_EXPORTER=prometheus" in resp.json()["detail"]


def test_every_route_has_a_server_span_with_the_http_conventions(tmp_path: Path) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from gateway.telemetry.otel import OtelTelemetry

    spans = InMemorySpanExporter()
    telemetry = OtelTelemetry.from_settings(TelemetrySettings(), span_exporter=spans)
    store = MemoryAuditStore(demo_signer())
    with running_gateway(
        "sqlite", demo_dsn("sqlite", tmp_path), tmp_path, audit=store, telemetry=telemetry
    ) as gw:
        resp = gw.query("rsj-subsidy", SQL)
        assert resp.status_code == 200
        found = store.get(resp.headers["gateway-audit-id"])
        assert found is not None
        record = found[1]
        assert gw.get("rsj-subsidy", "/v1/audit/records/nothing").status_code in (403, 404)
        gw.client.get("/healthz")
    servers = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    by_name = {s.name: s for s in servers}
    query = by_name["POST /v1/query"]
    attrs = dict(query.attributes or {})
    assert attrs["http.request.method"] == "POST"
    assert attrs["http.route"] == "/v1/query"
    assert attrs["http.response.status_code"] == 200
    assert attrs["url.path"] == "/v1/query"
    # The audit record of the query carries the trace id of its server span.
    assert record.trace_id == format(query.context.trace_id, "032x")
    # Its stages are children of it.
    children = [s for s in spans.get_finished_spans() if s.parent == query.context]
    assert {"gateway.authenticate", "gateway.audit"} <= {s.name for s in children}
    assert "POST /v1/token" in by_name
    # Named by the route template, not the path: one span name per route.
    assert (by_name["GET /v1/audit/records/{audit_id}"].attributes or {})["http.route"] == (
        "/v1/audit/records/{audit_id}"
    )
    # Probes are counted in the metrics but not traced.
    assert not any("healthz" in s.name for s in servers)
