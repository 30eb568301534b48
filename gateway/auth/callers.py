"""Who is calling: a consumer system (an access token, a JWT issued at /v1/token), or a
person (a ``gws_`` bearer session for the API, or the console's session cookie).

Both become a :class:`~gateway.domain.Principal`; a person's has no ``system`` and
carries the account's roles and username (``officer``). A cookie session must echo its
CSRF token on every state-changing request (the browser sends cookies by itself, so a
forged cross-site request would otherwise act as the person).
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.admin.accounts import Account
from gateway.admin.sessions import PERSON_TOKEN_PREFIX, PersonSession, SessionStore
from gateway.auth.tokens import TokenService
from gateway.clock import Clock
from gateway.domain import Principal
from gateway.errors import AccessDeniedError, AuthenticationError
from gateway.i18n import msg

__all__ = ["SESSION_COOKIE", "Callers", "person_principal"]

#: The console's session cookie (HttpOnly, SameSite=Strict).
SESSION_COOKIE = "gw_session"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def person_principal(account: Account) -> Principal:
    return Principal(
        system="",
        department=account.department,
        officer=account.username,
        roles=account.roles,
    )


class Callers:
    def __init__(self, tokens: TokenService, sessions: SessionStore, clock: Clock) -> None:
        self._tokens = tokens
        self._sessions = sessions
        self._clock = clock

    def acting_through(
        self,
        system: str | None,
        method: str,
        headers: Mapping[str, str],
        cookies: Mapping[str, str],
    ) -> Principal:
        """A person (console cookie with its CSRF token, or a person's bearer session)
        querying through ``system``: one of the systems their account is a member of, of
        their own department, registered and active. The Principal is the system's, with
        the person as ``officer`` (named in the audit record). Raises
        AuthenticationError, or AccessDeniedError for a system that is not theirs."""
        session = self._person_session(method, headers, cookies)
        account = session.account
        if not system:
            # 403, not 400: a person as such may not query (docs/roles.md); only through
            # a system of theirs.
            raise AccessDeniedError(
                msg(
                    "Name the system you query through (one of: {systems}).",
                    systems=", ".join(account.systems) or "-",
                )
            )
        if system not in account.systems:
            raise AccessDeniedError(
                msg(
                    "You may query only through your own systems (one of: {systems}).",
                    systems=", ".join(account.systems) or "-",
                )
            )
        return self._tokens.system_principal(
            system, department=account.department, officer=account.username
        )

    def _person_session(
        self, method: str, headers: Mapping[str, str], cookies: Mapping[str, str]
    ) -> PersonSession:
        authorization = (headers.get("authorization") or "").strip()
        scheme, _, token = authorization.partition(" ")
        if authorization:
            if scheme.lower() != "bearer" or not token.strip().startswith(PERSON_TOKEN_PREFIX):
                raise AuthenticationError("not a person's session token")
            return self._sessions.resolve(token.strip(), now=self._clock(), kind="bearer")
        cookie = cookies.get(SESSION_COOKIE)
        if not cookie:
            raise AuthenticationError("no credentials: no Authorization header and no cookie")
        session = self._sessions.resolve(cookie, now=self._clock(), kind="cookie")
        if method.upper() not in _SAFE_METHODS:
            self._sessions.check_csrf(session, headers.get(CSRF_HEADER))
        return session

    def authenticate(
        self, method: str, headers: Mapping[str, str], cookies: Mapping[str, str]
    ) -> Principal:
        """The caller of a request. Raises AuthenticationError (vague public message,
        precise reason audited) or AccessDeniedError for a missing CSRF token."""
        authorization = headers.get("authorization")
        if authorization:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip().startswith(PERSON_TOKEN_PREFIX):
                session = self._sessions.resolve(token.strip(), now=self._clock(), kind="bearer")
                return person_principal(session.account)
            return self._tokens.authenticate(authorization)
        cookie = cookies.get(SESSION_COOKIE)
        if cookie:
            session = self._sessions.resolve(cookie, now=self._clock(), kind="cookie")
            if method.upper() not in _SAFE_METHODS:
                self._sessions.check_csrf(session, headers.get(CSRF_HEADER))
            return person_principal(session.account)
        raise AuthenticationError("no credentials: no Authorization header and no session cookie")
