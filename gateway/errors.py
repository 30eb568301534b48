"""The one error hierarchy of the gateway.

Every failure a caller can see is a :class:`GatewayError`. Each class carries the HTTP
status, a short human title and a stable machine ``code``; ``gateway.api.problems`` is the
only place that turns them into RFC 9457 ``application/problem+json`` responses.

::

    GatewayError                       500 internal
    ├── ClientError                    400 bad_request
    │   ├── InvalidRequestError        400 invalid_request     malformed JSON, missing fields
    │   ├── NotFoundError              404 not_found           no such route or record
    │   ├── MethodNotAllowedError      405 method_not_allowed
    │   ├── ConflictError              409 conflict            state changed meanwhile, name taken
    │   ├── RequestTooLargeError       413 request_too_large
    │   ├── UnsupportedMediaTypeError  415 unsupported_media_type
    │   ├── TooManyRequestsError       429 too_many_requests   + Retry-After
    │   ├── AuthenticationError        401 unauthenticated     always the same vague detail
    │   ├── SqlSyntaxError             400 sql_syntax          with line/column
    │   ├── UnsupportedStatementError  400 unsupported_sql     anything but one read-only SELECT
    │   ├── UnknownDatasetError        404 unknown_object      unknown dataset/table/column
    │   ├── AmbiguousTableError        400 ambiguous_table     unqualified name in two datasets
    │   ├── AccessDeniedError          403 access_denied       names what was refused and why
    │   ├── PurposeNotAllowedError     403 purpose_not_allowed
    │   └── QueryTooExpensiveError     422 query_too_expensive
    ├── QueryTimeoutError              504 query_timeout
    ├── BackendUnavailableError        503 backend_unavailable  + Retry-After
    ├── BackendQueryError              502 backend_error        never echoes the database text
    ├── PolicyEngineError              503 policy_unavailable   fail closed
    ├── AuditUnavailableError          503 audit_unavailable    no audit record, no data
    └── ConfigurationError             500 configuration_error  start-up and `gateway check`

Framework refusals (an unknown route, a wrong method, an oversized body) are mapped to
these classes by HTTP status with :func:`error_for_status`, so every response's code and
title come from this one table.

Messages (``detail``) are written for the consumer: they say what to fix and never contain
values read from a protected table. Anything that might (a database error text) goes to
``internal_detail``, which is logged and audited but never sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from gateway.i18n import Message, msg

__all__ = [
    "AccessDeniedError",
    "AmbiguousTableError",
    "AuditUnavailableError",
    "AuthenticationError",
    "BackendQueryError",
    "BackendUnavailableError",
    "ClientError",
    "ConfigurationError",
    "ConflictError",
    "GatewayError",
    "InvalidRequestError",
    "MethodNotAllowedError",
    "NotFoundError",
    "PolicyEngineError",
    "PurposeNotAllowedError",
    "QueryTimeoutError",
    "QueryTooExpensiveError",
    "RequestTooLargeError",
    "SqlSyntaxError",
    "TooManyRequestsError",
    "UnknownDatasetError",
    "UnsupportedMediaTypeError",
    "UnsupportedStatementError",
    "error_for_status",
]


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    code: ClassVar[str] = "internal"
    #: Seconds a client should wait before retrying (sent as ``Retry-After``), if any; an
    #: instance may know better than its class (a quota says when it resets).
    retry_after: int | None = None

    def __init__(
        self,
        detail: str | Message,
        *,
        extra: Mapping[str, Any] | None = None,
        internal_detail: str | None = None,
    ) -> None:
        super().__init__(str(detail))
        #: The detail in English (logs, the audit record, the CLI).
        self.detail = str(detail)
        #: The detail as a translatable message (gateway/i18n.py); a plain-string detail
        #: is sent as written, whatever the caller's language.
        self.message = detail if isinstance(detail, Message) else None
        #: Extra problem+json members safe to show the client (e.g. ``line``, ``column``).
        self.extra: dict[str, Any] = dict(extra or {})
        #: Diagnostic text for logs and the audit record only; never sent to the client.
        self.internal_detail = internal_detail
        #: Id of the audit record of this refusal, once it has been written.
        self.audit_id: str | None = None
        #: The signed receipt of that record (gateway/audit/receipt.py), once written.
        self.receipt: dict[str, Any] | None = None


class ClientError(GatewayError):
    status = 400
    title = "Bad request"
    code = "bad_request"


class InvalidRequestError(ClientError):
    title = "Invalid request"
    code = "invalid_request"


class MethodNotAllowedError(ClientError):
    status = 405
    title = "Method not allowed"
    code = "method_not_allowed"


class ConflictError(ClientError):
    status = 409
    title = "Conflict"
    code = "conflict"


class RequestTooLargeError(ClientError):
    status = 413
    title = "Request too large"
    code = "request_too_large"


class UnsupportedMediaTypeError(ClientError):
    status = 415
    title = "Unsupported media type"
    code = "unsupported_media_type"


class TooManyRequestsError(ClientError):
    status = 429
    title = "Too many requests"
    code = "too_many_requests"
    retry_after = 60


class AuthenticationError(ClientError):
    """Authentication failed. The client always sees the same vague detail, so that a
    probe cannot tell an unknown key from an expired token; the precise reason is kept in
    ``internal_detail`` for the audit log."""

    status = 401
    title = "Unauthenticated"
    code = "unauthenticated"
    PUBLIC_DETAIL: ClassVar[Message] = msg(
        "The credentials are missing, invalid or expired. Obtain a new access token "
        "from POST /v1/token with a signed client assertion."
    )

    def __init__(self, reason: str) -> None:
        super().__init__(self.PUBLIC_DETAIL, internal_detail=reason)
        self.reason = reason


class SqlSyntaxError(ClientError):
    title = "SQL syntax error"
    code = "sql_syntax"

    def __init__(
        self, detail: str | Message, *, line: int | None = None, column: int | None = None
    ):
        extra: dict[str, Any] = {}
        if line is not None:
            extra["line"] = line
        if column is not None:
            extra["column"] = column
        super().__init__(detail, extra=extra)
        self.line = line
        self.column = column


class UnsupportedStatementError(ClientError):
    title = "Unsupported SQL"
    code = "unsupported_sql"


class UnknownDatasetError(ClientError):
    status = 404
    title = "Unknown dataset, table or column"
    code = "unknown_object"


class AmbiguousTableError(ClientError):
    """An unqualified table name that more than one dataset of the caller's search path
    holds; ``candidates`` lists the qualified names to choose from."""

    code = "ambiguous_table"
    title = "Ambiguous table name"


class NotFoundError(ClientError):
    """A named thing (e.g. an audit record) does not exist, or the caller may not see it
    (the two are not told apart, so ids of others' records are not confirmed)."""

    status = 404
    title = "Not found"
    code = "not_found"


class AccessDeniedError(ClientError):
    status = 403
    title = "Access denied"
    code = "access_denied"


class PurposeNotAllowedError(AccessDeniedError):
    title = "Purpose not allowed"
    code = "purpose_not_allowed"


class QueryTooExpensiveError(ClientError):
    status = 422
    title = "Query too expensive"
    code = "query_too_expensive"


class TypeMismatchError(ClientError):
    """The query asks for a conversion or comparison its values do not allow: a masked
    column holds its *masked* value (text where the raw column held digits, a year where
    it held a date), so e.g. ``CAST(name AS INTEGER)`` or ``EXTRACT(MONTH FROM year)``
    cannot be evaluated. Found before execution where the types say so, else from the
    backend's conversion error (whose own text stays in ``internal_detail``)."""

    status = 422
    title = "Type mismatch"
    code = "type_mismatch"


class QueryTimeoutError(GatewayError):
    status = 504
    title = "Query timed out"
    code = "query_timeout"


class BackendUnavailableError(GatewayError):
    status = 503
    title = "Backend unavailable"
    code = "backend_unavailable"
    retry_after = 5


class BackendQueryError(GatewayError):
    """The backend refused the rewritten query. Its own message can echo protected
    values (cast errors, constraint errors), so it only ever travels in
    ``internal_detail``."""

    status = 502
    title = "Backend error"
    code = "backend_error"


class PolicyEngineError(GatewayError):
    status = 503
    title = "Policy unavailable"
    code = "policy_unavailable"
    retry_after = 5


class AuditUnavailableError(GatewayError):
    status = 503
    title = "Audit log unavailable"
    code = "audit_unavailable"
    retry_after = 5


class ConfigurationError(GatewayError):
    title = "Configuration error"
    code = "configuration_error"


_BY_STATUS: dict[int, type[GatewayError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: AccessDeniedError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    409: ConflictError,
    413: RequestTooLargeError,
    415: UnsupportedMediaTypeError,
    429: TooManyRequestsError,
    500: GatewayError,
    502: BackendQueryError,
    503: BackendUnavailableError,
    504: QueryTimeoutError,
}


def error_for_status(status: int) -> type[GatewayError]:
    """The error class that stands for an HTTP status the framework produced (an unknown
    route is 404 NotFoundError); ClientError for another 4xx, GatewayError otherwise."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ClientError if 400 <= status < 500 else GatewayError
