"""Sessions of people: short-lived opaque bearer tokens for the API, and cookie sessions
with a CSRF token for the web console.

A token is 32 random bytes (``gws_`` + base64url); the store keeps only its SHA-256, so
a copy of the database does not let anyone act as the people in it. Every use checks
the session's expiry and revocation and that the account is still active, so disabling
an account or logging out takes effect at the next request. Cookie sessions also carry
a CSRF token (double submit: the console sends it back in ``X-CSRF-Token`` on every
state-changing request, compared in constant time with the stored hash).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import insert, select, update

from gateway.admin.accounts import Account, AccountStore
from gateway.admin.db import AdminDb
from gateway.admin.schema import sessions
from gateway.errors import AccessDeniedError, AuthenticationError

__all__ = ["PERSON_TOKEN_PREFIX", "IssuedSession", "PersonSession", "SessionStore"]

PERSON_TOKEN_PREFIX = "gws_"  # noqa: S105 - a prefix, not a secret

SessionKind = Literal["bearer", "cookie"]


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """What the person receives once (never stored in the clear)."""

    token: str
    kind: SessionKind
    expires_at: datetime
    csrf_token: str | None = None


@dataclass(frozen=True, slots=True)
class PersonSession:
    account: Account
    kind: SessionKind
    expires_at: datetime
    csrf_hash: bytes | None


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def _new_token() -> str:
    return PERSON_TOKEN_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(
        "ascii"
    ).rstrip("=")


class SessionStore:
    def __init__(
        self,
        db: AdminDb,
        accounts: AccountStore,
        *,
        bearer_ttl: timedelta = timedelta(minutes=15),
        cookie_ttl: timedelta = timedelta(hours=8),
    ) -> None:
        self._db = db
        self._accounts = accounts
        self._ttl: dict[SessionKind, timedelta] = {"bearer": bearer_ttl, "cookie": cookie_ttl}

    def issue(
        self, account: Account, kind: SessionKind, *, now: datetime, client_ip: str | None
    ) -> IssuedSession:
        token = _new_token()
        csrf = secrets.token_urlsafe(32) if kind == "cookie" else None
        expires = now + self._ttl[kind]
        with self._db.transaction() as conn:
            conn.execute(
                insert(sessions).values(
                    token_hash=_digest(token),
                    account_id=account.id,
                    kind=kind,
                    csrf_hash=_digest(csrf) if csrf else None,
                    created_at=now,
                    expires_at=expires,
                    client_ip=client_ip,
                )
            )
        return IssuedSession(token=token, kind=kind, expires_at=expires, csrf_token=csrf)

    def resolve(self, token: str, *, now: datetime, kind: SessionKind) -> PersonSession:
        """The live session of ``token``. Raises AuthenticationError (precise reason for
        the audit) when unknown, of another kind, expired, revoked, or the account is no
        longer active."""
        if not token.startswith(PERSON_TOKEN_PREFIX) or len(token) > 100:
            raise AuthenticationError("not a session token")
        with self._db.read() as conn:
            row = conn.execute(
                select(sessions).where(sessions.c.token_hash == _digest(token))
            ).first()
        if row is None:
            raise AuthenticationError("unknown session token")
        if row.kind != kind:
            raise AuthenticationError(f"a {row.kind} session used as {kind}")
        if row.revoked_at is not None:
            raise AuthenticationError("session was logged out")
        if now >= row.expires_at:
            raise AuthenticationError(f"session expired at {row.expires_at.isoformat()}")
        account = self._accounts.get_by_id(row.account_id)
        if account is None or not account.is_active:
            raise AuthenticationError("the session's account is disabled")
        return PersonSession(account, row.kind, row.expires_at, row.csrf_hash)

    @staticmethod
    def check_csrf(session: PersonSession, presented: str | None) -> None:
        """A cookie session's state-changing request must echo its CSRF token. Raises
        AccessDeniedError (403) naming the header."""
        if session.kind != "cookie":
            return
        if (
            not presented
            or session.csrf_hash is None
            or not hmac.compare_digest(_digest(presented), session.csrf_hash)
        ):
            raise AccessDeniedError(
                "The CSRF token is missing or wrong: send the X-CSRF-Token header the "
                "console received at login."
            )

    def revoke(self, token: str, *, now: datetime) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                update(sessions)
                .where(sessions.c.token_hash == _digest(token), sessions.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )

    def revoke_all(self, account: Account, *, now: datetime) -> None:
        """Log a person out everywhere (password change, disabling)."""
        with self._db.transaction() as conn:
            conn.execute(
                update(sessions)
                .where(sessions.c.account_id == account.id, sessions.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
