"""OtelTelemetry: spans, metrics and ids with in-memory exporters injected, plus the real
console and OTLP/HTTP exporters against stdout and a local HTTP sink."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from gateway.errors import AccessDeniedError, ConfigurationError
from gateway.settings import TelemetrySettings
from gateway.telemetry.otel import OtelTelemetry

HEX32 = re.compile(r"^[0-9a-f]{32}$")


class CountingIds(IdGenerator):
    """Predictable ids: trace ids 1, 2, 3…; span ids 1001, 1002…"""

    def __init__(self) -> None:
        self.trace = 0
        self.span = 1000

    def generate_trace_id(self) -> int:
        self.trace += 1
        return self.trace

    def generate_span_id(self) -> int:
        self.span += 1
        return self.span


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def telemetry(spans: InMemorySpanExporter, reader: InMemoryMetricReader) -> Iterator[OtelTelemetry]:
    t = OtelTelemetry.from_settings(
        TelemetrySettings(service_name="gateway-test"), span_exporter=spans, metric_reader=reader
    )
    yield t
    t.shutdown()


def key(attributes: Mapping[str, Any] | None) -> frozenset[tuple[str, Any]]:
    """A data point's attributes as a hashable key."""
    return frozenset((attributes or {}).items())


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    finished = exporter.get_finished_spans()
    names = [s.name for s in finished]
    assert len(names) == len(set(names)), names
    return {s.name: s for s in finished}


def metric(reader: InMemoryMetricReader, name: str) -> Metric | None:
    data = reader.get_metrics_data()
    if data is None:
        return None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == name:
                    return m
    return None


def histogram_points(reader: InMemoryMetricReader, name: str) -> list[HistogramDataPoint]:
    m = metric(reader, name)
    assert m is not None, f"no metric {name}"
    points = list(m.data.data_points)
    assert all(isinstance(p, HistogramDataPoint) for p in points)
    return points  # type: ignore[return-value]


def sum_points(reader: InMemoryMetricReader, name: str) -> list[NumberDataPoint]:
    m = metric(reader, name)
    assert m is not None, f"no metric {name}"
    points = list(m.data.data_points)
    assert all(isinstance(p, NumberDataPoint) for p in points)
    return points  # type: ignore[return-value]


# -- spans ---------------------------------------------------------------------------


def test_nested_stages_are_children_with_names_and_attributes(
    telemetry: OtelTelemetry, spans: InMemorySpanExporter
) -> None:
    with telemetry.request_span("POST /v1/query", **{"http.request.method": "POST"}):
        with telemetry.stage("authenticate", **{"gateway.system": "stats-office"}):
            pass
        with telemetry.stage("rewrite"), telemetry.stage("decide", **{"gateway.tables": 2}):
            pass

    got = by_name(spans)
    assert set(got) == {
        "POST /v1/query",
        "gateway.authenticate",
        "gateway.rewrite",
        "gateway.decide",
    }
    root = got["POST /v1/query"]
    assert root.parent is None
    assert root.kind is SpanKind.SERVER
    assert root.attributes == {"http.request.method": "POST"}
    assert root.resource.attributes["service.name"] == "gateway-test"

    auth, rewrite, decide = (
        got["gateway.authenticate"],
        got["gateway.rewrite"],
        got["gateway.decide"],
    )
    assert auth.kind is SpanKind.INTERNAL
    assert auth.attributes == {"gateway.system": "stats-office"}
    assert auth.parent is not None and auth.parent.span_id == root.context.span_id
    assert rewrite.parent is not None and rewrite.parent.span_id == root.context.span_id
    # A stage opened inside another is its child, not a sibling.
    assert decide.parent is not None and decide.parent.span_id == rewrite.context.span_id
    assert decide.attributes == {"gateway.tables": 2}
    assert {s.context.trace_id for s in got.values()} == {root.context.trace_id}


def test_db_call_is_a_client_span_with_db_conventions(
    telemetry: OtelTelemetry, spans: InMemorySpanExporter, reader: InMemoryMetricReader
) -> None:
    sql = "SELECT p.name FROM (SELECT name FROM people WHERE dept_id = 3) AS p LIMIT 1001"
    with (
        telemetry.request_span("POST /v1/query"),
        telemetry.db_call(
            system="postgresql",
            query_text=sql,
            namespace="stats",
            server_address="db.internal",
            server_port=5432,
        ),
    ):
        pass

    got = by_name(spans)
    db = got["SELECT stats"]
    assert db.kind is SpanKind.CLIENT
    assert db.attributes == {
        "db.system.name": "postgresql",
        "db.query.text": sql,
        "db.operation.name": "SELECT",
        "db.namespace": "stats",
        "server.address": "db.internal",
        "server.port": 5432,
    }
    assert db.parent is not None and db.parent.span_id == got["POST /v1/query"].context.span_id
    [point] = histogram_points(reader, "gateway.stage.duration")
    assert dict(point.attributes or {}) == {"gateway.stage": "execute"}


def test_db_call_without_namespace_is_named_by_operation(
    telemetry: OtelTelemetry, spans: InMemorySpanExporter
) -> None:
    with telemetry.db_call(system="duckdb", query_text="SELECT 1"):
        pass
    [span] = spans.get_finished_spans()
    assert span.name == "SELECT"
    assert span.attributes is not None and "db.namespace" not in span.attributes


def test_server_error_in_a_stage_marks_the_span_without_leaking_the_message(
    telemetry: OtelTelemetry, spans: InMemorySpanExporter, reader: InMemoryMetricReader
) -> None:
    with pytest.raises(RuntimeError), telemetry.stage("execute"):
        raise RuntimeError("value 'Alice Smith' violates constraint")

    [span] = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "RuntimeError"
    # No exception event: its message could echo protected values.
    assert span.events == ()
    assert "Alice" not in repr(span.to_json())
    # The duration is recorded for failed stages too.
    assert len(histogram_points(reader, "gateway.stage.duration")) == 1


def test_client_error_in_a_stage_is_typed_but_not_an_error_status(
    telemetry: OtelTelemetry, spans: InMemorySpanExporter
) -> None:
    with pytest.raises(AccessDeniedError), telemetry.stage("decide"):
        raise AccessDeniedError("no access to population.people for purpose stats")
    [span] = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes is not None and span.attributes["error.type"] == "access_denied"


def test_exception_in_request_span_propagates_and_ends_the_span(
    telemetry: OtelTelemetry, spans: InMemorySpanExporter
) -> None:
    with pytest.raises(ValueError), telemetry.request_span("POST /v1/query"):
        raise ValueError("x")
    [span] = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "ValueError"
    assert trace.get_current_span() is trace.INVALID_SPAN  # context detached


def test_unknown_stage_names_work(telemetry: OtelTelemetry, spans: InMemorySpanExporter) -> None:
    with telemetry.stage("describe"):
        pass
    with telemetry.stage("describe"):
        pass
    assert [s.name for s in spans.get_finished_spans()] == ["gateway.describe"] * 2


def test_request_span_joins_the_callers_trace(
    telemetry: OtelTelemetry, spans: InMemorySpanExporter
) -> None:
    caller_trace = "0af7651916cd43dd8448eb211c80319c"
    caller_span = "b7ad6b7169203331"
    headers = {"traceparent": f"00-{caller_trace}-{caller_span}-01"}
    with telemetry.request_span("POST /v1/query", headers):
        assert telemetry.current_trace_id() == caller_trace
    [span] = spans.get_finished_spans()
    assert format_trace_id(span.context.trace_id) == caller_trace
    assert span.parent is not None and format_span_id(span.parent.span_id) == caller_span
    assert span.parent.is_remote


def test_unsampled_caller_means_no_spans_but_its_trace_id(
    telemetry: OtelTelemetry, spans: InMemorySpanExporter, reader: InMemoryMetricReader
) -> None:
    caller_trace = "0af7651916cd43dd8448eb211c80319c"
    headers = {"traceparent": f"00-{caller_trace}-b7ad6b7169203331-00"}
    with telemetry.request_span("POST /v1/query", headers), telemetry.stage("parse"):
        assert telemetry.current_trace_id() == caller_trace
    assert spans.get_finished_spans() == ()
    assert len(histogram_points(reader, "gateway.stage.duration")) == 1


# -- metrics -------------------------------------------------------------------------


def test_stage_duration_histogram_has_one_point_per_stage(
    telemetry: OtelTelemetry, reader: InMemoryMetricReader
) -> None:
    for _ in range(3):
        with telemetry.request_span("POST /v1/query"):
            for name in ("parse", "resolve", "decide"):
                with telemetry.stage(name, **{"ignored.on.metrics": True}):
                    pass

    m = metric(reader, "gateway.stage.duration")
    assert m is not None and m.unit == "s"
    points = {
        dict(p.attributes or {})["gateway.stage"]: p for p in histogram_points(reader, m.name)
    }
    assert set(points) == {"parse", "resolve", "decide"}
    for p in points.values():
        # Span attributes stay off the metric: only the stage name is a dimension.
        assert dict(p.attributes or {}) == {
            "gateway.stage": dict(p.attributes or {})["gateway.stage"]
        }
        assert p.count == 3
        assert 0 < p.sum < 1
        # Second-scale buckets, fine enough for sub-millisecond stages.
        assert p.explicit_bounds[0] < 0.001


def test_record_request_counts_and_times_by_department_outcome_status(
    telemetry: OtelTelemetry, reader: InMemoryMetricReader
) -> None:
    telemetry.record_request("health", "ok", 200, 0.020)
    telemetry.record_request("health", "ok", 200, 0.040)
    telemetry.record_request("health", "denied", 403, 0.005)
    telemetry.record_request(None, "unauthenticated", 401, 0.001)

    m = metric(reader, "gateway.requests")
    assert m is not None and m.unit == "{request}"
    counts = {key(p.attributes): p.value for p in sum_points(reader, m.name)}
    ok = key(
        {
            "gateway.department": "health",
            "gateway.outcome": "ok",
            "http.response.status_code": 200,
        }
    )
    denied = key(
        {
            "gateway.department": "health",
            "gateway.outcome": "denied",
            "http.response.status_code": 403,
        }
    )
    anonymous = key({"gateway.outcome": "unauthenticated", "http.response.status_code": 401})
    assert counts == {ok: 2, denied: 1, anonymous: 1}

    d = metric(reader, "gateway.request.duration")
    assert d is not None and d.unit == "s"
    durations = {key(p.attributes): p for p in histogram_points(reader, d.name)}
    assert set(durations) == {ok, denied, anonymous}
    assert durations[ok].count == 2
    assert durations[ok].sum == pytest.approx(0.060)


def test_record_request_annotates_the_request_span(
    telemetry: OtelTelemetry, spans: InMemorySpanExporter
) -> None:
    with telemetry.request_span("POST /v1/query"):
        telemetry.record_request("health", "error", 503, 0.5)
    [span] = spans.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 503
    assert span.attributes["gateway.department"] == "health"
    assert span.status.status_code is StatusCode.ERROR


def test_ratio_zero_records_no_spans_but_metrics_still_count(
    spans: InMemorySpanExporter, reader: InMemoryMetricReader
) -> None:
    t = OtelTelemetry.from_settings(
        TelemetrySettings(sample_ratio=0.0), span_exporter=spans, metric_reader=reader
    )
    try:
        for _ in range(5):
            with t.request_span("POST /v1/query") as root:
                assert not root.is_recording()
                with t.stage("parse") as child:
                    assert not child.is_recording()
                    # Sampled out, yet every log line and audit record gets a real id.
                    assert t.current_trace_id() == format_trace_id(root.get_span_context().trace_id)
                t.record_request("health", "ok", 200, 0.01)
        t.force_flush()
        assert spans.get_finished_spans() == ()
        [stage] = histogram_points(reader, "gateway.stage.duration")
        assert stage.count == 5
        [count] = sum_points(reader, "gateway.requests")
        assert count.value == 5
    finally:
        t.shutdown()


# -- exporters "none" ----------------------------------------------------------------


def test_none_exporters_create_nothing_yet_keep_a_trace_id() -> None:
    t = OtelTelemetry.from_settings(TelemetrySettings(), id_generator=CountingIds())
    assert not t.tracing
    with t.request_span("POST /v1/query") as root:
        assert not root.is_recording()
        trace_id = t.current_trace_id()
        assert trace_id == format_trace_id(1)
        with t.stage("parse") as child, t.db_call(system="sqlite", query_text="SELECT 1"):
            assert not child.is_recording()
            assert t.current_trace_id() == trace_id
        t.record_request("health", "ok", 200, 0.01)
    t.force_flush()
    t.shutdown()
    t.shutdown()  # idempotent


def test_none_traces_with_metrics_still_times_stages(reader: InMemoryMetricReader) -> None:
    t = OtelTelemetry.from_settings(TelemetrySettings(), metric_reader=reader)
    with t.request_span("POST /v1/query"), t.stage("rewrite") as span:
        assert not span.is_recording()
    [point] = histogram_points(reader, "gateway.stage.duration")
    assert dict(point.attributes or {}) == {"gateway.stage": "rewrite"}
    t.shutdown()


def test_none_mode_adopts_the_callers_trace_id() -> None:
    t = OtelTelemetry.from_settings(TelemetrySettings())
    caller_trace = "0af7651916cd43dd8448eb211c80319c"
    headers = {"traceparent": f"00-{caller_trace}-b7ad6b7169203331-01"}
    with t.request_span("POST /v1/query", headers):
        assert t.current_trace_id() == caller_trace


# -- ids -----------------------------------------------------------------------------


def test_current_trace_id_inside_a_span_is_that_spans_trace_id(
    telemetry: OtelTelemetry,
) -> None:
    with telemetry.request_span("POST /v1/query") as root, telemetry.stage("audit") as span:
        trace_id = telemetry.current_trace_id()
        assert trace_id == format_trace_id(span.get_span_context().trace_id)
        assert trace_id == format_trace_id(root.get_span_context().trace_id)
        assert HEX32.match(trace_id)


def test_current_trace_id_outside_a_span_is_fresh_every_time(telemetry: OtelTelemetry) -> None:
    ids = {telemetry.current_trace_id() for _ in range(20)}
    assert len(ids) == 20
    assert all(HEX32.match(i) and i != "0" * 32 for i in ids)


# -- configuration -------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        TelemetrySettings(traces_exporter="jaeger"),
        TelemetrySettings(metrics_exporter="statsd"),
        TelemetrySettings(sample_ratio=1.5),
        TelemetrySettings(sample_ratio=-0.1),
    ],
)
def test_invalid_settings_are_configuration_errors(settings: TelemetrySettings) -> None:
    with pytest.raises(ConfigurationError):
        OtelTelemetry.from_settings(settings)


def test_no_global_provider_is_set(
    spans: InMemorySpanExporter, reader: InMemoryMetricReader
) -> None:
    before = (trace.get_tracer_provider(), metrics.get_meter_provider())
    t = OtelTelemetry.from_settings(TelemetrySettings(), span_exporter=spans, metric_reader=reader)
    with t.request_span("x"), t.stage("parse"):
        pass
    t.shutdown()
    assert (trace.get_tracer_provider(), metrics.get_meter_provider()) == before
    assert type(before[0]).__name__ == "ProxyTracerProvider"
    assert t.tracer_provider is not before[0]
    assert t.meter_provider is not before[1]


def test_console_exporters_write_spans_and_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    t = OtelTelemetry.from_settings(
        TelemetrySettings(traces_exporter="console", metrics_exporter="console")
    )
    with t.request_span("POST /v1/query"), t.stage("parse"):
        pass
    t.record_request("health", "ok", 200, 0.01)
    t.shutdown()
    out = capsys.readouterr().out
    assert '"name": "gateway.parse"' in out
    assert "gateway.requests" in out


class _OtlpSink(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP posts and remembers their paths and content types."""

    received: list[tuple[str, str, int]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append((self.path, self.headers.get("Content-Type", ""), len(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_otlp_exporters_post_to_the_signal_paths_and_flush_on_shutdown() -> None:
    received: list[tuple[str, str, int]] = []
    handler = type("Sink", (_OtlpSink,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/"
        t = OtelTelemetry.from_settings(
            TelemetrySettings(
                traces_exporter="otlp", metrics_exporter="otlp", otlp_endpoint=endpoint
            )
        )
        with t.request_span("POST /v1/query"), t.stage("parse"):
            pass
        t.record_request("health", "ok", 200, 0.01)
        # The batch processor and the periodic reader hold everything until shutdown.
        t.shutdown()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    paths = {path for path, _, _ in received}
    assert paths == {"/v1/traces", "/v1/metrics"}
    assert all(ctype == "application/x-protobuf" and size > 0 for _, ctype, size in received)
