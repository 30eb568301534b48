"""Policy versions in the administration store: propose, approve (four eyes), reject,
activate, roll back — each attributed, timestamped and recorded in the audit log inside
its transaction (docs/design.md "Administrative changes").

Exactly one version is active. Activating bumps the ``policy`` counter, which every
gateway process watches (gateway/policy/runtime.py), so the new version serves within a
second everywhere. A version proposed on top of an older active version is refused at
activation: it would silently undo the changes made in between.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from gateway.admin.accounts import Recorder, no_record
from gateway.admin.db import AdminDb
from gateway.admin.schema import policy_versions
from gateway.domain import Principal
from gateway.errors import (
    AccessDeniedError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
)
from gateway.i18n import msg
from gateway.policy.roles import Role
from gateway.policy.versions import PolicySource, Review

__all__ = ["PolicyVersion", "PolicyVersionStore", "Reviewer"]


#: Validates ``new`` against ``old`` for ``actor`` (raises InvalidRequestError or
#: AccessDeniedError saying what is wrong) and says what it touches.
Reviewer = Callable[[PolicySource, PolicySource, Principal, frozenset[str]], Review]


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    """One proposal of a version (``id``: the change; ``version``: its contents)."""

    id: str
    version: str
    parent: str | None
    source: PolicySource
    author: str
    created_at: datetime
    reason: str
    state: str
    departments: tuple[str, ...]
    acknowledged: tuple[str, ...]
    approved_by: str | None
    approved_at: datetime | None
    activated_by: str | None
    activated_at: datetime | None
    decision_reason: str | None

    def to_json(self, *, with_files: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "version": self.version,
            "parent": self.parent,
            "author": self.author,
            "created_at": self.created_at.isoformat(),
            "reason": self.reason,
            "state": self.state,
            "departments": list(self.departments),
            "acknowledged": list(self.acknowledged),
            "approved_by": self.approved_by,
            "approved_at": self.approved_at.isoformat() if self.approved_at else None,
            "activated_by": self.activated_by,
            "activated_at": self.activated_at.isoformat() if self.activated_at else None,
            "decision_reason": self.decision_reason,
        }
        if with_files:
            out["files"] = dict(self.source.files)
        return out


def _version(row: Row[Any]) -> PolicyVersion:
    return PolicyVersion(
        id=row.id,
        version=row.version,
        parent=row.parent,
        source=PolicySource(dict(row.files)),
        author=row.author,
        created_at=row.created_at,
        reason=row.reason,
        state=row.state,
        departments=tuple(row.departments),
        acknowledged=tuple(row.acknowledged),
        approved_by=row.approved_by,
        approved_at=row.approved_at,
        activated_by=row.activated_by,
        activated_at=row.activated_at,
        decision_reason=row.decision_reason,
    )


def _name(actor: Principal) -> str:
    return actor.officer or actor.system or "gateway"


class PolicyVersionStore:
    def __init__(
        self,
        db: AdminDb,
        *,
        review: Reviewer,
        two_person: Callable[[Iterable[str]], bool],
    ) -> None:
        self._db = db
        self._review = review
        self._two_person = two_person

    # -- reading -----------------------------------------------------------------------

    def active_version(self) -> str | None:
        """The content address of the active version (what decisions record)."""
        with self._db.read() as conn:
            value = conn.execute(
                select(policy_versions.c.version).where(policy_versions.c.state == "active")
            ).scalar_one_or_none()
        return str(value) if value is not None else None

    def get(self, change_id: str) -> PolicyVersion:
        """A change by its id, or by its version (the newest change with that content)."""
        with self._db.read() as conn:
            row = conn.execute(
                select(policy_versions).where(policy_versions.c.id == change_id)
            ).first()
            if row is None:
                row = conn.execute(
                    select(policy_versions)
                    .where(policy_versions.c.version == change_id)
                    .order_by(policy_versions.c.created_at.desc())
                ).first()
        if row is None:
            raise NotFoundError(msg("No policy change or version {change!r}.", change=change_id))
        return _version(row)

    def active(self) -> PolicyVersion | None:
        with self._db.read() as conn:
            row = conn.execute(
                select(policy_versions).where(policy_versions.c.state == "active")
            ).first()
        return _version(row) if row is not None else None

    def history(self, limit: int = 200) -> list[PolicyVersion]:
        with self._db.read() as conn:
            rows = conn.execute(
                select(policy_versions).order_by(policy_versions.c.created_at.desc()).limit(limit)
            ).all()
        return [_version(r) for r in rows]

    def review(
        self, source: PolicySource, actor: Principal, acknowledged: Iterable[str] = ()
    ) -> Review:
        """What proposing ``source`` on top of the active version would find, without
        storing anything (raises like :meth:`propose`)."""
        current = self.active()
        if current is None:
            raise ConflictError(msg("No active policy version to change; start the gateway once."))
        return self._review(current.source, source, actor, frozenset(acknowledged))

    # -- changing ----------------------------------------------------------------------

    def bootstrap(self, source: PolicySource, *, now: datetime, origin: str) -> bool:
        """Make ``source`` the active version if none is (the first start reads the
        policy directory). Returns whether it did."""
        with self._db.transaction() as conn:
            if conn.execute(
                select(policy_versions.c.id).where(policy_versions.c.state == "active")
            ).first():
                return False
            change = self._insert(
                conn,
                source,
                parent=None,
                author="files",
                reason=f"initial version from {origin}",
                state="active",
                departments=(),
                acknowledged=(),
                now=now,
            )
            conn.execute(
                update(policy_versions)
                .where(policy_versions.c.id == change)
                .values(activated_by="files", activated_at=now)
            )
            self._db.bump(conn, "policy")
        return True

    def propose(
        self,
        source: PolicySource,
        actor: Principal,
        *,
        reason: str,
        now: datetime,
        acknowledged: Iterable[str] = (),
        record: Recorder = no_record,
    ) -> PolicyVersion:
        """A new proposed version on top of the active one, validated (the reviewer's
        errors are the client's: what is wrong and where). Raises ConflictError if the
        same contents already exist as a version."""
        if not reason.strip():
            raise InvalidRequestError(msg("Say why the policy changes ('reason')."))
        current = self.active()
        if current is None:
            raise ConflictError(msg("No active policy version to change; start the gateway once."))
        if source.id == current.version:
            raise InvalidRequestError(msg("The proposal is identical to the active version."))
        acks = frozenset(acknowledged)
        review = self._review(current.source, source, actor, acks)
        with self._db.transaction() as conn:
            change = self._insert(
                conn,
                source,
                parent=current.version,
                author=_name(actor),
                reason=reason,
                state="proposed",
                departments=sorted(review.departments),
                acknowledged=sorted(acks),
                now=now,
            )
            record(
                {
                    "type": "policy.proposed",
                    "change": change,
                    "version": source.id,
                    "parent": current.version,
                    "reason": reason,
                    "departments": sorted(review.departments),
                    "acknowledged_unmasked": sorted(acks),
                }
            )
        return self.get(change)

    def approve(
        self,
        change_id: str,
        actor: Principal,
        *,
        now: datetime,
        record: Recorder = no_record,
    ) -> PolicyVersion:
        """The second pair of eyes: someone else with authority over every department
        the change touches. Raises AccessDeniedError (the author, or no authority),
        ConflictError (not proposed)."""
        with self._db.transaction() as conn:
            version = self._locked(conn, change_id)
            if version.state != "proposed":
                raise ConflictError(
                    msg(
                        "Change {change} is {state}, not proposed.",
                        change=change_id,
                        state=version.state,
                    )
                )
            if _name(actor) == version.author:
                raise AccessDeniedError(
                    msg(
                        "The two-person rule: the author of a change cannot approve it; "
                        "another officer of the department must."
                    )
                )
            self._check_authority(actor, version)
            conn.execute(
                update(policy_versions)
                .where(policy_versions.c.id == version.id)
                .values(state="approved", approved_by=_name(actor), approved_at=now)
            )
            record({"type": "policy.approved", "change": version.id, "version": version.version})
        return self.get(version.id)

    def reject(
        self,
        change_id: str,
        actor: Principal,
        *,
        reason: str,
        now: datetime,
        record: Recorder = no_record,
    ) -> PolicyVersion:
        if not reason.strip():
            raise InvalidRequestError(msg("Say why the change is rejected ('reason')."))
        with self._db.transaction() as conn:
            version = self._locked(conn, change_id)
            if version.state not in ("proposed", "approved"):
                raise ConflictError(
                    msg("Change {change} is {state}.", change=change_id, state=version.state)
                )
            if _name(actor) != version.author:
                self._check_authority(actor, version)
            conn.execute(
                update(policy_versions)
                .where(policy_versions.c.id == version.id)
                .values(state="rejected", decision_reason=reason)
            )
            record(
                {
                    "type": "policy.rejected",
                    "change": version.id,
                    "version": version.version,
                    "reason": reason,
                }
            )
        return self.get(version.id)

    def activate(
        self,
        change_id: str,
        actor: Principal,
        *,
        now: datetime,
        record: Recorder = no_record,
    ) -> PolicyVersion:
        """Make a version active. It must be approved when the two-person rule covers a
        department it touches (else proposed is enough), and be based on the active
        version. Raises ConflictError / AccessDeniedError saying which rule."""
        with self._db.transaction() as conn:
            version = self._locked(conn, change_id)
            self._check_authority(actor, version)
            needs_approval = self._two_person(version.departments)
            allowed = ("approved",) if needs_approval else ("proposed", "approved")
            if version.state not in allowed:
                raise ConflictError(
                    msg(
                        "Change {change} is {state}; the two-person rule requires another "
                        "officer's approval first.",
                        change=change_id,
                        state=version.state,
                    )
                    if needs_approval and version.state == "proposed"
                    else msg(
                        "Change {change} is {state}; only a proposed or approved version can "
                        "be activated.",
                        change=change_id,
                        state=version.state,
                    )
                )
            active = conn.execute(
                select(policy_versions.c.version)
                .where(policy_versions.c.state == "active")
                .with_for_update()
            ).scalar_one_or_none()
            if active != version.parent:
                raise ConflictError(
                    msg(
                        "Change {change} was proposed on top of {parent}, but {active} is "
                        "active now: activating it would undo the changes in between. "
                        "Propose it again on top of the active version.",
                        change=change_id,
                        parent=version.parent,
                        active=active,
                    )
                )
            conn.execute(
                update(policy_versions)
                .where(policy_versions.c.state == "active")
                .values(state="superseded")
            )
            conn.execute(
                update(policy_versions)
                .where(policy_versions.c.id == change_id)
                .values(state="active", activated_by=_name(actor), activated_at=now)
            )
            self._db.bump(conn, "policy")
            record(
                {
                    "type": "policy.activated",
                    "change": version.id,
                    "version": version.version,
                    "previous": active,
                }
            )
        return self.get(version.id)

    def rollback(
        self,
        to_change: str,
        actor: Principal,
        *,
        reason: str,
        now: datetime,
        record: Recorder = no_record,
    ) -> PolicyVersion:
        """Propose an earlier version's contents again: a new change on top of the active
        version, approved and activated like any other. Its version id is the earlier
        one's (the same rules are the same version in the audit log)."""
        earlier = self.get(to_change)
        return self.propose(
            earlier.source,
            actor,
            reason=f"rollback to {earlier.version}: {reason}",
            now=now,
            acknowledged=earlier.acknowledged,
            record=record,
        )

    # -- helpers -----------------------------------------------------------------------

    @staticmethod
    def _insert(
        conn: Connection,
        source: PolicySource,
        *,
        parent: str | None,
        author: str,
        reason: str,
        state: str,
        departments: Iterable[str],
        acknowledged: Iterable[str],
        now: datetime,
    ) -> str:
        change = f"PV{now:%Y%m%d}-{secrets.token_hex(4)}".upper()
        conn.execute(
            insert(policy_versions).values(
                id=change,
                version=source.id,
                parent=parent,
                files=dict(source.files),
                author=author,
                created_at=now,
                reason=reason,
                state=state,
                departments=list(departments),
                acknowledged=list(acknowledged),
            )
        )
        return change

    def _locked(self, conn: Connection, change_id: str) -> PolicyVersion:
        row = conn.execute(
            select(policy_versions).where(policy_versions.c.id == change_id).with_for_update()
        ).first()
        if row is None:
            raise NotFoundError(msg("No policy change {change!r}.", change=change_id))
        return _version(row)

    @staticmethod
    def _check_authority(actor: Principal, version: PolicyVersion) -> None:
        """Officers decide changes to their own department's datasets; administrators
        decide configuration (systems, model, departments, purposes)."""
        if Role.ADMINISTRATOR in actor.roles:
            return
        if Role.PROVIDER_OFFICER not in actor.roles:
            raise AccessDeniedError(
                msg("Only provider officers and administrators change policies.")
            )
        foreign = sorted(set(version.departments) - {actor.department})
        if foreign or not version.departments:
            raise AccessDeniedError(
                msg(
                    "This change touches datasets of other departments or the configuration "
                    "({touched}): their officers or an administrator decide it.",
                    touched=", ".join(foreign) or "systems/model",
                )
            )
