"""The audit log: a verifiable RFC 6962 Merkle log with one record per request.

``open_audit_store(settings.audit_location, signer)`` gives an :class:`AuditStore`; the
request path appends through a :class:`~gateway.audit.commit.GroupCommitter`, which
batches records into one durable transaction with one signed checkpoint
(:mod:`gateway.audit.sequencer`) and hands back a :class:`~gateway.audit.receipt.Receipt`.
If that raises :class:`~gateway.errors.AuditUnavailableError`, the consumer gets 503 and
no data.

Module map: ``record`` (canonical encoding), ``merkle`` (RFC 6962 hashing and proofs),
``note`` (C2SP signed notes and checkpoints), ``signing`` / ``rotation`` (log keys and
hand-overs), ``store`` + ``sqlite`` / ``postgres`` / ``memory`` (storage), ``sequencer``
and ``commit`` (batches), ``receipt``, ``rows`` (row commitments), ``identifiers`` and
``evidence`` (keyed identifier tokens), ``bundle`` (evidence export) and ``verify`` (the
offline verifier).
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
