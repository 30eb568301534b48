"""Step 2, check the request: its size and shape, and that the declared purpose is one
the calling system is entitled to. Cheap checks before any policy or SQL work."""

from __future__ import annotations

from collections.abc import Collection
from typing import ClassVar

from gateway.domain import Principal
from gateway.errors import InvalidRequestError, PurposeNotAllowedError
from gateway.i18n import msg
from gateway.query.state import QueryRequest, QueryState

__all__ = ["CheckRequest", "check_purpose", "check_request_shape"]


def check_request_shape(request: QueryRequest, *, max_sql_chars: int) -> None:
    """Raise InvalidRequestError saying what to fix in a malformed query request."""
    if len(request.sql) > max_sql_chars:
        raise InvalidRequestError(
            msg(
                "'sql' is {length} characters; at most {limit} are accepted.",
                length=len(request.sql),
                limit=max_sql_chars,
            ),
            extra={"max_sql_chars": max_sql_chars},
        )
    if not request.sql.strip():
        raise InvalidRequestError(msg("'sql' is empty: send one SELECT statement."))
    if request.max_rows is not None and request.max_rows <= 0:
        raise InvalidRequestError(msg("'max_rows' must be a positive integer."))
    if request.timeout_ms is not None and request.timeout_ms <= 0:
        raise InvalidRequestError(msg("'timeout_ms' must be a positive integer."))


def check_purpose(principal: Principal, purpose: str, known: Collection[str]) -> None:
    """Raise unless ``purpose`` is declared, known to the catalog and one ``principal``
    is entitled to (InvalidRequestError / PurposeNotAllowedError listing the entitled)."""
    entitled = sorted(principal.purposes)
    if not purpose:
        raise InvalidRequestError(
            msg(
                "'purpose' is required: say why the data is needed, one of {entitled}",
                entitled=", ".join(entitled),
            )
        )
    if purpose not in principal.purposes or purpose not in known:
        raise PurposeNotAllowedError(
            msg(
                "Purpose {purpose!r} is not one your system is entitled to. Entitled: {entitled}",
                purpose=purpose,
                entitled=", ".join(entitled) or "-",
            ),
            extra={"allowed_purposes": entitled},
        )


class CheckRequest:
    name: ClassVar[str] = "check_request"
    span: ClassVar[bool] = False

    def __init__(self, *, max_sql_chars: int) -> None:
        self._max_sql_chars = max_sql_chars

    def __call__(self, state: QueryState) -> QueryState:
        check_request_shape(state.request, max_sql_chars=self._max_sql_chars)
        purposes = state.need_policy().catalog.purposes
        check_purpose(state.need_principal(), state.request.purpose, purposes)
        return state
