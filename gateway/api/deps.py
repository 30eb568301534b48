"""What handlers receive through litestar's dependency injection, and the per-request
state they share with the guards and the problem handler.

Two things live on the request (``request.state``), set once: the
:class:`~gateway.query.state.RequestContext` (request id, audit id, arrival time) and, once
authenticated, the :class:`~gateway.domain.Principal`. Handlers, guards and the problem
handler all get them from here, so one request has one request id and one audit record
whatever path it takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeAlias, TypeVar

from litestar.connection import ASGIConnection
from litestar.di import Dependency, Provide
from litestar.params import SkipValidationMarker

from gateway.audit.trail import AuditTrail
from gateway.auth.callers import Callers
from gateway.domain import Principal
from gateway.logs import current_request
from gateway.query.state import RequestContext

__all__ = [
    "Injected",
    "audit_headers",
    "constant",
    "context_in_scope",
    "context_of",
    "datasets_in_scope",
    "known_principal",
    "principal_in_scope",
    "principal_of",
    "provide_context",
    "provide_principal",
    "remember_datasets",
    "remember_principal",
]

T = TypeVar("T")

#: A handler parameter the wiring provides by name. Not validated per request: the values
#: are the gateway's own services (several typed by Protocols, which litestar's
#: isinstance-based validation cannot check).
Injected: TypeAlias = Annotated[T, Dependency(kind="named"), SkipValidationMarker()]

_CONTEXT = "gateway_context"
_PRINCIPAL = "gateway_principal"
_DATASETS = "gateway_datasets"


def constant(value: object) -> Provide:
    """A dependency that is always ``value`` (a service built once by the wiring)."""

    def provide() -> Any:
        return value

    return Provide(provide, use_cache=True, sync_to_thread=False)


def audit_headers(context: RequestContext, *, no_store: bool = True) -> dict[str, str]:
    """The headers that name the request's audit record (and, for what only its caller
    may see, forbid caching it)."""
    cache = {"Cache-Control": "no-store"} if no_store else {}
    return cache | {"Gateway-Audit-Id": context.audit_id, "X-Request-Id": context.request_id}


def _request_line(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    method = connection.scope.get("method", "GET")
    query = connection.url.query
    return f"{method} {connection.url.path}" + (f"?{query}" if query else "")


def context_of(connection: ASGIConnection[Any, Any, Any, Any], trail: AuditTrail) -> RequestContext:
    """The request's context, created on first use (whichever of dependency, guard or
    problem handler comes first)."""
    ctx = connection.state.get(_CONTEXT)
    if isinstance(ctx, RequestContext):
        return ctx
    ctx = trail.begin(
        request_id=connection.headers.get("x-request-id"),
        client_ip=connection.client.host if connection.client else None,
        request_line=_request_line(connection),
    )
    connection.state[_CONTEXT] = ctx
    fields = current_request()
    if fields is not None:
        fields.request_id = ctx.request_id  # every log line of the request says which
    return ctx


def known_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The principal authenticated for this request so far, if any (for the audit record
    of a refusal)."""
    found = connection.state.get(_PRINCIPAL)
    return found if isinstance(found, Principal) else None


def principal_of(connection: ASGIConnection[Any, Any, Any, Any], callers: Callers) -> Principal:
    """Authenticate the caller (a system's access token, a person's session) once per
    request. Raises AuthenticationError, or AccessDeniedError for a missing CSRF token."""
    found = known_principal(connection)
    if found is not None:
        return found
    principal = callers.authenticate(
        str(connection.scope.get("method", "GET")), connection.headers, connection.cookies
    )
    connection.state[_PRINCIPAL] = principal
    return principal


def remember_principal(
    connection: ASGIConnection[Any, Any, Any, Any], principal: Principal
) -> None:
    """Name the caller once it is known by other means (a login), for the audit record."""
    connection.state[_PRINCIPAL] = principal


def remember_datasets(
    connection: ASGIConnection[Any, Any, Any, Any], tables: tuple[str, ...]
) -> None:
    """Name the datasets a query read (from its plan's ``dataset.table`` names), for the
    request metrics."""
    if tables:
        connection.state[_DATASETS] = ",".join(sorted({t.split(".", 1)[0] for t in tables}))


def principal_in_scope(scope: Mapping[str, Any]) -> Principal | None:
    """The principal a finished request was authenticated as, read from its ASGI scope
    (for code around the app, which has no connection object)."""
    found = (scope.get("state") or {}).get(_PRINCIPAL)
    return found if isinstance(found, Principal) else None


def context_in_scope(scope: Mapping[str, Any]) -> RequestContext | None:
    """The request context of a finished request, read from its ASGI scope."""
    found = (scope.get("state") or {}).get(_CONTEXT)
    return found if isinstance(found, RequestContext) else None


def datasets_in_scope(scope: Mapping[str, Any]) -> str | None:
    """What :func:`remember_datasets` noted for this request, if anything."""
    found = (scope.get("state") or {}).get(_DATASETS)
    return found if isinstance(found, str) else None


def provide_context(trail: AuditTrail) -> Provide:
    def provide(request: ASGIConnection[Any, Any, Any, Any]) -> RequestContext:
        return context_of(request, trail)

    return Provide(provide, sync_to_thread=False)


def provide_principal(callers: Callers) -> Provide:
    def provide(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
        return principal_of(request, callers)

    return Provide(provide, sync_to_thread=False)
