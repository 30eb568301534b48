"""The audit log: one durable record per request, written before any data leaves.

``open_audit_store(settings.audit_location)`` gives an :class:`AuditStore`; build an
:class:`AuditRecord` (ids from :func:`new_audit_id`, times from :func:`format_time`, both
from the injected clock) and :meth:`AuditStore.append` it. If that raises
:class:`~gateway.errors.AuditUnavailableError`, the consumer gets 503 and no data.

Records are stored in a canonical encoding with RFC 6962 leaf hashes at contiguous
indices, ready for the Merkle log with signed checkpoints of the next milestone.
"""

from __future__ import annotations

from gateway.audit.record import (
    ENCODING_VERSION,
    AuditRecord,
    Outcome,
    canonical_json,
    format_time,
    leaf_hash_of,
    new_audit_id,
)
from gateway.audit.store import SCHEMA_VERSION, AuditStore, open_audit_store

__all__ = [
    "ENCODING_VERSION",
    "SCHEMA_VERSION",
    "AuditRecord",
    "AuditStore",
    "Outcome",
    "canonical_json",
    "format_time",
    "leaf_hash_of",
    "new_audit_id",
    "open_audit_store",
]
