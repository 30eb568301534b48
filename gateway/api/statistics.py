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
from gateway.api.call import Call
from gateway.api.deps import Injected
from gateway.api.guards import PEOPLE_OPT, ROLES_OPT
from gateway.audit.store.protocol import AuditReader
from gateway.errors import AccessDeniedError, InvalidRequestError
from gateway.policy.roles import Role
from gateway.policy.runtime import ActivePolicy

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
    call: Injected[Call],
    policy: Injected[ActivePolicy],
    audit_store: Injected[AuditReader],
    since: Annotated[date | None, QueryParameter(name="from")] = None,
    until: Annotated[date | None, QueryParameter()] = None,
    department: Annotated[str | None, QueryParameter()] = None,
    fmt: Annotated[Literal["json", "csv"], QueryParameter(name="format")] = "json",
) -> Response[Any]:
    now = call.clock()
    today = WorkingCalendar.local_date(now)
    last = until or today
    first = since or last.replace(day=1)
    if first > last:
        raise InvalidRequestError("'from' must not be after 'until'.")
    if (last - first).days >= _MAX_DAYS:
        raise InvalidRequestError(f"A period may cover at most {_MAX_DAYS} days.")
    if Role.COORDINATOR in call.principal.roles:
        departments = {department} if department else None
    else:
        if department and department != call.principal.department:
            raise AccessDeniedError("An officer sees the statistics of its own department only.")
        departments = {call.principal.department}
    stats = sharing_statistics(
        db=call.admin.db,
        catalog=policy.catalog,
        search=audit_store.search,
        calendar=call.admin.calendar,
        since=first,
        until=last,
        now=now,
        departments=departments,
    )
    if fmt == "csv":
        name = f"sharing-statistics-{first.isoformat()}-{last.isoformat()}.csv"
        return call.read(
            stats.to_csv().encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return call.read(stats.to_json())


STATISTICS_ROUTES = [read_statistics]
