"""The OpenTelemetry SDK implementation of :class:`~gateway.telemetry.Telemetry`.

:class:`OtelTelemetry` builds its own ``TracerProvider`` and ``MeterProvider`` from
:class:`~gateway.settings.TelemetrySettings` and hands them to nothing else: nothing here
calls ``set_tracer_provider`` or ``set_meter_provider``, so two apps (or two tests) in one
process never see each other's spans. What it records, and why so little, is in
:mod:`gateway.telemetry`.

The request span is hand-made rather than litestar's OpenTelemetry middleware (measured
~240 µs per request against ~60 µs, and it needs opentelemetry-instrumentation-asgi).
With ``traces_exporter = "none"`` no span is ever created: stages only time themselves,
and the request "span" is the placeholder of :mod:`gateway.telemetry.noop`.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from contextvars import Token
from time import perf_counter
from types import TracebackType
from typing import Final

from opentelemetry import context as otel_context
from opentelemetry.metrics import (
    CallbackOptions,
    Histogram,
    MeterProvider,
    NoOpMeterProvider,
)
from opentelemetry.metrics import Observation as OtelObservation
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter
from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.semconv.attributes.db_attributes import (
    DB_NAMESPACE,
    DB_OPERATION_NAME,
    DB_QUERY_TEXT,
    DB_SYSTEM_NAME,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
)
from opentelemetry.semconv.attributes.server_attributes import SERVER_ADDRESS, SERVER_PORT
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME, SERVICE_VERSION
from opentelemetry.semconv.metrics.http_metrics import HTTP_SERVER_REQUEST_DURATION
from opentelemetry.trace import (
    INVALID_SPAN,
    NoOpTracerProvider,
    Span,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
    TracerProvider,
    get_current_span,
    set_span_in_context,
)
from opentelemetry.util.types import AttributeValue

from gateway.errors import ClientError, GatewayError
from gateway.settings import TelemetrySettings
from gateway.telemetry import Observation, check_telemetry_settings
from gateway.telemetry.noop import (
    CurrentSpan,
    PlaceholderSpan,
    extract_parent,
    trace_id_or_fresh,
)

__all__ = ["STAGES", "OtelTelemetry", "PrometheusText"]

#: ``service.instance.id`` (semantic conventions): tells the pushes of two processes of
#: the same service apart, so that a collector does not merge their cumulative counters.
_SERVICE_INSTANCE_ID: Final = "service.instance.id"

#: The pipeline stages of docs/design.md, in order. Their span names and histogram
#: attributes are built once; other names work too (built on first use).
STAGES: Final = (
    "authenticate",
    "parse",
    "resolve",
    "decide",
    "rewrite",
    "execute",
    "audit",
    "respond",
)

_INSTRUMENTATION_NAME: Final = "gateway"

# Stage durations are mostly sub-millisecond (parse, decide) up to the statement timeout
# (execute), so the default buckets (0..10 000, made for milliseconds) would put every
# point in the first bucket.
_STAGE_BUCKETS_S: Final = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# The buckets the HTTP semantic conventions recommend for http.server.request.duration.
_REQUEST_BUCKETS_S: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)

Attributes = Mapping[str, AttributeValue]


def _error_type(exc: BaseException) -> str:
    """Low-cardinality ``error.type``: the gateway's stable error code, or the class name."""
    if isinstance(exc, GatewayError):
        return exc.code
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _mark_error(span: Span, exc: BaseException) -> None:
    """Flag a span that an exception left.

    Only ``error.type`` is recorded, never the exception's message or traceback: an
    unwrapped driver error can echo values read from a protected table, and spans are
    exported to places with less scrutiny than the audit log. The log line written for the
    same failure carries the same trace id and the full traceback. A :class:`ClientError`
    (a refusal the consumer caused) leaves the status unset, as the HTTP conventions do for
    4xx answers: it is an expected outcome, not a fault of the gateway.
    """
    span.set_attribute(ERROR_TYPE, _error_type(exc))
    if not isinstance(exc, ClientError):
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


class _Stage(AbstractContextManager[Span]):
    """One timed stage: an optional child span plus one histogram point.

    A hand-written context manager rather than ``tracer.start_as_current_span`` because
    that one stacks two generator-based context managers per call; this path runs several
    times per request.
    """

    __slots__ = (
        "_attributes",
        "_histogram",
        "_kind",
        "_name",
        "_point",
        "_span",
        "_start",
        "_token",
        "_tracer",
    )

    def __init__(
        self,
        tracer: Tracer | None,
        histogram: Histogram,
        name: str,
        point: Attributes,
        kind: SpanKind,
        attributes: Attributes,
    ) -> None:
        self._tracer = tracer
        self._histogram = histogram
        self._name = name
        self._point = point
        self._kind = kind
        self._attributes = attributes
        self._span: Span = INVALID_SPAN
        self._token: Token[otel_context.Context] | None = None
        self._start = 0.0

    def __enter__(self) -> Span:
        tracer = self._tracer
        if tracer is not None:
            parent = get_current_span().get_span_context()
            # Under a parent that was sampled out, ParentBased would only hand back a
            # non-recording child: skip its ids, sampler call and context attach (several
            # µs per stage) altogether.
            if not parent.is_valid or parent.trace_flags.sampled:
                span = tracer.start_span(self._name, kind=self._kind, attributes=self._attributes)
                self._span = span
                self._token = otel_context.attach(set_span_in_context(span))
        self._start = perf_counter()
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._histogram.record(perf_counter() - self._start, self._point)
        token = self._token
        if token is not None:
            span = self._span
            if exc is not None:
                _mark_error(span, exc)
            span.end()
            otel_context.detach(token)


class _RequestSpan(CurrentSpan):
    """The SERVER span of one request (tracing on; without a tracer the request gets a
    :class:`~gateway.telemetry.noop.PlaceholderSpan`)."""

    __slots__ = ("_attributes", "_name", "_tracer")

    def __init__(
        self,
        tracer: Tracer,
        name: str,
        parent: otel_context.Context,
        attributes: Attributes,
    ) -> None:
        super().__init__(parent)
        self._tracer = tracer
        self._name = name
        self._attributes = attributes

    def _start(self) -> Span:
        return self._tracer.start_span(
            self._name, context=self._parent, kind=SpanKind.SERVER, attributes=self._attributes
        )

    def _finish(self, span: Span, exc: BaseException | None) -> None:
        if exc is not None:
            _mark_error(span, exc)
        span.end()


class PrometheusText:
    """A Prometheus pull reader on a registry of its own (never prometheus_client's global
    ``REGISTRY``: two apps in one process, or two tests, must not see each other's
    metrics). :meth:`render` collects and formats; it runs on the scraping request."""

    def __init__(self) -> None:
        # Imported here: only a gateway that serves /metrics pays for prometheus_client.
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry

        self._registry = CollectorRegistry(auto_describe=False)
        # No otel_scope_* labels on every series: there is one instrumentation scope.
        self.reader = PrometheusMetricReader(registry=self._registry, scope_info_enabled=False)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self._registry)


class OtelTelemetry:
    """The app's tracer and meter providers, and the few helpers that record with them.

    Build it with :meth:`from_settings`; call :meth:`shutdown` when the app stops so that
    buffered spans and the last metrics are exported.
    """

    def __init__(
        self,
        *,
        tracer_provider: SdkTracerProvider | None,
        meter_provider: MeterProvider,
        id_generator: IdGenerator,
        sdk_meter_provider: SdkMeterProvider | None = None,
        prometheus: PrometheusText | None = None,
    ) -> None:
        """Wrap already-built providers.

        ``tracer_provider`` None means tracing is off: no span is created at all.
        ``sdk_meter_provider`` is the same object as ``meter_provider`` when metrics are
        on (it is what :meth:`shutdown` flushes), None when ``meter_provider`` is a no-op.
        ``prometheus`` is the pull reader :meth:`scrape` renders, when there is one.
        """
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._sdk_meter_provider = sdk_meter_provider
        self._prometheus = prometheus
        self._id_generator = id_generator
        self._closed = False
        version = _version()
        self._tracer: Tracer | None = (
            tracer_provider.get_tracer(_INSTRUMENTATION_NAME, version)
            if tracer_provider is not None
            else None
        )
        meter = self._meter = meter_provider.get_meter(_INSTRUMENTATION_NAME, version)
        self._stage_duration = meter.create_histogram(
            "gateway.stage.duration",
            unit="s",
            description="Duration of one pipeline stage of a request.",
            explicit_bucket_boundaries_advisory=_STAGE_BUCKETS_S,
        )
        self._requests = meter.create_counter(
            "gateway.requests",
            unit="{request}",
            description="Requests answered, by department, outcome and HTTP status.",
        )
        self._request_duration = meter.create_histogram(
            "gateway.request.duration",
            unit="s",
            description="Duration of a request, from authentication to the response.",
            explicit_bucket_boundaries_advisory=_REQUEST_BUCKETS_S,
        )
        # HTTP semantic conventions: the one server metric, whose count, error share and
        # buckets are the RED metrics of every route.
        self._http_duration = meter.create_histogram(
            HTTP_SERVER_REQUEST_DURATION,
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=_REQUEST_BUCKETS_S,
        )
        # Span name and histogram attributes per stage, built once: an instance cache (not
        # module state) that only ever grows by the stage names the code uses.
        self._stage_keys: dict[str, tuple[str, Attributes]] = {
            name: (f"gateway.{name}", {"gateway.stage": name}) for name in STAGES
        }
        self._noop_stage: AbstractContextManager[Span] | None = (
            nullcontext(INVALID_SPAN)
            if self._tracer is None and sdk_meter_provider is None
            else None
        )

    @classmethod
    def from_settings(
        cls,
        settings: TelemetrySettings,
        *,
        span_exporter: SpanExporter | None = None,
        metric_reader: MetricReader | None = None,
        id_generator: IdGenerator | None = None,
    ) -> OtelTelemetry:
        """Build the providers the settings ask for.

        ``span_exporter`` and ``metric_reader`` are added on top of what the settings
        configure (tests pass an ``InMemorySpanExporter`` / ``InMemoryMetricReader``); an
        extra span exporter is driven by a ``SimpleSpanProcessor`` so its spans are there
        as soon as they end. ``id_generator`` makes trace ids reproducible in tests.

        Raises ConfigurationError for an unknown exporter or a ratio outside 0..1.
        """
        check_telemetry_settings(settings)
        ids = id_generator or RandomIdGenerator()
        # Resource.create adds the SDK's own attributes and OTEL_RESOURCE_ATTRIBUTES; ours
        # are merged last and win.
        resource = Resource.create(
            {
                SERVICE_NAME: settings.service_name,
                SERVICE_VERSION: _version(),
                _SERVICE_INSTANCE_ID: str(uuid.uuid4()),
            }
        )

        readers: list[MetricReader] = []
        prometheus: PrometheusText | None = None
        if settings.metrics_exporter == "prometheus":
            prometheus = PrometheusText()
            readers.append(prometheus.reader)
        elif settings.metrics_exporter == "console":
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

            # sys.stdout as it is now: the exporters' default was bound when they were
            # first imported, and test runners and daemons swap the stream.
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(out=sys.stdout)))
        elif settings.metrics_exporter == "otlp":
            # Imported here: it pulls in protobuf and requests, which a gateway exporting
            # nothing should not pay for at start-up.
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )

            readers.append(
                PeriodicExportingMetricReader(
                    OTLPMetricExporter(endpoint=_signal_url(settings.otlp_endpoint, "metrics"))
                )
            )
        if metric_reader is not None:
            readers.append(metric_reader)
        sdk_meter_provider: SdkMeterProvider | None = None
        meter_provider: MeterProvider
        if readers:
            # shutdown_on_exit=False: the app calls shutdown(); an atexit hook per provider
            # would also pile up across the many providers a test run builds.
            # Exemplars off: the default trace-based filter adds ~1.5 µs to every record
            # (~7 % of a traced request, measured), for a link few backends display.
            sdk_meter_provider = SdkMeterProvider(
                metric_readers=readers,
                resource=resource,
                shutdown_on_exit=False,
                exemplar_filter=AlwaysOffExemplarFilter(),
            )
            meter_provider = sdk_meter_provider
        else:
            # No reader: the API's no-op instruments make every record() a bare call.
            meter_provider = NoOpMeterProvider()

        processors: list[SpanProcessor] = []
        if settings.traces_exporter == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            processors.append(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stdout)))
        elif settings.traces_exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            # Batch, never Simple, for a network exporter: the export happens on the
            # processor's thread, not on the request path.
            processors.append(
                BatchSpanProcessor(
                    OTLPSpanExporter(endpoint=_signal_url(settings.otlp_endpoint, "traces"))
                )
            )
        if span_exporter is not None:
            processors.append(SimpleSpanProcessor(span_exporter))
        tracer_provider: SdkTracerProvider | None = None
        if processors:
            tracer_provider = SdkTracerProvider(
                sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
                resource=resource,
                shutdown_on_exit=False,
                id_generator=ids,
                # The SDK's own (opt-in) metrics go to our provider, not the global one.
                meter_provider=meter_provider,
            )
            for processor in processors:
                tracer_provider.add_span_processor(processor)
        return cls(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            id_generator=ids,
            sdk_meter_provider=sdk_meter_provider,
            prometheus=prometheus,
        )

    # -- providers ---------------------------------------------------------------------

    @property
    def tracer_provider(self) -> TracerProvider:
        """The app's tracer provider (a no-op one when tracing is off)."""
        if self._tracer_provider is None:
            return NoOpTracerProvider()
        return self._tracer_provider

    @property
    def meter_provider(self) -> MeterProvider:
        """The app's meter provider (a no-op one when metrics are off)."""
        return self._meter_provider

    @property
    def tracing(self) -> bool:
        """Whether spans are created at all (some exporter is configured)."""
        return self._tracer is not None

    # -- spans -------------------------------------------------------------------------

    def stage(self, name: str, /, **attributes: AttributeValue) -> AbstractContextManager[Span]:
        """Time one pipeline stage, as a child span ``gateway.<name>`` of the current span.

        ``attributes`` go on the span only (dotted names via ``**{"gateway.x": v}``); the
        ``gateway.stage.duration`` histogram gets one point with ``gateway.stage=<name>``
        whether or not the span is sampled. An exception leaving the block sets
        ``error.type`` on the span (see :func:`_mark_error`) and propagates. Yields the
        span, or a non-recording one when tracing is off or the trace was sampled out.
        """
        if self._noop_stage is not None:
            return self._noop_stage
        keys = self._stage_keys.get(name)
        if keys is None:
            keys = self._stage_keys[name] = (f"gateway.{name}", {"gateway.stage": name})
        return _Stage(
            self._tracer, self._stage_duration, keys[0], keys[1], SpanKind.INTERNAL, attributes
        )

    def db_call(
        self,
        *,
        system: str,
        query_text: str,
        namespace: str | None = None,
        operation: str = "SELECT",
        server_address: str | None = None,
        server_port: int | None = None,
    ) -> AbstractContextManager[Span]:
        """The ``execute`` stage: a CLIENT span for the backend call, per the (stable)
        database semantic conventions.

        ``system`` is ``db.system.name`` (``postgresql``, ``mysql``, ``mariadb``,
        ``sqlite``, ``duckdb``), ``query_text`` the rewritten SQL actually sent
        (``db.query.text``), ``namespace`` the database name (``db.namespace``). The span
        is named ``"{operation} {namespace}"`` as the conventions ask (``{db.operation.name}
        {target}``); the histogram point is ``gateway.stage=execute``. Use it instead of,
        not inside, ``stage("execute")``: one span per call, not two.

        The rewritten SQL holds the consumer's literals and the policy's filter values,
        never values read from a table.
        """
        if self._noop_stage is not None:
            return self._noop_stage
        attributes: dict[str, AttributeValue] = {
            DB_SYSTEM_NAME: system,
            DB_QUERY_TEXT: query_text,
            DB_OPERATION_NAME: operation,
        }
        if namespace:
            attributes[DB_NAMESPACE] = namespace
        if server_address:
            attributes[SERVER_ADDRESS] = server_address
            if server_port is not None:
                attributes[SERVER_PORT] = server_port
        name = f"{operation} {namespace}" if namespace else operation
        return _Stage(
            self._tracer,
            self._stage_duration,
            name,
            self._stage_keys["execute"][1],
            SpanKind.CLIENT,
            attributes,
        )

    def request_span(
        self,
        name: str,
        headers: Mapping[str, str] | None = None,
        /,
        **attributes: AttributeValue,
    ) -> AbstractContextManager[Span]:
        """The SERVER span of a request (name ``"{method} {route}"``, e.g.
        ``"POST /v1/query"``), current while the block runs.

        ``headers`` (lower-case names; positional so that no attribute name can clash
        with it) may carry the caller's W3C ``traceparent``: the span
        then joins the caller's trace, and the parent-based sampler follows its sampled
        flag. Without it the span is a root. Only an instance-owned propagator is used,
        never the global one.
        """
        parent = extract_parent(headers)
        if self._tracer is None:
            return PlaceholderSpan(self._id_generator, parent)
        return _RequestSpan(self._tracer, name, parent, attributes)

    def current_trace_id(self) -> str:
        """The current trace id as 32 lower-case hex digits.

        When no span context is current (outside any request) a fresh random id, so that
        every audit record has one. A sampled-out span still has a real trace id, the one
        its log lines carry, and that is what is returned then.
        """
        return trace_id_or_fresh(self._id_generator)

    # -- metrics -----------------------------------------------------------------------

    def record_request(
        self, department: str | None, outcome: str, status: int, duration_s: float
    ) -> None:
        """Count one answered request and record its duration.

        ``department`` is None before authentication succeeded; the attribute is then
        left out rather than set to a placeholder a real department could be named.
        Called while the request span is current (not inside a stage), it also puts the
        same attributes on that span and marks it as an error for a 5xx status, as the
        HTTP conventions ask of server spans.
        """
        attributes: dict[str, AttributeValue] = {
            "gateway.outcome": outcome,
            HTTP_RESPONSE_STATUS_CODE: status,
        }
        if department is not None:
            attributes["gateway.department"] = department
        self._requests.add(1, attributes)
        self._request_duration.record(duration_s, attributes)
        span = get_current_span()
        if span.is_recording():
            span.set_attributes(attributes)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))

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
        """One ``http.server.request.duration`` point (HTTP semantic conventions:
        ``http.request.method``, ``http.route``, ``http.response.status_code``) with the
        caller's ``gateway.department``, ``gateway.system`` and ``gateway.dataset`` when
        known. Unknown labels are left out rather than set to a placeholder. Names the
        current (server) span ``"{method} {route}"``.

        Label values are bounded by configuration (routes, catalog, registered systems),
        never taken from the request: an unmatched path has no ``http.route``, and
        ``method`` is what the server accepted, which is one of a few verbs."""
        attributes: dict[str, AttributeValue] = {
            HTTP_REQUEST_METHOD: method,
            HTTP_RESPONSE_STATUS_CODE: status,
        }
        if route:
            attributes[HTTP_ROUTE] = route
        if department is not None:
            attributes["gateway.department"] = department
        if system is not None:
            attributes["gateway.system"] = system
        if dataset:
            attributes["gateway.dataset"] = dataset
        self._http_duration.record(duration_s, attributes)
        span = get_current_span()
        if span.is_recording():
            if route:
                span.update_name(f"{method} {route}")
                span.set_attribute(HTTP_ROUTE, route)
            span.set_attribute(HTTP_RESPONSE_STATUS_CODE, status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))

    def observe(self, observations: Iterable[Observation]) -> None:
        """Register an observable instrument per observation; the SDK calls ``read`` when
        it collects (nothing happens per request)."""
        for item in observations:
            callbacks = [_callback(item)]
            if item.kind == "counter":
                self._meter.create_observable_counter(
                    item.name, callbacks, unit=item.unit, description=item.description
                )
            elif item.kind == "updown":
                self._meter.create_observable_up_down_counter(
                    item.name, callbacks, unit=item.unit, description=item.description
                )
            else:
                self._meter.create_observable_gauge(
                    item.name, callbacks, unit=item.unit, description=item.description
                )

    def scrape(self) -> bytes | None:
        """The Prometheus text of every metric, when the exporter is ``prometheus``."""
        return self._prometheus.render() if self._prometheus is not None else None

    # -- lifecycle ---------------------------------------------------------------------

    def force_flush(self, timeout_ms: int = 10_000) -> None:
        """Export what is buffered now (spans in the batch queue, metrics so far)."""
        if self._tracer_provider is not None:
            self._tracer_provider.force_flush(timeout_ms)
        if self._sdk_meter_provider is not None:
            self._sdk_meter_provider.force_flush(timeout_ms)

    def shutdown(self) -> None:
        """Flush and stop the exporters. Idempotent; spans started afterwards are dropped."""
        if self._closed:
            return
        self._closed = True
        if self._tracer_provider is not None:
            self._tracer_provider.shutdown()
        if self._sdk_meter_provider is not None:
            self._sdk_meter_provider.shutdown()


def _callback(item: Observation) -> Callable[[CallbackOptions], Iterable[OtelObservation]]:
    def read(_options: CallbackOptions) -> Iterable[OtelObservation]:
        return [OtelObservation(value, attributes) for value, attributes in item.read()]

    return read


def _signal_url(endpoint: str, signal: str) -> str:
    """OTLP/HTTP URL of one signal, given a base endpoint as in OTEL_EXPORTER_OTLP_ENDPOINT.

    The exporters take a full URL when passed one explicitly, so the ``/v1/<signal>`` path
    is appended here; a base that already ends with it is used as is.
    """
    path = f"/v1/{signal}"
    base = endpoint.rstrip("/")
    return base if base.endswith(path) else base + path


def _version() -> str:
    """The installed gateway's version, for service.version and the instrumentation scope."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gateway")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0"
