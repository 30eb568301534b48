"""NoopTelemetry: nothing recorded, yet every request has a trace id (the caller's or a
fresh one) that its log lines and audit record share."""

from __future__ import annotations

import re
import threading

import pytest
from opentelemetry import trace
from opentelemetry.trace import format_span_id, format_trace_id, get_current_span

from gateway.errors import AccessDeniedError
from gateway.telemetry.noop import NoopTelemetry, RandomIds

HEX32 = re.compile(r"^[0-9a-f]{32}$")
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


class CountingIds:
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


def test_request_span_is_a_current_non_recording_span_with_a_fresh_trace_id() -> None:
    t = NoopTelemetry(ids=CountingIds())
    with t.request_span("POST /v1/query", None, **{"http.method": "POST"}) as root:
        assert not root.is_recording()
        assert get_current_span() is root
        assert t.current_trace_id() == format_trace_id(1)
        assert format_span_id(root.get_span_context().span_id) == format_span_id(1001)
        with t.stage("parse") as stage, t.db_call(system="sqlite", query_text="SELECT 1") as db:
            assert not stage.is_recording() and not db.is_recording()
            assert t.current_trace_id() == format_trace_id(1)  # stages add no span
        t.record_request("rsj", "ok", 200, 0.01)
    assert get_current_span() is trace.INVALID_SPAN
    with t.request_span("POST /v1/query"):
        assert t.current_trace_id() == format_trace_id(2)


def test_request_span_adopts_the_callers_trace_id() -> None:
    t = NoopTelemetry()
    headers = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
    with t.request_span("POST /v1/query", headers) as root:
        assert t.current_trace_id() == CALLER_TRACE
        # A span of its own under the caller's trace, not the caller's span.
        assert format_span_id(root.get_span_context().span_id) != CALLER_SPAN


@pytest.mark.parametrize(
    "traceparent",
    [f"00-{'0' * 32}-{CALLER_SPAN}-01", "garbage", f"00-{CALLER_TRACE}-{'0' * 16}-01"],
)
def test_an_invalid_traceparent_gets_a_fresh_trace_id(traceparent: str) -> None:
    t = NoopTelemetry(ids=CountingIds())
    with t.request_span("POST /v1/query", {"traceparent": traceparent}):
        assert t.current_trace_id() == format_trace_id(1)


def test_the_request_span_is_a_root_whatever_was_current() -> None:
    t = NoopTelemetry(ids=CountingIds())
    with t.request_span("outer"), t.request_span("inner"):
        assert t.current_trace_id() == format_trace_id(2)


def test_an_exception_propagates_and_the_context_is_restored() -> None:
    t = NoopTelemetry()
    with pytest.raises(AccessDeniedError), t.request_span("POST /v1/query"), t.stage("decide"):
        raise AccessDeniedError("no")
    assert get_current_span() is trace.INVALID_SPAN


def test_trace_ids_outside_a_request_are_fresh_and_valid() -> None:
    t = NoopTelemetry()
    ids = {t.current_trace_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(HEX32.match(i) and i != "0" * 32 for i in ids)


def test_random_ids_are_never_the_invalid_zero() -> None:
    ids = RandomIds()
    traces = {ids.generate_trace_id() for _ in range(200)}
    spans = {ids.generate_span_id() for _ in range(200)}
    assert 0 not in traces and 0 not in spans
    assert len(traces) == 200 and len(spans) == 200
    assert all(0 < s < 2**64 for s in spans) and all(0 < t < 2**128 for t in traces)


def test_request_spans_of_threads_do_not_mix() -> None:
    t = NoopTelemetry()
    seen: dict[int, tuple[str, str]] = {}
    barrier = threading.Barrier(4)

    def request(n: int) -> None:
        with t.request_span("POST /v1/query"):
            first = t.current_trace_id()
            barrier.wait()
            seen[n] = (first, t.current_trace_id())

    threads = [threading.Thread(target=request, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=10)
    assert all(a == b for a, b in seen.values())
    assert len({a for a, _ in seen.values()}) == 4


def test_flush_and_shutdown_are_harmless_and_idempotent() -> None:
    t = NoopTelemetry()
    t.force_flush()
    t.shutdown()
    t.shutdown()
    with t.request_span("after shutdown"):
        assert HEX32.match(t.current_trace_id())
