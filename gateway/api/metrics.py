"""GET /metrics (Prometheus text), and the server telemetry around every request.

:class:`ServerTelemetry` wraps the whole ASGI application, so it sees every request the
gateway answers — routed or not (404, 405 and 413 are decided before any route's own
middleware would run): it makes the request's SERVER span current while the app works,
then records one ``http.server.request.duration`` point labelled with the route template,
the status and the caller (department, system, and the datasets a query read), which the
handlers noted on the request state. That is the RED metric of every route.

``/metrics`` itself is served like a probe: a successful scrape is not audited
(docs/design.md "One audit trail": it carries no one's data, and a scrape every 15 s per
replica would flood a log kept for years); a refused one (wrong token) is, like any
refusal. Access: see deploy/README.md "Metrics" (unauthenticated on the gateway's own
port unless ``GATEWAY_METRICS_TOKEN`` is set; the TLS proxy does not forward it).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from time import perf_counter
from typing import Annotated, Any, Final

from litestar import Response, get
from litestar.enums import ScopeType
from litestar.params import HeaderParameter
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from gateway.api.deps import Injected, context_in_scope, datasets_in_scope, principal_in_scope
from gateway.errors import AuthenticationError, NotFoundError
from gateway.logs import ACCESS_LOGGER, begin_request, end_request
from gateway.telemetry import Telemetry

__all__ = ["PROMETHEUS_CONTENT_TYPE", "MetricsEndpoint", "ServerTelemetry", "metrics"]

#: Prometheus text exposition format 0.0.4.
PROMETHEUS_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

#: Paths that get no span (probes and scrapes: every few seconds per replica, nothing to
#: follow in a trace). They are still counted in the metrics.
UNTRACED_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})

_TRACE_HEADERS: Final = (b"traceparent", b"tracestate")

_access = logging.getLogger(ACCESS_LOGGER)


@dataclass(frozen=True, slots=True)
class MetricsEndpoint:
    """What ``GET /metrics`` needs: the telemetry to render and the token, if any."""

    telemetry: Telemetry
    token: str = field(default="", repr=False)

    def check(self, authorization: str | None) -> None:
        """Raise AuthenticationError unless no token is configured or ``authorization``
        is ``Bearer <token>`` (compared in constant time)."""
        if not self.token:
            return
        scheme, _, given = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("utf-8"), self.token.encode("utf-8")
        ):
            raise AuthenticationError("metrics token missing or wrong")


@get(
    "/metrics",
    sync_to_thread=False,
    summary="Metrics in the Prometheus text format",
    tags=["operations"],
    # 401 with GATEWAY_METRICS_TOKEN set and a wrong token; 404 when not exported.
    opt={"problems": (401, 404)},
)
def metrics(
    metrics_endpoint: Injected[MetricsEndpoint],
    authorization: Annotated[str | None, HeaderParameter(name="Authorization")] = None,
) -> Response[bytes]:
    metrics_endpoint.check(authorization)
    text = metrics_endpoint.telemetry.scrape()
    if text is None:
        raise NotFoundError("Metrics are not served here: set GATEWAY_METRICS_EXPORTER=prometheus.")
    return Response(
        content=text,
        media_type=PROMETHEUS_CONTENT_TYPE,
        headers={"Cache-Control": "no-store"},
    )


class ServerTelemetry:
    """ASGI middleware around the whole app: the request span and the RED metrics.

    Costs per request: one span (or the non-recording placeholder that only carries the
    trace id), one closure around ``send``, one histogram point. The caller's labels are
    read from the request state after the app answered, so nothing is computed for them
    on the way in.
    """

    __slots__ = ("_access_log", "_app", "_telemetry")

    def __init__(self, app: ASGIApp, telemetry: Telemetry, *, access_log: bool = False) -> None:
        self._app = app
        self._telemetry = telemetry
        self._access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        # Log lines written while serving the request carry its id (gateway/logs.py).
        request_log = begin_request()
        try:
            await self._serve(scope, receive, send)
        finally:
            end_request(request_log)

    async def _serve(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        method = scope["method"]
        status = [500]  # what the client gets if the app fails without answering
        wrapped = _status_recorder(send, status)
        telemetry = self._telemetry
        if scope["path"] in UNTRACED_PATHS:
            try:
                await self._app(scope, receive, wrapped)
            finally:
                _record(telemetry, scope, method, status[0], started, self._access_log)
            return
        # The span is named by method alone until the route is known (record_http renames
        # it): a raw path would give every audit id its own span name.
        with telemetry.request_span(
            method,
            _trace_headers(scope["headers"]),
            **{
                "http.request.method": method,
                "url.path": scope["path"],
                "url.scheme": scope.get("scheme", "http"),
            },
        ):
            try:
                await self._app(scope, receive, wrapped)
            finally:
                _record(telemetry, scope, method, status[0], started, self._access_log)


def _record(
    telemetry: Telemetry,
    scope: Scope,
    method: str,
    status: int,
    started: float,
    access_log: bool,
) -> None:
    principal = principal_in_scope(scope)
    elapsed = perf_counter() - started
    telemetry.record_http(
        method,
        scope.get("path_template") or None,
        status,
        elapsed,
        department=principal.department if principal else None,
        system=(principal.system or None) if principal else None,
        dataset=datasets_in_scope(scope),
    )
    if access_log:
        context = context_in_scope(scope)
        # The path without the query string, which can carry search terms of an audit
        # search; the route template too, to group lines by endpoint.
        _access.info(
            "%s %s %d",
            method,
            scope["path"],
            status,
            extra={
                "http.request.method": method,
                "url.path": scope["path"],
                "http.route": scope.get("path_template") or None,
                "http.response.status_code": status,
                "duration_ms": round(elapsed * 1000, 3),
                "audit_id": context.audit_id if context else None,
                "system": (principal.system or None) if principal else None,
                "department": principal.department if principal else None,
            },
        )


def _status_recorder(send: Send, status: list[int]) -> Callable[[Message], Awaitable[None]]:
    async def send_and_note(message: Message) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]
        await send(message)

    return send_and_note


def _trace_headers(headers: Any) -> MutableMapping[str, str] | None:
    """The W3C trace-context headers of the request, if it has any (most have none: then
    no dictionary is built)."""
    found: dict[str, str] | None = None
    for name, value in headers:
        if name in _TRACE_HEADERS:
            if found is None:
                found = {}
            found[name.decode("latin-1")] = value.decode("latin-1")
    return found
