"""People's accounts: passwords, lock-out, TOTP, roles."""

from __future__ import annotations

from datetime import timedelta

import argon2
import pyotp
import pytest

from gateway.admin.accounts import AccountStore, LoginPolicy
from gateway.admin.db import AdminDb
from gateway.errors import AuthenticationError, ConflictError, InvalidRequestError
from gateway.policy.roles import Role
from tests.unit.admin.support import FAST_HASHER, PASSWORD, T0, refused


@pytest.fixture
def store(admin_db: AdminDb) -> AccountStore:
    return AccountStore(admin_db, policy=LoginPolicy(max_failures=3), hasher=FAST_HASHER)


def _alice(store: AccountStore) -> None:
    store.create(
        username="alice",
        display_name="王丽",
        department="gaj",
        roles=["provider_officer"],
        password=PASSWORD,
        now=T0,
    )


def test_a_password_is_stored_as_argon2id_only(store: AccountStore, admin_db: AdminDb) -> None:
    _alice(store)
    with admin_db.read() as conn:
        from sqlalchemy import text

        (stored,) = conn.execute(text("SELECT password_hash FROM accounts")).one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert store.login("alice", PASSWORD, None, now=T0).roles == {Role.PROVIDER_OFFICER}


def test_wrong_password_and_unknown_user_are_refused_alike(store: AccountStore) -> None:
    _alice(store)
    with pytest.raises(AuthenticationError) as wrong:
        store.login("alice", "not the password", None, now=T0)
    with pytest.raises(AuthenticationError) as unknown:
        store.login("mallory", PASSWORD, None, now=T0)
    assert wrong.value.detail == unknown.value.detail  # the public message
    assert "wrong password" in wrong.value.reason
    assert "no local account" in unknown.value.reason


def test_lock_out_after_failures_grows_and_ends(store: AccountStore) -> None:
    _alice(store)
    for _ in range(3):
        with refused("wrong password"):
            store.login("alice", "guess", None, now=T0)
    # Locked: even the right password is refused, without looking at it.
    with refused("locked until"):
        store.login("alice", PASSWORD, None, now=T0 + timedelta(minutes=14))
    assert store.login("alice", PASSWORD, None, now=T0 + timedelta(minutes=16)).username == "alice"
    # The counter restarted: three more failures lock again for 15 minutes.
    for _ in range(3):
        with refused("wrong password"):
            store.login("alice", "guess", None, now=T0 + timedelta(minutes=17))
    with refused("locked"):
        store.login("alice", PASSWORD, None, now=T0 + timedelta(minutes=31))
    # Tries during the lock do not count; the next failure after it doubles the lock.
    with refused("locked"):
        store.login("alice", "guess", None, now=T0 + timedelta(minutes=20))
    with refused("wrong password"):
        store.login("alice", "guess", None, now=T0 + timedelta(minutes=33))
    with refused("locked"):
        store.login("alice", PASSWORD, None, now=T0 + timedelta(minutes=33 + 29))
    assert store.login("alice", PASSWORD, None, now=T0 + timedelta(minutes=33 + 31))


def test_totp_is_required_once_enrolled_and_never_replayed(store: AccountStore) -> None:
    _alice(store)
    enrolment = store.start_totp("alice", now=T0)
    totp = pyotp.TOTP(enrolment.secret)
    # Not active until confirmed: a password alone still works.
    store.login("alice", PASSWORD, None, now=T0)
    with pytest.raises(InvalidRequestError):
        store.confirm_totp("alice", "000000" if totp.at(T0) != "000000" else "111111", now=T0)
    store.confirm_totp("alice", totp.at(T0), now=T0)
    assert store.get("alice").totp_enabled
    later = T0 + timedelta(seconds=60)
    with refused("second factor missing"):
        store.login("alice", PASSWORD, None, now=later)
    assert store.login("alice", PASSWORD, totp.at(later), now=later)
    with refused("replayed"):
        store.login("alice", PASSWORD, totp.at(later), now=later + timedelta(seconds=5))
    # The confirmation code's step cannot be used either.
    with refused("replayed|wrong"):
        store.login("alice", PASSWORD, totp.at(T0), now=T0 + timedelta(seconds=20))
    wrong = "000000" if totp.at(later + timedelta(minutes=5)) != "000000" else "111111"
    with refused("wrong second factor"):
        store.login("alice", PASSWORD, wrong, now=later + timedelta(minutes=5))


def test_disabled_accounts_cannot_log_in(store: AccountStore) -> None:
    _alice(store)
    store.update("alice", status="disabled", now=T0)
    with refused("disabled"):
        store.login("alice", PASSWORD, None, now=T0)


def test_passwords_and_names_are_checked(store: AccountStore) -> None:
    with pytest.raises(InvalidRequestError, match="12 characters"):
        store.create(
            username="bob",
            display_name="",
            department="rsj",
            roles=["applicant"],
            password="short",
            now=T0,
        )
    with pytest.raises(InvalidRequestError, match="username"):
        store.create(
            username="Bob!",
            display_name="",
            department="rsj",
            roles=["applicant"],
            password=PASSWORD,
            now=T0,
        )
    with pytest.raises(InvalidRequestError, match="role"):
        store.create(
            username="bob",
            display_name="",
            department="rsj",
            roles=["consumer"],
            password=PASSWORD,
            now=T0,
        )
    _alice(store)
    with pytest.raises(ConflictError):
        _alice(store)


def test_a_changed_hash_parameter_rehashes_on_login(admin_db: AdminDb) -> None:
    weak = AccountStore(admin_db, hasher=argon2.PasswordHasher(time_cost=1, memory_cost=1024))
    weak.create(
        username="carol",
        display_name="",
        department="tjj",
        roles=["applicant"],
        password=PASSWORD,
        now=T0,
    )
    strong = AccountStore(admin_db, hasher=argon2.PasswordHasher(time_cost=2, memory_cost=2048))
    strong.login("carol", PASSWORD, None, now=T0)
    from sqlalchemy import text

    with admin_db.read() as conn:
        (stored,) = conn.execute(text("SELECT password_hash FROM accounts")).one()
    assert "m=2048,t=2" in stored
