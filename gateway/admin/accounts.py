"""People's accounts: local passwords (Argon2id), an optional TOTP second factor, login
throttling and lock-out.

Security properties (each tested):

* passwords are stored only as Argon2id PHC strings (argon2-cffi, RFC 9106 parameters),
  rehashed on login when the parameters change; a wrong password and an unknown user
  cost the same (a dummy hash is verified) and give the same refusal;
* after ``max_failures`` consecutive failures an account is locked for ``lockout``, then
  for twice as long after each further failure (capped at a day); a locked account is
  refused without looking at the password, so guessing cannot continue during the lock;
* a TOTP code (RFC 6238, 30-second steps, ±1 step of drift) is accepted once: the step it
  belongs to is remembered and any code of that step or an earlier one is refused;
* disabled accounts cannot log in, and their sessions stop working at once.

Every change of an account is done by an administrator (or the person themself, for a
password or a second factor) and recorded in the audit log by the caller.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import argon2
import pyotp
from sqlalchemy import Connection, Row, insert, select, update

from gateway.admin.db import AdminDb
from gateway.admin.schema import accounts
from gateway.audit.receipt import Receipt
from gateway.errors import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
)
from gateway.i18n import msg
from gateway.policy.roles import PERSON_ROLES, Role

__all__ = ["Account", "AccountStore", "LoginPolicy", "Recorder", "TotpEnrolment", "no_record"]

#: Called inside a change's transaction, after the change and before the commit, with a
#: description of the change (docs/design.md "Administrative changes"): the caller
#: writes the audit record there; if it raises, the change is rolled back.
#: Commits the audit record of an administrative change (inside its transaction) and
#: returns its receipt; None where nothing is recorded (stores used without a trail).
Recorder = Callable[[dict[str, Any]], Receipt | None]


def no_record(_event: dict[str, Any]) -> Receipt | None:
    return None


_USERNAME = re.compile(r"[a-z][a-z0-9._-]{1,63}")
_MIN_PASSWORD = 12
_TOTP_STEP = 30
_MAX_LOCKOUT: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    username: str
    display_name: str
    department: str
    roles: frozenset[Role]
    #: Systems of the department this person may act through (console queries).
    systems: tuple[str, ...]
    contact: str
    status: str
    totp_enabled: bool
    locked_until: datetime | None

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def to_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "display_name": self.display_name,
            "department": self.department,
            "roles": sorted(r.value for r in self.roles),
            "systems": list(self.systems),
            "contact": self.contact,
            "status": self.status,
            "totp_enabled": self.totp_enabled,
            "locked_until": self.locked_until.isoformat() if self.locked_until else None,
        }


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    """A second factor being set up: shown once, confirmed with a first code."""

    secret: str
    provisioning_uri: str


def _account(row: Row[Any]) -> Account:
    return Account(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        department=row.department,
        roles=frozenset(Role(r) for r in row.roles),
        systems=tuple(row.systems),
        contact=row.contact,
        status=row.status,
        totp_enabled=row.totp_secret is not None and row.totp_last_step is not None,
        locked_until=row.locked_until,
    )


def check_roles(roles: Iterable[str]) -> frozenset[Role]:
    """Roles a person may hold; InvalidRequestError naming the unknown ones."""
    values = set(roles)
    known = {r.value for r in PERSON_ROLES}
    unknown = values - known
    if unknown:
        raise InvalidRequestError(
            f"Unknown role(s) {sorted(unknown)}; a person may hold: {sorted(known)}."
        )
    if not values:
        raise InvalidRequestError("An account needs at least one role.")
    return frozenset(Role(v) for v in values)


def check_password_strength(password: str, username: str) -> None:
    if len(password) < _MIN_PASSWORD:
        raise InvalidRequestError(
            msg("The password needs at least {count} characters.", count=_MIN_PASSWORD)
        )
    if username.lower() in password.lower():
        raise InvalidRequestError(msg("The password must not contain the username."))
    if len(set(password)) < 6:
        raise InvalidRequestError(msg("The password is too repetitive."))


class AccountStore:
    """Accounts in the administration store."""

    def __init__(
        self,
        db: AdminDb,
        *,
        policy: LoginPolicy | None = None,
        hasher: argon2.PasswordHasher | None = None,
        issuer_name: str = "数据共享网关",
    ) -> None:
        self._db = db
        self._policy = policy or LoginPolicy()
        self._hasher = hasher or argon2.PasswordHasher()
        self._issuer_name = issuer_name
        # Verified when the username is unknown, so that both cases cost the same.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    # -- reading -----------------------------------------------------------------------

    def get(self, username: str) -> Account:
        """Raises NotFoundError."""
        with self._db.read() as conn:
            row = conn.execute(select(accounts).where(accounts.c.username == username)).first()
        if row is None:
            raise NotFoundError(f"No account {username!r}.")
        return _account(row)

    def get_by_id(self, account_id: int) -> Account | None:
        with self._db.read() as conn:
            row = conn.execute(select(accounts).where(accounts.c.id == account_id)).first()
        return _account(row) if row is not None else None

    def find(self, *, department: str | None = None) -> list[Account]:
        query = select(accounts).order_by(accounts.c.username)
        if department is not None:
            query = query.where(accounts.c.department == department)
        with self._db.read() as conn:
            return [_account(r) for r in conn.execute(query)]

    def holders(self, role: Role, department: str | None = None) -> list[Account]:
        """Active accounts with ``role`` (in ``department`` when given)."""
        return [a for a in self.find(department=department) if role in a.roles and a.is_active]

    # -- changing ----------------------------------------------------------------------

    def create(
        self,
        *,
        username: str,
        display_name: str,
        department: str,
        roles: Iterable[str],
        password: str | None,
        now: datetime,
        systems: Iterable[str] = (),
        contact: str = "",
        record: Recorder = no_record,
    ) -> Account:
        """Create an account. ``password`` None: the person signs in through the
        deployment's identity provider only. Raises InvalidRequestError for a malformed
        username, role or weak password, ClientError (409) for a taken username."""
        if not _USERNAME.fullmatch(username):
            raise InvalidRequestError(
                "A username is 2-64 lower-case letters, digits, '.', '_' or '-', starting "
                "with a letter."
            )
        role_set = check_roles(roles)
        password_hash = ""
        if password is not None:
            check_password_strength(password, username)
            password_hash = self._hasher.hash(password)
        with self._db.transaction() as conn:
            taken = conn.execute(
                select(accounts.c.id).where(accounts.c.username == username)
            ).first()
            if taken is not None:
                raise ConflictError(f"The username {username!r} is taken.")
            conn.execute(
                insert(accounts).values(
                    username=username,
                    display_name=display_name.strip() or username,
                    department=department,
                    roles=sorted(r.value for r in role_set),
                    systems=sorted(set(systems)),
                    contact=contact,
                    password_hash=password_hash,
                    status="active",
                    failed_logins=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            self._db.bump(conn, "accounts")
            record(
                {
                    "type": "account.created",
                    "username": username,
                    "department": department,
                    "roles": sorted(r.value for r in role_set),
                    "systems": sorted(set(systems)),
                    "local_password": password is not None,
                }
            )
        return self.get(username)

    def update(
        self,
        username: str,
        *,
        now: datetime,
        roles: Iterable[str] | None = None,
        systems: Iterable[str] | None = None,
        display_name: str | None = None,
        contact: str | None = None,
        status: str | None = None,
        record: Recorder = no_record,
    ) -> Account:
        values: dict[str, Any] = {"updated_at": now}
        if roles is not None:
            values["roles"] = sorted(r.value for r in check_roles(roles))
        if systems is not None:
            values["systems"] = sorted(set(systems))
        if display_name is not None:
            values["display_name"] = display_name
        if contact is not None:
            values["contact"] = contact
        if status is not None:
            if status not in ("active", "disabled"):
                raise InvalidRequestError("status must be active or disabled")
            values["status"] = status
            if status == "active":
                values["failed_logins"] = 0
                values["locked_until"] = None
        shown = {k: v for k, v in values.items() if k not in ("updated_at", "locked_until")}
        self._change(username, values, record, {"type": "account.updated", **shown})
        return self.get(username)

    def set_password(
        self, username: str, password: str, *, now: datetime, record: Recorder = no_record
    ) -> None:
        check_password_strength(password, username)
        self._change(
            username,
            {
                "password_hash": self._hasher.hash(password),
                "failed_logins": 0,
                "locked_until": None,
                "updated_at": now,
            },
            record,
            {"type": "account.password_set"},
        )

    def start_totp(
        self, username: str, *, now: datetime, record: Recorder = no_record
    ) -> TotpEnrolment:
        """A new TOTP secret for ``username`` (not active until :meth:`confirm_totp`)."""
        secret = pyotp.random_base32()
        self._change(
            username,
            {"totp_secret": secret, "totp_last_step": None, "updated_at": now},
            record,
            {"type": "account.totp_started"},
        )
        uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=self._issuer_name)
        return TotpEnrolment(secret=secret, provisioning_uri=uri)

    def confirm_totp(
        self, username: str, code: str, *, now: datetime, record: Recorder = no_record
    ) -> Account:
        """Activate the second factor with a first valid code. Raises InvalidRequestError."""
        with self._db.transaction() as conn:
            row = self._row(conn, username)
            if row.totp_secret is None:
                raise InvalidRequestError(msg("Start the TOTP enrolment first."))
            step = _matching_step(row.totp_secret, code, now)
            if step is None:
                raise InvalidRequestError(msg("The code does not match; check the device's clock."))
            conn.execute(
                update(accounts)
                .where(accounts.c.id == row.id)
                .values(totp_last_step=step, updated_at=now)
            )
            self._db.bump(conn, "accounts")
            record({"type": "account.totp_enabled", "username": username})
        return self.get(username)

    def remove_totp(self, username: str, *, now: datetime, record: Recorder = no_record) -> None:
        self._change(
            username,
            {"totp_secret": None, "totp_last_step": None, "updated_at": now},
            record,
            {"type": "account.totp_removed"},
        )

    # -- logging in --------------------------------------------------------------------

    def login(
        self, username: str, password: str, totp_code: str | None, *, now: datetime
    ) -> Account:
        """Check a local login. Raises AuthenticationError (one vague public message; the
        precise reason is audited) for an unknown user, a wrong password, a missing or
        wrong or replayed second factor, a locked or disabled account."""
        # The failure counter must be committed even though the login is refused, so
        # the refusal is raised after the transaction, never inside it.
        refusal: str | None = None
        with self._db.transaction() as conn:
            row = conn.execute(
                select(accounts).where(accounts.c.username == username).with_for_update()
            ).first()
            if row is None or not row.password_hash:
                self._verify(self._dummy_hash, password)
                refusal = f"no local account {username!r}"
            elif row.status != "active":
                refusal = f"account {username} is {row.status}"
            elif row.locked_until is not None and now < row.locked_until:
                refusal = f"account {username} is locked until {row.locked_until.isoformat()}"
            elif (reason := self._check_factors(row, password, totp_code, now)) is not None:
                self._record_failure(conn, row, now)
                refusal = f"{reason} for {username}"
            else:
                values: dict[str, Any] = {"failed_logins": 0, "locked_until": None}
                if row.totp_last_step is not None and totp_code is not None:
                    values["totp_last_step"] = _matching_step(row.totp_secret, totp_code, now)
                if self._hasher.check_needs_rehash(row.password_hash):
                    values["password_hash"] = self._hasher.hash(password)
                conn.execute(update(accounts).where(accounts.c.id == row.id).values(**values))
        if refusal is not None:
            raise AuthenticationError(f"login: {refusal}")
        return self.get(username)

    def _check_factors(
        self, row: Row[Any], password: str, totp_code: str | None, now: datetime
    ) -> str | None:
        if not self._verify(row.password_hash, password):
            return "wrong password"
        if row.totp_secret is not None and row.totp_last_step is not None:
            if not totp_code:
                return "second factor missing"
            step = _matching_step(row.totp_secret, totp_code, now)
            if step is None:
                return "wrong second factor"
            if step <= row.totp_last_step:
                return "second factor replayed"
        return None

    def _record_failure(self, conn: Connection, row: Row[Any], now: datetime) -> None:
        failures = row.failed_logins + 1
        values: dict[str, Any] = {"failed_logins": failures}
        over = failures - self._policy.max_failures
        if over >= 0:
            values["locked_until"] = now + min(self._policy.lockout * (2**over), _MAX_LOCKOUT)
        conn.execute(update(accounts).where(accounts.c.id == row.id).values(**values))

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return bool(self._hasher.verify(stored, password))
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    # -- helpers -----------------------------------------------------------------------

    def _row(self, conn: Connection, username: str) -> Row[Any]:
        row = conn.execute(select(accounts).where(accounts.c.username == username)).first()
        if row is None:
            raise NotFoundError(f"No account {username!r}.")
        return row

    def _change(
        self,
        username: str,
        values: dict[str, Any],
        record: Recorder = no_record,
        event: dict[str, Any] | None = None,
    ) -> None:
        with self._db.transaction() as conn:
            self._row(conn, username)
            conn.execute(update(accounts).where(accounts.c.username == username).values(**values))
            self._db.bump(conn, "accounts")
            record({"username": username, **(event or {"type": "account.updated"})})


def _matching_step(secret: str | None, code: str, now: datetime) -> int | None:
    """The RFC 6238 time step (±1 for clock drift) whose code equals ``code``, if any."""
    if secret is None or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // _TOTP_STEP
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.at(step * _TOTP_STEP), code):
            return step
    return None
