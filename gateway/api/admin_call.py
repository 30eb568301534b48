"""What a handler of the administration plane works with, and how it answers.

Every such handler needs the signed-in person, the administration services, the clock
and this request's audit record; every one answers with the audit id and is never
cached, and records a read (or hands the store a recorder for a change). One injected
:class:`AdminCall` says that once instead of in each handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from litestar import Response
from litestar.enums import MediaType

from gateway.admin.accounts import Recorder
from gateway.api.deps import Injected, audit_headers
from gateway.audit.trail import AccessKind, AuditTrail
from gateway.clock import Clock
from gateway.domain import Principal
from gateway.query.state import RequestContext
from gateway.wiring import AdminServices

__all__ = ["AdminCall", "provide_admin_call"]

T = TypeVar("T")


@dataclass(frozen=True)
class AdminCall:
    """One request of a signed-in person on the administration plane."""

    principal: Principal
    admin: AdminServices
    trail: AuditTrail
    context: RequestContext
    clock: Clock

    @property
    def record(self) -> Recorder:
        """What a store calls, inside its transaction, to record the change it makes."""

        def record(event: dict[str, Any]) -> object:
            return self.trail.acted(self.context, self.principal, event)

        return record

    def answer(
        self,
        body: T,
        *,
        status_code: int | None = None,
        media_type: str = MediaType.JSON,
        headers: Mapping[str, str] | None = None,
    ) -> Response[T]:
        """``body`` with the audit headers (and ``headers``); the handler's status code
        unless ``status_code`` is given."""
        return Response(
            body,
            status_code=status_code,
            media_type=media_type,
            headers=audit_headers(self.context) | dict(headers or {}),
        )

    def read(
        self,
        body: T,
        *,
        media_type: str = MediaType.JSON,
        headers: Mapping[str, str] | None = None,
    ) -> Response[T]:
        """Answer a read once the read itself is durably audited: no record, no data."""
        self.trail.accessed(self.context, self.principal, kind=AccessKind.ADMINISTRATION_READ)
        return self.answer(body, media_type=media_type, headers=headers)


def provide_admin_call(
    principal: Injected[Principal],
    admin: Injected[AdminServices],
    trail: Injected[AuditTrail],
    context: Injected[RequestContext],
    clock: Injected[Clock],
) -> AdminCall:
    return AdminCall(principal, admin, trail, context, clock)
