"""Role guards. A route handler names the roles that may call it in its ``opt``
(``opt={"roles": {Role.AUDITOR}}``); the guard authenticates the caller once and refuses
anyone without one of them. Handlers without ``opt["roles"]`` but behind the guard need an
authenticated caller of any role. Who may do what is documented in docs/roles.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from gateway.api.deps import principal_of
from gateway.auth.callers import Callers
from gateway.errors import AccessDeniedError
from gateway.policy.roles import Role

__all__ = ["PEOPLE_OPT", "ROLES_OPT", "Guard", "role_guard"]

#: The key of a handler's ``opt`` that lists the roles allowed to call it.
ROLES_OPT = "roles"
#: ``opt={PEOPLE_OPT: True}``: only people may call it (not systems).
PEOPLE_OPT = "people_only"

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]


def role_guard(callers: Callers) -> Guard:
    """The guard: authenticated (AuthenticationError) and in one of the handler's roles
    (AccessDeniedError naming them)."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        principal = principal_of(connection, callers)
        if handler.opt.get(PEOPLE_OPT) and not principal.is_person:
            raise AccessDeniedError(
                "This is for people signed in with an account (POST /v1/auth/login), not "
                "for systems."
            )
        allowed: frozenset[Role] | None = handler.opt.get(ROLES_OPT)
        if allowed is None:
            return
        # Every registered system consumes; people hold only their account's roles.
        held = principal.roles if principal.is_person else principal.roles | {Role.CONSUMER}
        if not held & allowed:
            raise AccessDeniedError(
                "This needs one of the roles: " + ", ".join(sorted(r.value for r in allowed)),
                extra={"required_roles": sorted(r.value for r in allowed)},
            )

    return guard
