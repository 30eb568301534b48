"""HTTP handlers, thin: decode the request, call a service, encode the answer.

Handlers are synchronous (CPU-bound rewriting, blocking drivers) and run in Litestar's
thread pool (``sync_to_thread=True``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.enums import MediaType
from litestar.params import HeaderParameter, JSONBody, QueryParameter, URLEncodedBody

from gateway.api.catalog_view import catalog_document
from gateway.errors import AuthenticationError, GatewayError, InvalidRequestError
from gateway.query.pipeline import QueryContext, QueryRequest
from gateway.wiring import Services

__all__ = ["ROUTES", "QueryBody"]


@dataclass
class QueryBody:
    """A query request."""

    sql: str
    """One SELECT statement in the PostgreSQL dialect, naming tables as dataset.table."""
    purpose: str
    """Why the data is needed: one of the purposes the calling system is entitled to."""
    max_rows: int | None = None
    """Ask for fewer rows than the policy allows (never more)."""
    timeout_ms: int | None = None
    """Ask for a shorter time limit than the gateway's (never longer)."""


def _services(request: Request[Any, Any, State]) -> Services:
    services: Services = request.app.state.services
    return services


def _context(request: Request[Any, Any, Any]) -> QueryContext:
    request_id = request.headers.get("x-request-id") or str(uuid.uuid4())
    client = request.client.host if request.client else None
    return QueryContext(request_id=request_id[:128], client_ip=client)


@post(
    "/v1/query",
    status_code=200,
    sync_to_thread=True,
    summary="Run a SQL query on shared datasets",
    description=(
        "Runs one SELECT over the catalog's datasets. The result is masked, filtered and "
        "limited by the provider's policy; every request is audited before data leaves. "
        "The body is JSON with columns (name, type, masking), rows, row_count, truncated, "
        "audit_id; the audit id is also in the Gateway-Audit-Id header."
    ),
    tags=["query"],
)
def query(
    request: Request[Any, Any, State],
    data: JSONBody[QueryBody],
    authorization: Annotated[str | None, HeaderParameter(name="Authorization")] = None,
) -> Response[bytes]:
    services = _services(request)
    with services.telemetry.request_span("POST /v1/query", dict(request.headers)):
        return _run_query(services, request, data, authorization)


def _run_query(
    services: Services,
    request: Request[Any, Any, State],
    data: QueryBody,
    authorization: str | None,
) -> Response[bytes]:
    ctx = _context(request)
    qreq = QueryRequest(
        sql=data.sql, purpose=data.purpose, max_rows=data.max_rows, timeout_ms=data.timeout_ms
    )
    try:
        with services.telemetry.stage("authenticate"):
            principal = services.tokens.authenticate(authorization)
    except AuthenticationError as exc:
        services.query.audit_rejection(exc, principal=None, request=qreq, ctx=ctx)
        raise
    try:
        _check_request(qreq, services)
    except GatewayError as exc:
        services.query.audit_rejection(exc, principal=principal, request=qreq, ctx=ctx)
        raise
    result = services.query.run(principal, qreq, ctx)
    return Response(
        content=result.body,
        media_type=MediaType.JSON,
        headers={
            "Gateway-Audit-Id": result.audit_id,
            "Gateway-Audit-Index": str(result.audit_index),
            "Gateway-Plan-Cache": "hit" if result.plan_cache_hit else "miss",
            "Cache-Control": "no-store",
        },
    )


def _check_request(req: QueryRequest, services: Services) -> None:
    limit = services.settings.max_sql_chars
    if len(req.sql) > limit:
        raise InvalidRequestError(
            f"'sql' is {len(req.sql)} characters; at most {limit} are accepted."
        )
    if not req.sql.strip():
        raise InvalidRequestError("'sql' is empty: send one SELECT statement.")
    if req.max_rows is not None and req.max_rows <= 0:
        raise InvalidRequestError("'max_rows' must be a positive integer.")
    if req.timeout_ms is not None and req.timeout_ms <= 0:
        raise InvalidRequestError("'timeout_ms' must be a positive integer.")


@post(
    "/v1/token",
    status_code=200,
    sync_to_thread=True,
    summary="Exchange a signed client assertion for an access token (RFC 7523)",
    tags=["auth"],
)
def token(
    request: Request[Any, Any, State],
    data: URLEncodedBody[dict[str, str]],
) -> Response[dict[str, Any]]:
    services = _services(request)
    try:
        issued = services.tokens.exchange(data)
    except AuthenticationError as exc:
        # RFC 6749 §5.2 would say invalid_client; we keep one problem+json shape.
        services.query.audit_rejection(exc, principal=None, request=None, ctx=_context(request))
        raise
    return Response(content=issued.to_json(), headers={"Cache-Control": "no-store"})


@get(
    "/.well-known/jwks.json",
    sync_to_thread=False,
    summary="Public keys that sign access tokens (RFC 7517 JWK Set)",
    tags=["auth"],
)
def jwks(request: Request[Any, Any, State]) -> dict[str, Any]:
    return _services(request).keystore.jwks()


@get(
    "/v1/catalog",
    sync_to_thread=True,
    summary="Datasets, tables and fields, with what the calling system may see of each",
    tags=["catalog"],
)
def catalog(
    request: Request[Any, Any, State],
    authorization: Annotated[str | None, HeaderParameter(name="Authorization")] = None,
    purpose: Annotated[str | None, QueryParameter(name="purpose")] = None,
) -> dict[str, Any]:
    services = _services(request)
    principal = services.tokens.authenticate(authorization)
    now = datetime.now(UTC)
    purposes = [purpose] if purpose else sorted(principal.purposes)
    snapshots = {
        p: services.bundle.engine.snapshot(principal, p, now)
        for p in purposes
        if p in principal.purposes
    }
    return catalog_document(
        services.bundle.catalog,
        principal,
        snapshots,
        max_rows_ceiling=services.settings.max_rows_ceiling,
    )


@get("/healthz", sync_to_thread=False, summary="Liveness", tags=["operations"])
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/readyz",
    sync_to_thread=True,
    summary="Readiness: audit store and backends",
    tags=["operations"],
)
def readyz(request: Request[Any, Any, State]) -> Response[dict[str, Any]]:
    services = _services(request)
    checks: dict[str, str] = {}
    try:
        services.audit.size()
        checks["audit"] = "ok"
    except GatewayError as exc:
        checks["audit"] = exc.code
    for name, backend in services.backends.items():
        try:
            backend.ping()
            checks[f"backend:{name}"] = "ok"
        except GatewayError as exc:
            checks[f"backend:{name}"] = exc.code
    ok = all(v == "ok" for v in checks.values())
    return Response(
        content={"status": "ok" if ok else "unavailable", "checks": checks},
        status_code=200 if ok else 503,
    )


ROUTES = [query, token, jwks, catalog, healthz, readyz]
