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
from gateway.admin.sessions import PERSON_TOKEN_PREFIX, SessionStore
from gateway.auth.tokens import TokenService
from gateway.clock import Clock
from gateway.domain import Principal
from gateway.errors import AuthenticationError

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
