"""Telemetry that exports nothing, on the OpenTelemetry API alone (no SDK).

No span is created and no metric recorded, but every request still gets a trace id: the
request "span" is a non-recording placeholder that carries the caller's trace id (from
``traceparent``) or a fresh one, made current while the request runs, so that log lines
and the audit record of one request share an id. :class:`NoopTelemetry` is what the
default configuration (both exporters ``none``) builds, and what tests and benchmarks
use; :class:`~gateway.telemetry.otel.OtelTelemetry` reuses the placeholder when it
exports metrics but no traces.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Final, Protocol

from opentelemetry import context as otel_context
from opentelemetry.trace import (
    INVALID_SPAN,
    INVALID_SPAN_ID,
    INVALID_TRACE_ID,
    NonRecordingSpan,
    Span,
    SpanContext,
    TraceFlags,
    format_trace_id,
    get_current_span,
    set_span_in_context,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

if TYPE_CHECKING:
    from gateway.telemetry import Observation

__all__ = [
    "CurrentSpan",
    "IdSource",
    "NoopTelemetry",
    "PlaceholderSpan",
    "RandomIds",
    "extract_parent",
    "trace_id_or_fresh",
]

_PROPAGATOR: Final = TraceContextTextMapPropagator()  # stateless; never the global one


class IdSource(Protocol):
    """Where trace and span ids come from (the SDK's ``IdGenerator`` is one)."""

    def generate_trace_id(self) -> int: ...

    def generate_span_id(self) -> int: ...


class RandomIds:
    """Random, never-invalid ids (W3C Trace Context: all-zero ids are invalid)."""

    def generate_trace_id(self) -> int:
        while (value := secrets.randbits(128)) == INVALID_TRACE_ID:
            pass
        return value

    def generate_span_id(self) -> int:
        while (value := secrets.randbits(64)) == INVALID_SPAN_ID:
            pass
        return value


def extract_parent(headers: Mapping[str, str] | None) -> otel_context.Context:
    """The caller's context from a W3C ``traceparent`` in ``headers``, or an empty one."""
    return _PROPAGATOR.extract(headers) if headers is not None else otel_context.Context()


def trace_id_or_fresh(ids: IdSource) -> str:
    """The current span's trace id, or a fresh one when no span context is current."""
    ctx = get_current_span().get_span_context()
    if ctx.is_valid:
        return format_trace_id(ctx.trace_id)
    return format_trace_id(ids.generate_trace_id())


class CurrentSpan(AbstractContextManager[Span]):
    """A request's span, made the current span while the block runs. Subclasses say how
    the span starts (:meth:`_start`) and ends (:meth:`_finish`)."""

    __slots__ = ("_parent", "_span", "_token")

    def __init__(self, parent: otel_context.Context) -> None:
        self._parent = parent
        self._span: Span = INVALID_SPAN
        self._token: Token[otel_context.Context] | None = None

    def _start(self) -> Span:
        raise NotImplementedError

    def _finish(self, span: Span, exc: BaseException | None) -> None:
        """Called on exit, before the span stops being current."""

    def __enter__(self) -> Span:
        span = self._span = self._start()
        # On the extracted context, not the current one: a request's span is a root or
        # the caller's child, never the child of whatever happened to be current.
        self._token = otel_context.attach(set_span_in_context(span, self._parent))
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish(self._span, exc)
        if self._token is not None:
            otel_context.detach(self._token)
            self._token = None


class PlaceholderSpan(CurrentSpan):
    """A non-recording request span: the caller's trace id from ``parent`` or a fresh
    one, a fresh span id. Costs one context attach."""

    __slots__ = ("_ids",)

    def __init__(self, ids: IdSource, parent: otel_context.Context) -> None:
        super().__init__(parent)
        self._ids = ids

    def _start(self) -> Span:
        remote = get_current_span(self._parent).get_span_context()
        trace_id = remote.trace_id if remote.is_valid else self._ids.generate_trace_id()
        return NonRecordingSpan(
            SpanContext(
                trace_id,
                self._ids.generate_span_id(),
                is_remote=False,
                trace_flags=TraceFlags(TraceFlags.DEFAULT),
            )
        )


class NoopTelemetry:
    """:class:`~gateway.telemetry.Telemetry` that records nothing but trace ids.
    ``ids`` makes them reproducible in tests. Thread-safe (no state)."""

    def __init__(self, *, ids: IdSource | None = None) -> None:
        self._ids: IdSource = ids or RandomIds()
        self._stage: AbstractContextManager[Span] = nullcontext(INVALID_SPAN)

    def stage(self, name: str, /, **attributes: AttributeValue) -> AbstractContextManager[Span]:
        return self._stage

    def db_call(self, **_ignored: object) -> AbstractContextManager[Span]:
        # Takes the Protocol's keyword arguments (system, query_text, ...) and records none.
        return self._stage

    def request_span(
        self,
        name: str,
        headers: Mapping[str, str] | None = None,
        /,
        **attributes: AttributeValue,
    ) -> AbstractContextManager[Span]:
        return PlaceholderSpan(self._ids, extract_parent(headers))

    def current_trace_id(self) -> str:
        return trace_id_or_fresh(self._ids)

    def record_request(
        self, department: str | None, outcome: str, status: int, duration_s: float
    ) -> None:
        return None

    def record_http(
        self,
        method: str,
        route: str | None,
        status: int,
        duration_s: float,
        *,
        department: str | None = None,
        system: str | None = None,
        dataset: str | None = None,
    ) -> None:
        return None

    def observe(self, observations: Iterable[Observation]) -> None:
        return None

    def scrape(self) -> bytes | None:
        return None

    def force_flush(self, timeout_ms: int = 10_000) -> None:
        return None

    def shutdown(self) -> None:
        return None
