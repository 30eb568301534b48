"""Notifications: an outbox in the administration store, written in the same transaction
as the change that causes them (so a notification exists exactly when its change does),
read through the API, and optionally delivered to a webhook by :class:`WebhookSender`.

Recipients are an account (``account``, a username) or a role, either everywhere
(``role``: ``coordinator``) or in one department (``role``: ``provider_officer@gaj``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import Connection, and_, insert, or_, select, update

from gateway.admin.db import AdminDb
from gateway.admin.schema import notifications
from gateway.clock import Clock
from gateway.policy.roles import Role

__all__ = ["Notification", "Outbox", "Recipient", "WebhookSender"]

_log = logging.getLogger("gateway.admin.outbox")


@dataclass(frozen=True, slots=True)
class Recipient:
    kind: str  # "account" | "role"
    name: str

    @classmethod
    def account(cls, username: str) -> Recipient:
        return cls("account", username)

    @classmethod
    def role(cls, role: Role, department: str | None = None) -> Recipient:
        return cls("role", role.value if department is None else f"{role.value}@{department}")


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    created_at: datetime
    recipient: str
    kind: str
    subject: str
    body: Mapping[str, Any]
    read_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "recipient": self.recipient,
            "kind": self.kind,
            "subject": self.subject,
            "body": dict(self.body),
            "read_at": self.read_at.isoformat() if self.read_at else None,
        }


def recipients_of(username: str, roles: Iterable[Role], department: str) -> list[Recipient]:
    """Every recipient name a person receives notifications for."""
    found = [Recipient.account(username)]
    for role in roles:
        found.append(Recipient.role(role))
        found.append(Recipient.role(role, department))
    return found


class Outbox:
    def __init__(self, db: AdminDb) -> None:
        self._db = db

    @staticmethod
    def add(
        conn: Connection,
        recipients: Iterable[Recipient],
        *,
        kind: str,
        subject: str,
        body: Mapping[str, Any],
        now: datetime,
    ) -> None:
        """Queue a notification inside the caller's transaction."""
        rows = [
            {
                "created_at": now,
                "recipient_kind": r.kind,
                "recipient": r.name,
                "kind": kind,
                "subject": subject,
                "body": dict(body),
                "webhook_attempts": 0,
            }
            for r in dict.fromkeys(recipients)
        ]
        if rows:
            conn.execute(insert(notifications), rows)

    def for_person(
        self, username: str, roles: Iterable[Role], department: str, *, unread_only: bool = False
    ) -> list[Notification]:
        names = recipients_of(username, roles, department)
        condition = or_(
            *(
                and_(notifications.c.recipient_kind == r.kind, notifications.c.recipient == r.name)
                for r in names
            )
        )
        query = select(notifications).where(condition).order_by(notifications.c.id.desc())
        if unread_only:
            query = query.where(notifications.c.read_at.is_(None))
        with self._db.read() as conn:
            return [
                Notification(r.id, r.created_at, r.recipient, r.kind, r.subject, r.body, r.read_at)
                for r in conn.execute(query.limit(500))
            ]

    def mark_read(self, ids: Iterable[int], visible: Iterable[int], *, now: datetime) -> int:
        allowed = set(ids) & set(visible)
        if not allowed:
            return 0
        with self._db.transaction() as conn:
            result = conn.execute(
                update(notifications)
                .where(notifications.c.id.in_(allowed), notifications.c.read_at.is_(None))
                .values(read_at=now)
            )
        return int(result.rowcount or 0)


class WebhookSender:
    """Delivers queued notifications to a webhook (JSON POST), at least once, in the
    background; each is tried up to ``max_attempts`` times. Several replicas may send
    concurrently: a notification is claimed by setting its status to ``sending``."""

    def __init__(
        self,
        db: AdminDb,
        url: str,
        *,
        clock: Clock,
        interval_s: float = 5.0,
        max_attempts: int = 5,
        client: httpx.Client | None = None,
    ) -> None:
        self._db = db
        self._url = url
        self._clock = clock
        self._interval = interval_s
        self._max_attempts = max_attempts
        self._client = client or httpx.Client(timeout=5.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gateway-webhook", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.deliver_pending()
            except Exception:  # keep the sender alive; the next round retries
                _log.exception("webhook delivery failed")

    def deliver_pending(self, limit: int = 100) -> int:
        """Send what is queued; returns how many were delivered."""
        with self._db.transaction() as conn:
            rows = conn.execute(
                select(notifications)
                .where(
                    notifications.c.webhook_status.is_(None),
                    notifications.c.webhook_attempts < self._max_attempts,
                )
                .order_by(notifications.c.id)
                .limit(limit)
            ).all()
            ids = [r.id for r in rows]
            if ids:
                conn.execute(
                    update(notifications)
                    .where(notifications.c.id.in_(ids), notifications.c.webhook_status.is_(None))
                    .values(webhook_status="sending")
                )
        delivered = 0
        for row in rows:
            payload = {
                "id": row.id,
                "created_at": row.created_at.isoformat(),
                "recipient": {"kind": row.recipient_kind, "name": row.recipient},
                "kind": row.kind,
                "subject": row.subject,
                "body": row.body,
            }
            ok = self._post(payload)
            delivered += ok
            with self._db.transaction() as conn:
                conn.execute(
                    update(notifications)
                    .where(notifications.c.id == row.id)
                    .values(
                        webhook_status="delivered" if ok else None,
                        webhook_attempts=notifications.c.webhook_attempts + 1,
                    )
                )
        return delivered

    def _post(self, payload: dict[str, Any]) -> bool:
        try:
            response = self._client.post(
                self._url,
                content=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            _log.warning("webhook unreachable", extra={"error": str(exc)})
            return False
        return 200 <= response.status_code < 300
