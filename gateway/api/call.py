"""What an authenticated handler works with, and how it answers.

Every such handler needs the caller (a system or a signed-in person), this request's
audit record and, on the administration plane, the administration services and the
clock; every one answers with the audit id, and records the read it serves (or hands a
store the recorder of the change it makes). One injected :class:`Call` says that once
instead of in each handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from litestar import Response
from litestar.enums import MediaType

from gateway.admin.accounts import Recorder
from gateway.api.deps import Injected, audit_headers
from gateway.audit.receipt import Receipt
from gateway.audit.trail import AccessKind, AuditTrail
from gateway.clock import Clock
from gateway.domain import Principal
from gateway.query.state import RequestContext
from gateway.wiring import AdminServices

__all__ = ["Call", "provide_call"]

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One authenticated request."""

    principal: Principal
    admin: AdminServices
    trail: AuditTrail
    context: RequestContext
    clock: Clock

    @property
    def record(self) -> Recorder:
        """What a store calls, inside its transaction, to record the change it makes."""

        def record(event: dict[str, Any]) -> Receipt:
            return self.trail.acted(self.context, self.principal, event)

        return record

    def answer(
        self,
        body: T,
        *,
        status_code: int | None = None,
        media_type: str = MediaType.JSON,
        headers: Mapping[str, str] | None = None,
        no_store: bool = True,
    ) -> Response[T]:
        """``body`` with the audit headers (and ``headers``); the handler's status code
        unless ``status_code`` is given. ``no_store``: what only this caller may see."""
        return Response(
            body,
            status_code=status_code,
            media_type=media_type,
            headers=audit_headers(self.context, no_store=no_store) | dict(headers or {}),
        )

    def read(
        self,
        body: T,
        *,
        kind: str = AccessKind.ADMINISTRATION_READ,
        media_type: str = MediaType.JSON,
        headers: Mapping[str, str] | None = None,
        no_store: bool = True,
    ) -> Response[T]:
        """Answer a read once the read itself is durably audited: no record, no data."""
        self.trail.accessed(self.context, self.principal, kind=kind)
        return self.answer(body, media_type=media_type, headers=headers, no_store=no_store)


def provide_call(
    principal: Injected[Principal],
    admin: Injected[AdminServices],
    trail: Injected[AuditTrail],
    context: Injected[RequestContext],
    clock: Injected[Clock],
) -> Call:
    return Call(principal, admin, trail, context, clock)
