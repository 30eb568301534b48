"""POST /v1/query: decode the request, run the query service, render its outcome."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request, Response, post
from litestar.enums import MediaType, RequestEncodingType
from litestar.openapi import ResponseSpec
from litestar.params import Body, HeaderParameter

from gateway.admin.sessions import PERSON_TOKEN_PREFIX
from gateway.api.deps import Injected, remember_datasets, remember_principal
from gateway.api.problems import language_of, problem_response
from gateway.api.schemas import QUERY_EXAMPLE, RESULT_EXAMPLE, QueryResult
from gateway.auth.callers import Callers
from gateway.auth.tokens import TokenService
from gateway.domain import Principal
from gateway.errors import AccessDeniedError, GatewayError
from gateway.i18n import Language, msg
from gateway.query.pipeline import QueryService
from gateway.query.state import QueryOutcome, QueryRequest, RequestContext
from gateway.telemetry import Telemetry

__all__ = ["QueryBody", "query"]


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
    system: str | None = None
    """For a person signed in (the console's cookie, or a person's bearer session): which
    of their department's systems they query through (their account must be a member).
    With a system's access token it must be that system, or be left out."""


@post(
    "/v1/query",
    status_code=200,
    sync_to_thread=True,
    summary="Run a SQL query on shared datasets",
    description=(
        "Runs one SELECT over the catalog's datasets. The result is masked, filtered and "
        "limited by the provider's policy; every request is audited before data leaves. "
        "The body is JSON with columns (name, type, masking), rows, row_count, truncated, "
        "audit_id and the receipt of the audit record; the audit id is also in the "
        "Gateway-Audit-Id header."
    ),
    tags=["query"],
    # The handler authenticates the caller itself (step 1 of the pipeline), and the
    # pipeline's refusals are rendered here, not raised: gateway/api/openapi.py
    # documents their statuses from this list.
    opt={"authenticated": True, "problems": (401, 403, 404, 422, 502, 504)},
    responses={
        200: ResponseSpec(
            data_container=QueryResult,
            description="The masked, filtered, limited result and its audit receipt.",
            examples=[RESULT_EXAMPLE],
        )
    },
)
def query(
    request: Request[Any, Any, Any],
    data: Annotated[QueryBody, Body(media_type=RequestEncodingType.JSON, examples=[QUERY_EXAMPLE])],
    query_service: Injected[QueryService],
    context: Injected[RequestContext],
    telemetry: Injected[Telemetry],
    callers: Injected[Callers],
    tokens: Injected[TokenService],
    authorization: Annotated[str | None, HeaderParameter(name="Authorization")] = None,
) -> Response[bytes]:
    qreq = QueryRequest(
        sql=data.sql, purpose=data.purpose, max_rows=data.max_rows, timeout_ms=data.timeout_ms
    )
    # The request's server span is already current (gateway.api.metrics.ServerTelemetry).
    outcome = query_service.run(
        qreq, context, authorization, _authenticator(request, data.system, callers, tokens)
    )
    if outcome.principal is not None:
        remember_principal(request, outcome.principal)
    remember_datasets(request, outcome.tables)
    return render_outcome(
        outcome,
        context,
        instance=request.url.path,
        trace_id=telemetry.current_trace_id(),
        language=language_of(request),
    )


def _authenticator(
    request: Request[Any, Any, Any],
    system: str | None,
    callers: Callers,
    tokens: TokenService,
) -> Callable[[], Principal] | None:
    """How the pipeline's first step authenticates this request: a person (no
    Authorization header, or a person's ``gws_`` session) acts through ``system``; a
    system's token is the system, which ``system`` may only repeat. Run inside the
    pipeline so that every refusal is audited."""
    authorization = (request.headers.get("authorization") or "").strip()
    token = authorization.partition(" ")[2].strip()
    if not authorization or token.startswith(PERSON_TOKEN_PREFIX):
        method, headers, cookies = request.method, request.headers, request.cookies
        return lambda: callers.acting_through(system, method, headers, cookies)
    if system is None:
        return None

    def as_named_system() -> Principal:
        principal = tokens.authenticate(authorization)
        if principal.system != system:
            raise AccessDeniedError(
                msg("This access token is for system {system}.", system=principal.system)
            )
        return principal

    return as_named_system


def render_outcome(
    outcome: QueryOutcome,
    context: RequestContext,
    *,
    instance: str,
    trace_id: str,
    language: Language = Language.EN,
) -> Response[bytes]:
    """A served body, or the refusal as problem+json (with its receipt) in ``language``."""
    if outcome.error is not None or outcome.body is None or outcome.receipt is None:
        error = outcome.error or GatewayError(
            msg("The gateway failed to answer; no data was served.")
        )
        return problem_response(
            error,
            instance=instance,
            trace_id=trace_id,
            audit_id=outcome.audit_id,
            receipt=outcome.receipt,
            request_id=context.request_id,
            language=language,
        )
    return Response(
        content=outcome.body,
        media_type=MediaType.JSON,
        headers={
            "Gateway-Audit-Id": context.audit_id,
            "Gateway-Audit-Index": str(outcome.receipt.index),
            "Gateway-Plan-Cache": "hit" if outcome.plan_cache_hit else "miss",
            "X-Request-Id": context.request_id,
            "Cache-Control": "no-store",
        },
    )
