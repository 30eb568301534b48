"""Traces and metrics of the gateway: the :class:`Telemetry` seam and how to build one.

What a request produces, and why so little (tech probe §6: an SDK span costs ~26–40 µs,
about 15 % of a request's CPU for six of them):

* one SERVER span per request (:meth:`Telemetry.request_span`);
* one INTERNAL span per pipeline stage that is worth a span (:meth:`Telemetry.stage`,
  named ``gateway.<stage>``) and one CLIENT span for the backend call following the
  database semantic conventions (:meth:`Telemetry.db_call`);
* for every stage, whether traced or not, a ``gateway.stage.duration`` histogram point;
  for every audited request a ``gateway.requests`` count and a ``gateway.request.duration``
  point (:meth:`Telemetry.record_request`);
* for every HTTP request, whatever the route, one ``http.server.request.duration`` point
  labelled with method, route, status, department, system and dataset — the RED metrics
  (:meth:`Telemetry.record_http`);
* values read only when metrics are collected (a Prometheus scrape or a periodic export),
  never on the request path: audit batches, plan-cache lookups, backend pools
  (:meth:`Telemetry.observe` with :class:`Observation` s).

A request therefore costs a handful of instrument calls with small attribute dicts; the
SDK aggregates them in place (no per-request objects survive the call).

Whatever the configuration, every request has a trace id (the caller's ``traceparent``
or a fresh one), so that its log lines and its audit record share an id.

Implementations: :class:`~gateway.telemetry.otel.OtelTelemetry` (the OpenTelemetry SDK,
with its own providers, never the global ones) and
:class:`~gateway.telemetry.noop.NoopTelemetry` (nothing exported: the default
configuration, tests and benchmarks). :func:`build_telemetry` picks one from the settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, Protocol

from gateway.errors import ConfigurationError
from gateway.settings import TelemetrySettings
from gateway.telemetry.noop import NoopTelemetry

if TYPE_CHECKING:
    from opentelemetry.trace import Span
    from opentelemetry.util.types import AttributeValue

__all__ = [
    "METRICS_EXPORTERS",
    "TRACES_EXPORTERS",
    "NoopTelemetry",
    "Observation",
    "Reading",
    "Telemetry",
    "build_telemetry",
    "check_telemetry_settings",
]

TRACES_EXPORTERS: Final = frozenset({"none", "console", "otlp"})
#: ``prometheus`` serves the metrics at ``GET /metrics`` (pull) instead of pushing them.
METRICS_EXPORTERS: Final = frozenset({"none", "console", "otlp", "prometheus"})

#: One value of an observed instrument and its attributes.
Reading = tuple[float, Mapping[str, "AttributeValue"]]


@dataclass(frozen=True, slots=True)
class Observation:
    """An instrument whose values are read when metrics are collected, not recorded by
    requests: ``read`` is called on the collecting thread (a scrape, a periodic export)
    and returns the current value(s). It must be cheap and must not raise.

    ``kind``: ``counter`` (monotonic total), ``gauge`` (a level now), ``updown`` (a count
    that goes up and down, e.g. connections).
    """

    name: str
    kind: Literal["counter", "gauge", "updown"]
    unit: str
    description: str
    read: Callable[[], Iterable[Reading]]


class Telemetry(Protocol):
    """What the gateway records about its requests. Implementations never raise from
    these methods (an exception inside a span's block propagates unchanged)."""

    def stage(self, name: str, /, **attributes: AttributeValue) -> AbstractContextManager[Span]:
        """Time one pipeline stage, as a child span ``gateway.<name>`` of the current
        span, and a ``gateway.stage.duration`` point with ``gateway.stage=<name>``.
        ``attributes`` go on the span only. Yields the span (non-recording when not
        traced)."""
        ...

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
        """The ``execute`` stage: a CLIENT span for the backend call (database semantic
        conventions: ``db.system.name``, ``db.query.text`` …). Used instead of, not
        inside, ``stage("execute")``."""
        ...

    def request_span(
        self,
        name: str,
        headers: Mapping[str, str] | None = None,
        /,
        **attributes: AttributeValue,
    ) -> AbstractContextManager[Span]:
        """The SERVER span of a request (``"POST /v1/query"``), current while the block
        runs; joins the caller's trace when ``headers`` (lower-case names) carry a W3C
        ``traceparent``."""
        ...

    def current_trace_id(self) -> str:
        """The current trace id, 32 lower-case hex digits; a fresh random one outside
        any request, so that every audit record has one."""
        ...

    def record_request(
        self, department: str | None, outcome: str, status: int, duration_s: float
    ) -> None:
        """Count one answered request and record its duration (``department`` None
        before authentication succeeded)."""
        ...

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
        """One answered HTTP request (any route): an ``http.server.request.duration``
        point, the RED metrics. ``route`` is the route template (``/v1/audit/records/
        {audit_id:str}``), None for a path no route matched; the caller labels are None
        when unknown (not authenticated, no dataset read). ``dataset`` names the datasets
        a query read, comma-separated. Called while the request's span is current: it also
        names the span ``"{method} {route}"`` and sets ``http.route`` and
        ``http.response.status_code`` on it."""
        ...

    def observe(self, observations: Iterable[Observation]) -> None:
        """Register instruments read at collection time (see :class:`Observation`).
        Call once, at start-up, after the services they read exist."""
        ...

    def scrape(self) -> bytes | None:
        """The metrics now, in the Prometheus text exposition format (what ``GET
        /metrics`` serves), or None when metrics are not exported that way."""
        ...

    def force_flush(self, timeout_ms: int = 10_000) -> None:
        """Export what is buffered now."""
        ...

    def shutdown(self) -> None:
        """Flush and stop exporting. Idempotent."""
        ...


def check_telemetry_settings(settings: TelemetrySettings) -> None:
    """Raise ConfigurationError for an unknown exporter or a ratio outside 0..1."""
    for what, value, allowed in (
        ("traces_exporter", settings.traces_exporter, TRACES_EXPORTERS),
        ("metrics_exporter", settings.metrics_exporter, METRICS_EXPORTERS),
    ):
        if value not in allowed:
            raise ConfigurationError(
                f"telemetry {what} must be one of {', '.join(sorted(allowed))}, not {value!r}"
            )
    if not 0.0 <= settings.sample_ratio <= 1.0:
        raise ConfigurationError(
            f"telemetry sample_ratio must be between 0 and 1, not {settings.sample_ratio}"
        )


def build_telemetry(settings: TelemetrySettings) -> Telemetry:
    """The telemetry the settings ask for: :class:`NoopTelemetry` when neither traces nor
    metrics are exported (then the OpenTelemetry SDK is not even imported), else
    :meth:`OtelTelemetry.from_settings <gateway.telemetry.otel.OtelTelemetry.from_settings>`.
    Raises ConfigurationError for invalid settings."""
    check_telemetry_settings(settings)
    if settings.traces_exporter == "none" and settings.metrics_exporter == "none":
        return NoopTelemetry()
    from gateway.telemetry.otel import OtelTelemetry

    return OtelTelemetry.from_settings(settings)
