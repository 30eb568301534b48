"""Sessions of people: expiry, logout, disabled accounts, CSRF."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.admin.accounts import AccountStore
from gateway.admin.db import AdminDb
from gateway.admin.sessions import SessionStore
from gateway.errors import AccessDeniedError
from tests.unit.admin.support import FAST_HASHER, PASSWORD, T0, refused


@pytest.fixture
def stores(admin_db: AdminDb) -> tuple[AccountStore, SessionStore]:
    accounts = AccountStore(admin_db, hasher=FAST_HASHER)
    accounts.create(
        username="dave",
        display_name="",
        department="sjj",
        roles=["coordinator"],
        password=PASSWORD,
        now=T0,
    )
    return accounts, SessionStore(admin_db, accounts, bearer_ttl=timedelta(minutes=15))


def test_a_bearer_session_works_until_it_expires(stores: tuple[AccountStore, SessionStore]) -> None:
    accounts, sessions = stores
    issued = sessions.issue(accounts.get("dave"), "bearer", now=T0, client_ip="127.0.0.1")
    assert issued.csrf_token is None
    assert (
        sessions.resolve(
            issued.token, now=T0 + timedelta(minutes=14), kind="bearer"
        ).account.username
        == "dave"
    )
    with refused("expired"):
        sessions.resolve(issued.token, now=T0 + timedelta(minutes=15), kind="bearer")


def test_logout_and_disabling_end_sessions_at_once(
    stores: tuple[AccountStore, SessionStore],
) -> None:
    accounts, sessions = stores
    one = sessions.issue(accounts.get("dave"), "bearer", now=T0, client_ip=None)
    two = sessions.issue(accounts.get("dave"), "cookie", now=T0, client_ip=None)
    sessions.revoke(one.token, now=T0)
    with refused("logged out"):
        sessions.resolve(one.token, now=T0, kind="bearer")
    assert sessions.resolve(two.token, now=T0, kind="cookie")
    accounts.update("dave", status="disabled", now=T0)
    with refused("disabled"):
        sessions.resolve(two.token, now=T0, kind="cookie")


def test_tokens_are_not_interchangeable(stores: tuple[AccountStore, SessionStore]) -> None:
    accounts, sessions = stores
    cookie = sessions.issue(accounts.get("dave"), "cookie", now=T0, client_ip=None)
    with refused("cookie session used as bearer"):
        sessions.resolve(cookie.token, now=T0, kind="bearer")
    with refused("unknown"):
        sessions.resolve(cookie.token[:-2] + "xx", now=T0, kind="cookie")
    with refused("not a session"):
        sessions.resolve("eyJhbGciOi.x.y", now=T0, kind="bearer")


def test_cookie_sessions_need_their_csrf_token(stores: tuple[AccountStore, SessionStore]) -> None:
    accounts, sessions = stores
    issued = sessions.issue(accounts.get("dave"), "cookie", now=T0, client_ip=None)
    assert issued.csrf_token
    session = sessions.resolve(issued.token, now=T0, kind="cookie")
    sessions.check_csrf(session, issued.csrf_token)
    for wrong in (None, "", issued.csrf_token + "x", issued.token):
        with pytest.raises(AccessDeniedError, match="CSRF"):
            sessions.check_csrf(session, wrong)
    bearer = sessions.issue(accounts.get("dave"), "bearer", now=T0, client_ip=None)
    sessions.check_csrf(sessions.resolve(bearer.token, now=T0, kind="bearer"), None)


def test_only_hashes_are_stored(
    stores: tuple[AccountStore, SessionStore], admin_db: AdminDb
) -> None:
    accounts, sessions = stores
    issued = sessions.issue(accounts.get("dave"), "cookie", now=T0, client_ip=None)
    from sqlalchemy import text

    with admin_db.read() as conn:
        rows = [tuple(r) for r in conn.execute(text("SELECT token_hash, csrf_hash FROM sessions"))]
    dump = repr(rows)
    assert issued.token not in dump and (issued.csrf_token or "") not in dump
    assert all(len(bytes(t)) == 32 for t, _ in rows)
