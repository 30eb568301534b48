"""Traces and metrics of the gateway: the :class:`Telemetry` seam and how to build one.

What a request produces, and why so little (tech probe §6: an SDK span costs ~26–40 µs,
about 15 % of a request's CPU for six of them):

* one SERVER span per request (:meth:`Telemetry.request_span`);
* one INTERNAL span per pipeline stage that is worth a span (:meth:`Telemetry.stage`,
  named ``gateway.<stage>``) and one CLIENT span for the backend call following the
  database semantic conventions (:meth:`Telemetry.db_call`);
* for every stage, whether traced or not, a ``gateway.stage.duration`` histogram point;
  for every request a ``gateway.requests`` count and a ``gateway.request.duration`` point
  (:meth:`Telemetry.record_request`).

Whatever the configuration, every request has a trace id (the caller's ``traceparent``
or a fresh one), so that its log lines and its audit record share an id.

Implementations: :class:`~gateway.telemetry.otel.OtelTelemetry` (the OpenTelemetry SDK,
with its own providers, never the global ones) and
:class:`~gateway.telemetry.noop.NoopTelemetry` (nothing exported: the default
configuration, tests and benchmarks). :func:`build_telemetry` picks one from the settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Final, Protocol

from gateway.errors import ConfigurationError
from gateway.settings import TelemetrySettings
from gateway.telemetry.noop import NoopTelemetry

if TYPE_CHECKING:
    from opentelemetry.trace import Span
    from opentelemetry.util.types import AttributeValue

__all__ = ["NoopTelemetry", "Telemetry", "build_telemetry", "check_telemetry_settings"]

_EXPORTERS: Final = frozenset({"none", "console", "otlp"})


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

    def force_flush(self, timeout_ms: int = 10_000) -> None:
        """Export what is buffered now."""
        ...

    def shutdown(self) -> None:
        """Flush and stop exporting. Idempotent."""
        ...


def check_telemetry_settings(settings: TelemetrySettings) -> None:
    """Raise ConfigurationError for an unknown exporter or a ratio outside 0..1."""
    for what, value in (
        ("traces_exporter", settings.traces_exporter),
        ("metrics_exporter", settings.metrics_exporter),
    ):
        if value not in _EXPORTERS:
            raise ConfigurationError(
                f"telemetry {what} must be none, console or otlp, not {value!r}"
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
