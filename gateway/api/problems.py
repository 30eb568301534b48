"""The one place where errors become HTTP responses: RFC 9457 ``application/problem+json``.

Every error path — gateway errors raised by handlers, guards or dependencies; framework
refusals (unknown route, wrong method, body too large, unreadable body); unexpected
exceptions; refused queries (rendered from their outcome) — produces the same shape:
``type``, ``title``, ``status``, ``detail``, ``instance``, ``code``, ``trace_id``,
``audit_id``, plus safe extra members and the refusal's signed ``receipt``.

Each refusal that reaches :func:`problem_handlers` is audited here, through the audit
trail, with the request's context and the principal if it was authenticated: one record
per request. Codes and titles come from the error classes (gateway/errors.py); framework
refusals are mapped to them by status.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from gateway.api.deps import context_of, known_principal
from gateway.audit.receipt import Receipt
from gateway.audit.trail import AuditTrail
from gateway.errors import (
    AuditUnavailableError,
    GatewayError,
    InvalidRequestError,
    error_for_status,
)
from gateway.i18n import Language, Message, msg, negotiate, translate
from gateway.logs import log_unexpected

__all__ = ["PROBLEM_MEDIA_TYPE", "language_of", "problem_handlers", "problem_response"]

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://gateway.example/problems/"

_log = logging.getLogger("gateway.api")

_QUERY_EXAMPLE = '{"sql": "SELECT ...", "purpose": "..."}'
#: Endpoints whose body is a query request; others point at their schema instead.
_QUERY_PATHS = frozenset({"/v1/query", "/v1/explain"})


def _example(path: str) -> str | Message:
    """What a valid body of ``path`` looks like, for a refusal's detail."""
    if path in _QUERY_PATHS:
        return _QUERY_EXAMPLE
    return msg("the body schema of {path} (see /schema)", path=path)


def problem_response(
    error: GatewayError,
    *,
    instance: str,
    trace_id: str,
    audit_id: str | None,
    receipt: Receipt | None,
    request_id: str | None = None,
    language: Language = Language.EN,
) -> Response[bytes]:
    """The problem+json response for ``error``, its title and detail in ``language``;
    ``audit_id``/``receipt`` name its audit record (None only when none could be
    written). The audit record keeps the English text whatever the language.

    Logs one line per refusal: its code, status and reason (the *template* of its
    detail, without the values filled in: they can quote the consumer's SQL, which only
    the audit record keeps, identifiers tokenised), the request id and the audit id."""
    _log.log(
        logging.WARNING if error.status >= 500 else logging.INFO,
        "request refused",
        extra={
            "code": error.code,
            "status": error.status,
            "reason": error.message.template if error.message is not None else error.title,
            "audit_id": audit_id,
            "request_id": request_id,
        },
    )
    body: dict[str, Any] = {
        "type": TYPE_BASE + error.code,
        "title": translate(error.title, language),
        "status": error.status,
        "detail": translate(error.message or error.detail, language),
        "instance": instance,
        "code": error.code,
        "trace_id": trace_id,
        "audit_id": audit_id,
    }
    for key, value in error.extra.items():
        body.setdefault(key, value)
    if receipt is not None:
        # The refusal's signed evidence: the consumer can prove it was refused, and why.
        body["receipt"] = receipt.to_json()
    headers = {
        "Cache-Control": "no-store",
        "Content-Language": language.value,
        "Vary": "Accept-Language",
    }
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if audit_id:
        headers["Gateway-Audit-Id"] = audit_id
    if request_id:
        headers["X-Request-Id"] = request_id
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="gateway", error="invalid_token"'
    if error.status == 405 and isinstance(error.extra.get("allow"), list):
        headers["Allow"] = ", ".join(error.extra["allow"])
    return Response(
        content=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        status_code=error.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def language_of(request: Request[Any, Any, Any]) -> Language:
    """The language to answer ``request`` in (its ``Accept-Language``)."""
    return negotiate(request.headers.get("accept-language"))


def framework_error(
    exc: HTTPException, *, max_body_bytes: int | None = None, path: str = "/v1/query"
) -> GatewayError:
    """A litestar refusal as the gateway error of its status, with a detail that says
    what to send instead. Litestar's own text can quote the parser (``JSON is
    malformed: invalid character (byte 0)``); it goes to ``internal_detail`` only."""
    status = exc.status_code
    raw = exc.detail if isinstance(exc.detail, str) else ""
    if isinstance(exc, ValidationException):
        errors = [
            {k: v for k, v in e.items() if k in ("key", "message", "source")}
            for e in (exc.extra if isinstance(exc.extra, list) else [])
            if isinstance(e, dict)
        ]
        names = ", ".join(sorted({str(e["key"]) for e in errors if e.get("key")}))
        return InvalidRequestError(
            msg(
                "The request body is not valid (check {members}): send JSON like {example}.",
                members=names,
                example=_example(path),
            )
            if names
            else msg(
                "The request body is not valid: send JSON like {example}.", example=_example(path)
            ),
            extra={"errors": errors} if errors else None,
            internal_detail=raw or None,
        )
    error_type = error_for_status(status)
    if status == 400:
        return InvalidRequestError(
            msg(
                "The request body could not be read: send JSON (Content-Type: "
                "application/json) like {example}.",
                example=_example(path),
            ),
            internal_detail=raw or None,
        )
    if status == 404:
        return error_type(msg("No such endpoint. See /schema for the API."))
    if status == 405:
        allowed = (
            sorted(exc.headers.get("allow", "").replace(" ", "").split(",")) if exc.headers else []
        )
        if allowed and allowed != [""]:
            return error_type(
                msg(
                    "This endpoint does not accept that method. Allowed: {allowed}.",
                    allowed=", ".join(allowed),
                ),
                extra={"allow": allowed},
            )
        return error_type(msg("This endpoint does not accept that method."))
    if status == 413:
        if max_body_bytes is None:
            return error_type(msg("The request body is too large; send a shorter one."))
        return error_type(
            msg(
                "The request body is larger than the {limit} bytes this gateway accepts; "
                "send a shorter one.",
                limit=max_body_bytes,
            ),
            extra={"max_body_bytes": max_body_bytes},
        )
    if status == 401:
        return error_type(raw or "unauthenticated")
    return error_type(error_type.title, internal_detail=raw or None)


def problem_handlers(
    trail: AuditTrail, trace_id: Callable[[], str], *, max_body_bytes: int | None = None
) -> dict[type[Exception] | int, Callable[[Request[Any, Any, Any], Any], Response[bytes]]]:
    """Exception handlers for the Litestar app: audit the refusal, then render it.
    ``max_body_bytes`` is the body limit the app enforces (the 413 states it)."""

    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
        if isinstance(exc, GatewayError):
            error = exc
        elif isinstance(exc, HTTPException):
            error = framework_error(exc, max_body_bytes=max_body_bytes, path=request.url.path)
        else:
            log_unexpected(_log, "unexpected error", exc)
            error = GatewayError(
                msg("The gateway failed to answer; no data was served."),
                internal_detail=f"{type(exc).__name__}: {exc}",
            )
        context = context_of(request, trail)
        receipt: Receipt | None = None
        audit_id: str | None = None
        if not isinstance(error, AuditUnavailableError):
            try:
                receipt = trail.refused(error, context, principal=known_principal(request))
                audit_id = context.audit_id
            except AuditUnavailableError as audit_exc:
                # No record, no answer: whatever the refusal was, the client gets 503.
                error = audit_exc
        return problem_response(
            error,
            instance=request.url.path,
            trace_id=trace_id(),
            audit_id=audit_id,
            receipt=receipt,
            request_id=context.request_id,
            language=language_of(request),
        )

    return {Exception: handle}
