"""GET /v1/statistics: sharing statistics (共享绩效考核) per department and dataset over a
period, as JSON or CSV. Coordinators (数据局) see every department; a provider's officer
sees its own department's datasets only."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from litestar import Response, get
from litestar.params import QueryParameter

from gateway.admin.calendar import WorkingCalendar
from gateway.admin.statistics import sharing_statistics
from gateway.api.deps import Injected
from gateway.api.guards import PEOPLE_OPT, ROLES_OPT
from gateway.api.people import _headers
from gateway.audit.store.protocol import AuditReader
from gateway.audit.trail import AccessKind, AuditTrail
from gateway.clock import Clock
from gateway.domain import Principal
from gateway.errors import AccessDeniedError, InvalidRequestError
from gateway.policy.roles import Role
from gateway.policy.runtime import ActivePolicy
from gateway.query.state import RequestContext
from gateway.wiring import AdminServices

__all__ = ["STATISTICS_ROUTES"]

_READERS = {ROLES_OPT: frozenset({Role.COORDINATOR, Role.PROVIDER_OFFICER}), PEOPLE_OPT: True}

#: The longest period one request may cover (the audit log is read record by record).
_MAX_DAYS = 366


@get(
    "/v1/statistics",
    sync_to_thread=True,
    tags=["sharing"],
    opt=_READERS,
    summary="Sharing statistics per department and dataset over a period (JSON or CSV)",
)
def read_statistics(
    principal: Injected[Principal],
    admin: Injected[AdminServices],
    policy: Injected[ActivePolicy],
    audit_store: Injected[AuditReader],
    trail: Injected[AuditTrail],
    context: Injected[RequestContext],
    clock: Injected[Clock],
    since: Annotated[date | None, QueryParameter(name="from")] = None,
    until: Annotated[date | None, QueryParameter()] = None,
    department: Annotated[str | None, QueryParameter()] = None,
    fmt: Annotated[Literal["json", "csv"], QueryParameter(name="format")] = "json",
) -> Response[Any]:
    now = clock()
    today = WorkingCalendar.local_date(now)
    last = until or today
    first = since or last.replace(day=1)
    if first > last:
        raise InvalidRequestError("'from' must not be after 'until'.")
    if (last - first).days >= _MAX_DAYS:
        raise InvalidRequestError(f"A period may cover at most {_MAX_DAYS} days.")
    if Role.COORDINATOR in principal.roles:
        departments = {department} if department else None
    else:
        if department and department != principal.department:
            raise AccessDeniedError("An officer sees the statistics of its own department only.")
        departments = {principal.department}
    stats = sharing_statistics(
        db=admin.db,
        catalog=policy.catalog,
        search=audit_store.search,
        calendar=admin.calendar,
        since=first,
        until=last,
        now=now,
        departments=departments,
    )
    trail.accessed(context, principal, kind=AccessKind.ADMINISTRATION_READ)
    if fmt == "csv":
        name = f"sharing-statistics-{first.isoformat()}-{last.isoformat()}.csv"
        return Response(
            stats.to_csv().encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={**_headers(context), "Content-Disposition": f'attachment; filename="{name}"'},
        )
    return Response(stats.to_json(), headers=_headers(context))


STATISTICS_ROUTES = [read_statistics]
