"""GET /v1/quotas: the quotas a caller may see and what is used of them this period.

A consumer system sees its own quotas and those of the grants it queries under; an
applicant sees its department's systems and grants; a provider's officer the grants on
its department's datasets (and its department's systems); coordinators see everything.
"""

from __future__ import annotations

from typing import Any

from litestar import Response, get

from gateway.admin.quotas import QuotaLimit, limits_of
from gateway.api.call import Call
from gateway.api.deps import Injected
from gateway.api.guards import ROLES_OPT
from gateway.domain import Principal
from gateway.policy.roles import Role
from gateway.policy.runtime import ActivePolicy
from gateway.wiring import AdminServices

__all__ = ["QUOTA_ROUTES", "visible_limits"]

_READERS = {
    ROLES_OPT: frozenset({Role.CONSUMER, Role.APPLICANT, Role.PROVIDER_OFFICER, Role.COORDINATOR})
}


def visible_limits(
    principal: Principal, admin: AdminServices, policy: ActivePolicy
) -> tuple[QuotaLimit, ...]:
    """The quotas ``principal`` may see (see the module docstring)."""
    limits: list[QuotaLimit] = []
    registry = policy.registry
    if not principal.is_person:
        system = registry.get(principal.system or "")
        if system is not None:
            limits.extend(limits_of("system", system.system_id, system.quotas))
        for grant in admin.grants.grants_of(principal.department):
            if principal.system in grant.systems:
                limits.extend(limits_of("grant", grant.id, grant.quotas))
        return tuple(limits)
    everything = Role.COORDINATOR in principal.roles
    for system in registry.all():
        if everything or system.department == principal.department:
            limits.extend(limits_of("system", system.system_id, system.quotas))
    for grant, state in admin.applications.grants_visible(principal):
        if state == "active":
            limits.extend(limits_of("grant", grant.id, grant.quotas))
    return tuple(limits)


@get(
    "/v1/quotas",
    sync_to_thread=True,
    tags=["sharing"],
    opt=_READERS,
    summary="Quotas you may see (systems', grants') and their use in the current period",
)
def list_quotas(
    call: Injected[Call],
    policy: Injected[ActivePolicy],
) -> Response[dict[str, Any]]:
    now = call.clock()
    items = call.admin.quotas.usage(visible_limits(call.principal, call.admin, policy), now=now)
    return call.read({"items": items, "count": len(items), "as_of": now.isoformat()})


QUOTA_ROUTES = [list_quotas]
