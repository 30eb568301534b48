"""POST /v1/token (RFC 7523 client assertion -> access token), GET /.well-known/jwks.json."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.params import URLEncodedBody

from gateway.api.deps import Injected, audit_headers, remember_principal
from gateway.api.schemas import TokenForm, TokenResponseDoc
from gateway.audit.trail import AccessKind, AuditTrail
from gateway.auth.keys import GatewayKeyStore
from gateway.auth.tokens import TokenService
from gateway.clock import Clock
from gateway.domain import Principal
from gateway.query.state import RequestContext

__all__ = ["jwks", "token"]


@post(
    "/v1/token",
    status_code=200,
    sync_to_thread=True,
    summary="Exchange a signed client assertion for an access token (RFC 7523)",
    tags=["auth"],
    opt={"problems": (401,)},
    responses={200: ResponseSpec(data_container=TokenResponseDoc, description="An access token.")},
)
def token(
    request: Request[Any, Any, Any],
    data: URLEncodedBody[TokenForm],
    tokens: Injected[TokenService],
    trail: Injected[AuditTrail],
    context: Injected[RequestContext],
) -> Response[dict[str, Any]]:
    # RFC 6749 §5.2 would say invalid_client on failure; the problem handler keeps one
    # problem+json shape (and audits the refusal).
    issued = tokens.exchange(data.as_form())
    principal = Principal(
        system=issued.system, department=issued.department, officer=issued.officer
    )
    # Issued tokens are evidence too: which system obtained access, when.
    trail.accessed(context, principal, kind=AccessKind.TOKEN_EXCHANGE)
    remember_principal(request, principal)  # for the request metrics
    return Response(
        content=issued.to_json(),
        headers=audit_headers(context),
    )


@get(
    "/.well-known/jwks.json",
    sync_to_thread=False,
    summary="Public keys that sign access tokens (RFC 7517 JWK Set)",
    tags=["auth"],
)
def jwks(keystore: Injected[GatewayKeyStore], clock: Injected[Clock]) -> dict[str, Any]:
    # Current, next (published before it signs) and previous keys; none past its deadline.
    return keystore.jwks(clock())
