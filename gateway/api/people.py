"""People on the administration plane: login and logout (API bearer sessions or console
cookies), their own account, and the administrators' account management.

Every response names its audit record; every change is recorded inside its transaction
(docs/design.md "Administrative changes"). Passwords and second-factor secrets never
appear in a record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from litestar import Request, Response, get, patch, post
from litestar.datastructures import Cookie
from litestar.params import JSONBody, PathParameter, QueryParameter

from gateway.admin.accounts import Account
from gateway.api.call import Call
from gateway.api.deps import Injected, audit_headers, remember_principal
from gateway.api.guards import PEOPLE_OPT, ROLES_OPT
from gateway.audit.trail import AccessKind, AuditTrail
from gateway.auth.callers import SESSION_COOKIE, person_principal
from gateway.clock import Clock
from gateway.errors import AccessDeniedError, AuthenticationError, InvalidRequestError
from gateway.policy.roles import Role
from gateway.query.state import RequestContext
from gateway.wiring import AdminServices

__all__ = ["PEOPLE_ROUTES"]

_ADMIN = {ROLES_OPT: frozenset({Role.ADMINISTRATOR}), PEOPLE_OPT: True}
_ANY_PERSON = {PEOPLE_OPT: True}


@dataclass
class LoginBody:
    username: str
    password: str
    totp: str | None = None
    """The current code of the person's authenticator app, if they enrolled one."""
    session: Literal["bearer", "cookie"] = "bearer"
    """``bearer``: a token for the API (Authorization: Bearer …); ``cookie``: a console
    session cookie plus a CSRF token to echo in X-CSRF-Token."""


@dataclass
class OidcLoginBody:
    id_token: str
    session: Literal["bearer", "cookie"] = "bearer"


@dataclass
class NewAccountBody:
    username: str
    display_name: str
    department: str
    roles: list[str]
    password: str | None = None
    """Initial password (at least 12 characters); omit for sign-in through the OIDC provider."""
    systems: list[str] = field(default_factory=list)
    contact: str = ""


@dataclass
class AccountChangeBody:
    roles: list[str] | None = None
    systems: list[str] | None = None
    display_name: str | None = None
    contact: str | None = None
    status: Literal["active", "disabled"] | None = None


@dataclass
class PasswordBody:
    password: str
    current_password: str | None = None
    """Required when changing one's own password."""


@dataclass
class TotpCodeBody:
    code: str


def _secure_cookies(request: Request[Any, Any, Any]) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def _session_response(
    request: Request[Any, Any, Any],
    admin: AdminServices,
    trail: AuditTrail,
    context: RequestContext,
    account: Account,
    kind: Literal["bearer", "cookie"],
    clock: Clock,
) -> Response[dict[str, Any]]:
    principal = person_principal(account)
    remember_principal(request, principal)
    issued = admin.sessions.issue(account, kind, now=clock(), client_ip=context.client_ip)
    # The login is evidence too (who signed in, when, from where) — and no record, no
    # session: the token is only handed out once the record is durable.
    trail.accessed(context, principal, kind=AccessKind.SESSION)
    body: dict[str, Any] = {
        "session": kind,
        "expires_at": issued.expires_at.isoformat(),
        "account": account.to_json(),
    }
    cookies: list[Cookie] = []
    if kind == "bearer":
        body |= {"token": issued.token, "token_type": "Bearer"}
    else:
        body["csrf_token"] = issued.csrf_token
        cookies.append(
            Cookie(
                key=SESSION_COOKIE,
                value=issued.token,
                httponly=True,
                secure=_secure_cookies(request),
                samesite="strict",
                path="/",
                max_age=max(0, int((issued.expires_at - clock()).total_seconds())),
            )
        )
    return Response(body, headers=audit_headers(context), cookies=cookies)


@post(
    "/v1/auth/login",
    status_code=200,
    sync_to_thread=True,
    tags=["people"],
    summary="Sign in with username, password and (if enrolled) a TOTP code",
)
def login(
    request: Request[Any, Any, Any],
    data: JSONBody[LoginBody],
    admin: Injected[AdminServices],
    trail: Injected[AuditTrail],
    context: Injected[RequestContext],
    clock: Injected[Clock],
) -> Response[dict[str, Any]]:
    account = admin.local_identity.login(data.username, data.password, data.totp, now=clock())
    return _session_response(request, admin, trail, context, account, data.session, clock)


@post(
    "/v1/auth/oidc",
    status_code=200,
    sync_to_thread=True,
    tags=["people"],
    summary="Sign in with an ID token of the deployment's OpenID Connect provider",
)
def login_oidc(
    request: Request[Any, Any, Any],
    data: JSONBody[OidcLoginBody],
    admin: Injected[AdminServices],
    trail: Injected[AuditTrail],
    context: Injected[RequestContext],
    clock: Injected[Clock],
) -> Response[dict[str, Any]]:
    if admin.oidc is None:
        raise InvalidRequestError(
            "No OpenID Connect provider is configured here; sign in with POST /v1/auth/login."
        )
    account = admin.oidc.login(data.id_token, now=clock())
    return _session_response(request, admin, trail, context, account, data.session, clock)


@post(
    "/v1/auth/logout",
    status_code=200,
    sync_to_thread=True,
    tags=["people"],
    opt=_ANY_PERSON,
    summary="End this session",
)
def logout(
    request: Request[Any, Any, Any],
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    header = request.headers.get("authorization", "")
    token = header.partition(" ")[2].strip() or request.cookies.get(SESSION_COOKIE, "")
    call.trail.accessed(call.context, call.principal, kind=AccessKind.SESSION)
    call.admin.sessions.revoke(token, now=call.clock())
    response = call.answer({"logged_out": True})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@get(
    "/v1/me",
    sync_to_thread=True,
    tags=["people"],
    opt=_ANY_PERSON,
    summary="The signed-in person's account",
)
def me(
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    account = call.admin.accounts.get(call.principal.officer or "")
    return call.read(account.to_json())


@post(
    "/v1/me/password",
    status_code=200,
    sync_to_thread=True,
    tags=["people"],
    opt=_ANY_PERSON,
    summary="Change one's own password (all other sessions end)",
)
def change_own_password(
    data: JSONBody[PasswordBody],
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    username = call.principal.officer or ""
    if data.current_password is None:
        raise InvalidRequestError("Give current_password to change your own password.")
    try:
        call.admin.accounts.login(username, data.current_password, None, now=call.clock())
    except AuthenticationError:
        # Re-authentication failed: refuse without revealing more (and count it).
        raise AccessDeniedError("The current password is wrong.") from None
    call.admin.accounts.set_password(username, data.password, now=call.clock(), record=call.record)
    return call.answer({"password_changed": True})


@post(
    "/v1/me/totp",
    status_code=200,
    sync_to_thread=True,
    tags=["people"],
    opt=_ANY_PERSON,
    summary="Start enrolling a TOTP second factor (shows the secret once)",
)
def start_own_totp(
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    enrolment = call.admin.accounts.start_totp(
        call.principal.officer or "", now=call.clock(), record=call.record
    )
    body = {"secret": enrolment.secret, "provisioning_uri": enrolment.provisioning_uri}
    return call.answer(body)


@post(
    "/v1/me/totp/confirm",
    status_code=200,
    sync_to_thread=True,
    tags=["people"],
    opt=_ANY_PERSON,
    summary="Confirm the TOTP enrolment with a first code",
)
def confirm_own_totp(
    data: JSONBody[TotpCodeBody],
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    account = call.admin.accounts.confirm_totp(
        call.principal.officer or "", data.code, now=call.clock(), record=call.record
    )
    return call.answer(account.to_json())


@get(
    "/v1/accounts",
    sync_to_thread=True,
    tags=["people"],
    opt=_ADMIN,
    summary="Accounts (administrators)",
)
def list_accounts(
    call: Injected[Call],
    department: Annotated[str | None, QueryParameter()] = None,
) -> Response[dict[str, Any]]:
    found = call.admin.accounts.find(department=department)
    return call.read({"accounts": [a.to_json() for a in found]})


@post(
    "/v1/accounts",
    status_code=201,
    sync_to_thread=True,
    tags=["people"],
    opt=_ADMIN,
    summary="Create an account (administrators)",
)
def create_account(
    data: JSONBody[NewAccountBody],
    call: Injected[Call],
    known_departments: Injected[frozenset[str]],
) -> Response[dict[str, Any]]:
    if data.department not in known_departments:
        known = ", ".join(sorted(known_departments))
        raise InvalidRequestError(f"Unknown department {data.department!r}; known: {known}.")
    account = call.admin.accounts.create(
        username=data.username,
        display_name=data.display_name,
        department=data.department,
        roles=data.roles,
        password=data.password,
        systems=data.systems,
        contact=data.contact,
        now=call.clock(),
        record=call.record,
    )
    return call.answer(account.to_json(), status_code=201)


@get(
    "/v1/accounts/{username:str}",
    sync_to_thread=True,
    tags=["people"],
    opt=_ADMIN,
    summary="One account (administrators)",
)
def get_account(
    username: Annotated[str, PathParameter()],
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    account = call.admin.accounts.get(username)
    return call.read(account.to_json())


@patch(
    "/v1/accounts/{username:str}",
    sync_to_thread=True,
    tags=["people"],
    opt=_ADMIN,
    summary="Change roles, systems, name, contact or status (administrators)",
)
def change_account(
    username: Annotated[str, PathParameter()],
    data: JSONBody[AccountChangeBody],
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    if username == call.principal.officer and data.status == "disabled":
        raise InvalidRequestError("You cannot disable your own account.")
    account = call.admin.accounts.update(
        username,
        now=call.clock(),
        roles=data.roles,
        systems=data.systems,
        display_name=data.display_name,
        contact=data.contact,
        status=data.status,
        record=call.record,
    )
    if data.status == "disabled":
        call.admin.sessions.revoke_all(account, now=call.clock())
    return call.answer(account.to_json())


@post(
    "/v1/accounts/{username:str}/password",
    status_code=200,
    sync_to_thread=True,
    tags=["people"],
    opt=_ADMIN,
    summary="Set a person's password (administrators)",
)
def reset_password(
    username: Annotated[str, PathParameter()],
    data: JSONBody[PasswordBody],
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    call.admin.accounts.set_password(username, data.password, now=call.clock(), record=call.record)
    call.admin.sessions.revoke_all(call.admin.accounts.get(username), now=call.clock())
    return call.answer({"password_set": True})


@post(
    "/v1/accounts/{username:str}/totp/remove",
    status_code=200,
    sync_to_thread=True,
    tags=["people"],
    opt=_ADMIN,
    summary="Remove a person's second factor (a lost device; administrators)",
)
def remove_totp(
    username: Annotated[str, PathParameter()],
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    call.admin.accounts.remove_totp(username, now=call.clock(), record=call.record)
    return call.answer(call.admin.accounts.get(username).to_json())


#: Routes without the guard (the login itself) and behind it.
PUBLIC_PEOPLE_ROUTES = [login, login_oidc]
PEOPLE_ROUTES = [
    logout,
    me,
    change_own_password,
    start_own_totp,
    confirm_own_totp,
    list_accounts,
    create_account,
    get_account,
    change_account,
    reset_password,
    remove_totp,
]
