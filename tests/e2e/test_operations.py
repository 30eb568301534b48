"""Operations: traces and metrics of a query, the PostgreSQL audit store, the CLI against
a real server on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.app import create_app
from gateway.audit.record import Outcome
from gateway.audit.store.open import open_audit_store
from gateway.cli import main
from gateway.demo.sharing import seed_sharing
from gateway.settings import Settings, TelemetrySettings
from gateway.telemetry.otel import OtelTelemetry
from gateway.wiring import build_services
from tests.e2e.harness import ROOT, demo_dsn, demo_signer, running_gateway


def test_one_span_per_stage_and_request_metrics(tmp_path: Path) -> None:
    spans = InMemorySpanExporter()
    metrics = InMemoryMetricReader()
    telemetry = OtelTelemetry.from_settings(
        TelemetrySettings(), span_exporter=spans, metric_reader=metrics
    )
    with running_gateway(
        "sqlite", demo_dsn("sqlite", tmp_path), tmp_path, telemetry=telemetry
    ) as gw:
        resp = gw.query(
            "rsj-subsidy", "SELECT gender, COUNT(*) AS n FROM population.people GROUP BY gender"
        )
        assert resp.status_code == 200
    names = {s.name for s in spans.get_finished_spans()}
    for stage in (
        "authenticate",
        "decide",
        "parse",
        "validate",
        "resolve",
        "rewrite",
        "respond",
        "audit",
    ):
        assert f"gateway.{stage}" in names, names
    db = [s for s in spans.get_finished_spans() if s.attributes and "db.query.text" in s.attributes]
    assert db and "population_people" in str((db[0].attributes or {})["db.query.text"])
    request = [s for s in spans.get_finished_spans() if s.name == "POST /v1/query"]
    assert request and all(s.context.trace_id == request[0].context.trace_id for s in db)
    data = metrics.get_metrics_data()
    assert data is not None
    points: dict[str, list[Any]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                points[metric.name] = list(metric.data.data_points)
    served = [
        p for p in points["gateway.requests"] if p.attributes.get("gateway.outcome") == "served"
    ]
    assert served and served[0].attributes["gateway.department"] == "rsj"
    assert "gateway.request.duration" in points and "gateway.stage.duration" in points


def test_postgres_audit_store_end_to_end(tmp_path: Path, pg_dsn: str) -> None:
    schema = f"gw_e2e_audit_{int(time.time() * 1000) % 10_000_000}"
    store = open_audit_store(f"{pg_dsn}?schema={schema}", demo_signer())
    try:
        with running_gateway("sqlite", demo_dsn("sqlite", tmp_path), tmp_path, audit=store) as gw:
            ok = gw.query("rsj-subsidy", "SELECT COUNT(*) AS n FROM population.people")
            denied = gw.query("rsj-subsidy", "SELECT bank_card FROM subsidies.grants")
            served = store.get(ok.json()["audit_id"])
            refused = store.get(denied.json()["audit_id"])
            assert served is not None and served[1].outcome is Outcome.SERVED
            assert refused is not None and refused[1].outcome is Outcome.REFUSED
            store.check()
    finally:
        store.close()
        import psycopg

        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        policy_dir=ROOT / "policies",
        key_dir=ROOT / "keys" / "demo",
        state_dir=tmp_path / "state",
        issuer=url,
        backend_dsns={"demo": demo_dsn("sqlite", tmp_path)},
        replay_dsn="memory:",
    )
    services = build_services(settings)
    seed_sharing(services.admin, services.bundle.catalog, now=services.clock())
    app = create_app(settings, services=services)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_cli_token_query_and_catalog_against_a_live_server(live_server: str) -> None:
    runner = CliRunner()
    env = {"GATEWAY_URL": live_server}
    token = runner.invoke(main, ["token", "--system", "swj-tax"], env=env)
    assert token.exit_code == 0, token.output
    assert token.output.count(".") == 2  # a JWS
    result = runner.invoke(
        main,
        [
            "query",
            "--system",
            "swj-tax",
            "SELECT status, COUNT(*) AS n FROM legal_person.enterprises "
            "GROUP BY status ORDER BY status",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "存续" in result.output and "audit_id" in result.output
    refused = runner.invoke(
        main, ["query", "--system", "swj-tax", "SELECT * FROM population.people"], env=env
    )
    assert refused.exit_code != 0 and "403" in refused.output
    catalog = runner.invoke(main, ["catalog", "--system", "tjj-stats"], env=env)
    assert catalog.exit_code == 0 and "mask:year" in catalog.output


def test_cli_generates_keys_and_registers_a_system(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    shutil.copytree(ROOT / "keys", tmp_path / "keys")
    runner = CliRunner()
    keys = runner.invoke(
        main,
        [
            "keys",
            "generate",
            "--name",
            "zwb-portal",
            "--alg",
            "ES256",
            "--out",
            str(tmp_path / "keys"),
        ],
    )
    assert keys.exit_code == 0, keys.output
    env = {"GATEWAY_POLICY_DIR": str(tmp_path / "policies")}
    reg = runner.invoke(
        main,
        [
            "systems",
            "register",
            "--id",
            "zwb-portal",
            "--department",
            "tjj",
            "--name-zh",
            "政务服务平台",
            "--name-en",
            "Service portal",
            "--attr",
            "district=历下区",
            "--purpose",
            "statistics",
            "--public-key",
            str(tmp_path / "keys" / "zwb-portal.pub.pem"),
            "--alg",
            "ES256",
        ],
        env=env,
    )
    assert reg.exit_code == 0, reg.output
    listed = runner.invoke(main, ["systems", "list"], env=env)
    assert "zwb-portal" in listed.output
    check = runner.invoke(main, ["check"], env=env)
    # registered but no rule names it: loads fine, and nothing is granted to it
    assert check.exit_code == 0, check.output
