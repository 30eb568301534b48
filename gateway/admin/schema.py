"""The administration store's tables (SQLAlchemy Core), one definition for SQLite and
PostgreSQL. The migrations in ``migrations/versions/`` create exactly these (a test
compares a migrated database with this metadata), so a change here needs a migration.

Times are stored timezone-aware (UTC); lists and mappings as JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "UtcDateTime",
    "accounts",
    "application_events",
    "applications",
    "change_epochs",
    "grants",
    "metadata",
    "notifications",
    "policy_versions",
    "quota_usage",
    "sessions",
]

#: Constraint names are explicit so that migrations and both dialects agree on them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both dialects: SQLite keeps no offset, so values
    are converted to UTC on the way in and marked UTC on the way out; a naive value is
    refused (it would be ambiguous evidence)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("the administration store takes timezone-aware datetimes only")
        moment = value.astimezone(UTC)
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise ValueError(f"not a datetime: {value!r}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(name: str, *, nullable: bool = True) -> Column[datetime]:
    return Column(name, UtcDateTime(), nullable=nullable)


#: People (not systems): consumer staff, provider officers, coordinators, auditors,
#: administrators. Roles and the systems a person may act for are JSON lists.
accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("department", String(64), nullable=False),
    Column("roles", JSON, nullable=False),
    Column("systems", JSON, nullable=False),
    Column("contact", String(200), nullable=False, server_default=""),
    #: Argon2id (argon2-cffi's PHC string); empty for accounts of an external IdP.
    Column("password_hash", Text, nullable=False, server_default=""),
    Column("totp_secret", String(64), nullable=True),
    #: The last TOTP time step accepted: a code is accepted once (no replay).
    Column("totp_last_step", BigInteger, nullable=True),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    _ts("locked_until"),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
)

#: Sessions of people: opaque tokens, stored as SHA-256 only. ``kind`` is ``bearer`` (API)
#: or ``cookie`` (console; then ``csrf_hash`` is set).
sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("csrf_hash", LargeBinary(32), nullable=True),
    _ts("created_at", nullable=False),
    _ts("expires_at", nullable=False),
    _ts("revoked_at"),
    Column("client_ip", String(64), nullable=True),
    Index(None, "account_id"),
)

#: Sharing applications (共享申请), one row per application; every change is an event.
applications = Table(
    "applications",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("consumer_department", String(64), nullable=False),
    Column("systems", JSON, nullable=False),
    Column("dataset", String(64), nullable=False),
    Column("provider_department", String(64), nullable=False),
    #: ``{"dataset.table": ["column", ...]}``
    Column("columns", JSON, nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("legal_basis", Text, nullable=False),
    Column("scenario", Text, nullable=False),
    Column("period_from", Date, nullable=False),
    Column("period_until", Date, nullable=True),
    Column("row_cap", Integer, nullable=True),
    #: Quotas asked for, ``{"queries_per_day": 100, "rows_per_month": 50000}``.
    Column("quotas", JSON, nullable=True),
    Column("justification", Text, nullable=False),
    Column("contact", String(200), nullable=False),
    Column("state", String(24), nullable=False),
    Column("created_by", String(64), nullable=False),
    _ts("created_at", nullable=False),
    _ts("submitted_at"),
    #: The provider must answer by the end of this day (working days, calendar.py).
    Column("reply_due", Date, nullable=True),
    _ts("decided_at"),
    _ts("escalated_at"),
    #: The narrowing an approval imposed (fields dropped, masks, filter, cap, period).
    Column("decision", JSON, nullable=True),
    Column("reason", Text, nullable=True),
    Column("renewal_of", String(32), nullable=True),
    Column("version", Integer, nullable=False, server_default="1"),
    _ts("updated_at", nullable=False),
    Index(None, "state"),
    Index(None, "provider_department", "state"),
    Index(None, "consumer_department", "state"),
)

#: The history of an application: who did what, when, from which state to which.
application_events = Table(
    "application_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("application_id", String(32), ForeignKey("applications.id"), nullable=False),
    _ts("at", nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("from_state", String(24), nullable=True),
    Column("to_state", String(24), nullable=True),
    Column("comment", Text, nullable=True),
    Column("details", JSON, nullable=True),
    #: The audit record of this change (grants are evidence too).
    Column("audit_id", String(40), nullable=True),
    Index(None, "application_id"),
)

#: Grants (授权): what an approved application allows, and until when.
grants = Table(
    "grants",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("application_id", String(32), ForeignKey("applications.id"), nullable=False),
    Column("consumer_department", String(64), nullable=False),
    Column("systems", JSON, nullable=False),
    Column("dataset", String(64), nullable=False),
    Column("columns", JSON, nullable=False),
    Column("purpose", String(64), nullable=False),
    #: ``{"dataset.table.column": "mask spec"}``: stricter masks than the policy's.
    Column("masks", JSON, nullable=False),
    #: ``{"dataset.table": "row filter template"}``: ANDed to the policy's filters.
    Column("row_filters", JSON, nullable=False),
    Column("row_cap", Integer, nullable=True),
    #: Quotas granted (gateway/admin/quotas.py), enforced across replicas.
    Column("quotas", JSON, nullable=True),
    _ts("valid_from", nullable=False),
    _ts("valid_until"),
    Column("state", String(16), nullable=False),
    #: When the holders were reminded that the grant ends soon (once per grant).
    _ts("reminded_at"),
    _ts("revoked_at"),
    Column("revoked_by", String(64), nullable=True),
    Column("revoke_reason", Text, nullable=True),
    _ts("created_at", nullable=False),
    Index(None, "consumer_department", "state"),
    Index(None, "application_id"),
)

#: What was used of each quota in each period, shared by every gateway replica. ``scope``
#: is ``system`` or ``grant``; ``period_start`` the first day (China time) of the period.
quota_usage = Table(
    "quota_usage",
    metadata,
    Column("scope", String(16), primary_key=True),
    Column("subject", String(64), primary_key=True),
    Column("metric", String(16), primary_key=True),
    Column("period_start", Date, primary_key=True),
    Column("used", BigInteger, nullable=False),
)

#: The outbox: notifications for people, roles or departments; optionally delivered to a
#: webhook as well.
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _ts("created_at", nullable=False),
    #: ``account`` (a username), ``role`` (a role value, optionally ``role@department``).
    Column("recipient_kind", String(16), nullable=False),
    Column("recipient", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", JSON, nullable=False),
    _ts("read_at"),
    Column("webhook_status", String(16), nullable=True),
    Column("webhook_attempts", Integer, nullable=False, server_default="0"),
    Index(None, "recipient_kind", "recipient"),
)

#: A counter per kind of shared state (``grants``, ``accounts``, ``policy``): every change
#: bumps it, and every gateway process compares it to decide whether its caches are stale.
change_epochs = Table(
    "change_epochs",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("epoch", BigInteger, nullable=False),
)

#: Policy changes: each row is one proposal of a version (catalog, registry, model, policy
#: lines) with who proposed, approved and activated it; ``version`` is the content address
#: (the same contents proposed again, e.g. by a rollback, are a new row with the same
#: version). Exactly one row is ``active``.
policy_versions = Table(
    "policy_versions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("version", String(80), nullable=False),
    #: The version that was active when this one was proposed.
    Column("parent", String(80), nullable=True),
    Column("files", JSON, nullable=False),
    Column("author", String(64), nullable=False),
    _ts("created_at", nullable=False),
    Column("reason", Text, nullable=False),
    #: proposed | approved | active | superseded | rejected
    Column("state", String(16), nullable=False),
    #: Departments whose datasets the change touches (scoping, two-person rule).
    Column("departments", JSON, nullable=False),
    #: Personal columns the proposer acknowledged serving unmasked.
    Column("acknowledged", JSON, nullable=False),
    Column("approved_by", String(64), nullable=True),
    _ts("approved_at"),
    Column("activated_by", String(64), nullable=True),
    _ts("activated_at"),
    Column("decision_reason", Text, nullable=True),
    Index(None, "state"),
    Index(None, "version"),
)
