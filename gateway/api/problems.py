"""The one place where errors become HTTP responses: RFC 9457 ``application/problem+json``.

Every error path — gateway errors, framework errors (unknown route, wrong method, body
too large, invalid JSON), unexpected exceptions — produces the same shape:
``type``, ``title``, ``status``, ``detail``, ``instance``, ``code``, ``trace_id``,
``audit_id`` (null when no record was written), plus safe extra members.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from gateway.errors import GatewayError

__all__ = ["PROBLEM_MEDIA_TYPE", "problem_handlers", "problem_response"]

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://gateway.example/problems/"

_log = logging.getLogger("gateway.api")

_HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthenticated", "Unauthenticated"),
    403: ("access_denied", "Access denied"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("request_too_large", "Request too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    429: ("too_many_requests", "Too many requests"),
}


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str,
    trace_id: str,
    audit_id: str | None,
    extra: dict[str, Any] | None = None,
    retry_after: int | None = None,
    receipt: dict[str, Any] | None = None,
) -> Response[bytes]:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        "trace_id": trace_id,
        "audit_id": audit_id,
    }
    for key, value in (extra or {}).items():
        body.setdefault(key, value)
    if receipt is not None:
        # The refusal's signed evidence: the consumer can prove it was refused, and why.
        body["receipt"] = receipt
    headers = {"Cache-Control": "no-store"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if audit_id:
        headers["Gateway-Audit-Id"] = audit_id
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="gateway", error="invalid_token"'
    return Response(
        content=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def problem_handlers(
    trace_id: Callable[[], str],
    on_rejected: Callable[[Request[Any, Any, Any], int, str, str], GatewayError] | None = None,
) -> dict[type[Exception] | int, Callable[[Request[Any, Any, Any], Any], Response[bytes]]]:
    """Exception handlers for the Litestar app. ``on_rejected`` audits a request the
    framework refused before any handler ran and returns the audited error (its
    ``audit_id`` and ``receipt`` set)."""

    def gateway_error(request: Request[Any, Any, Any], exc: GatewayError) -> Response[bytes]:
        if exc.internal_detail:
            _log.info(
                "request refused",
                extra={"code": exc.code, "status": exc.status, "internal": exc.internal_detail},
            )
        return problem_response(
            status=exc.status,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            instance=request.url.path,
            trace_id=trace_id(),
            audit_id=exc.audit_id,
            extra=exc.extra,
            retry_after=exc.retry_after,
            receipt=exc.receipt,
        )

    def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
        status = exc.status_code
        code, title = _HTTP_CODES.get(status, ("http_error", "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        extra: dict[str, Any] = {}
        if status == 400:
            code, title = "invalid_request", "Invalid request"
            detail = (
                f"The request body could not be read ({detail}). Send JSON like "
                '{"sql": "SELECT ...", "purpose": "..."} with Content-Type: application/json.'
            )
        if isinstance(exc, ValidationException):
            code, title = "invalid_request", "Invalid request"
            detail = (
                "The request body is not valid: send JSON like "
                '{"sql": "SELECT ...", "purpose": "..."}.'
            )
            if isinstance(exc.extra, list):
                extra["errors"] = [
                    {k: v for k, v in e.items() if k in ("key", "message", "source")}
                    for e in exc.extra
                    if isinstance(e, dict)
                ]
        if status == 413:
            detail = "The request body is too large; send a shorter query."
        audit_id = None
        receipt = None
        if on_rejected is not None and request.method == "POST":
            # Framework-level refusals (malformed JSON, oversized body) are audited too:
            # every request to a data endpoint leaves a record. No record, no answer.
            try:
                audited = on_rejected(request, status, code, detail)
            except GatewayError as audit_exc:
                return gateway_error(request, audit_exc)
            audit_id, receipt = audited.audit_id, audited.receipt
        return problem_response(
            status=status,
            code=code,
            title=title,
            detail=detail,
            instance=request.url.path,
            trace_id=trace_id(),
            audit_id=audit_id,
            extra=extra,
            receipt=receipt,
        )

    def unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
        _log.exception("unexpected error")
        return problem_response(
            status=500,
            code="internal",
            title="Internal error",
            detail="The gateway failed to answer; no data was served.",
            instance=request.url.path,
            trace_id=trace_id(),
            audit_id=getattr(exc, "audit_id", None),
        )

    return {GatewayError: gateway_error, HTTPException: http_error, Exception: unexpected}
