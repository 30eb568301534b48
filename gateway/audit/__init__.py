"""The audit log: a verifiable RFC 6962 Merkle log with one record per request.

``open_audit_store(settings.audit_location, signer)`` gives an
:class:`~gateway.audit.store.protocol.AuditStore`; the
request path appends through a :class:`~gateway.audit.commit.GroupCommitter`, which
batches records into one durable transaction with one signed checkpoint
(:mod:`gateway.audit.sequencer`) and hands back a :class:`~gateway.audit.receipt.Receipt`.
If that raises :class:`~gateway.errors.AuditUnavailableError`, the consumer gets 503 and
no data.

Module map: ``record`` (canonical encoding), ``signing`` / ``rotation`` (log keys and
hand-overs), ``store/`` (storage: the Protocol, the SQL store and its SQLite and
PostgreSQL dialects, the memory fake, the factory), ``sequencer`` and ``commit``
(batches), ``receipt``, ``rows`` (row commitments), ``identifiers`` and ``evidence``
(keyed identifier tokens), ``bundle`` (evidence export) and ``verify/`` (the offline
verifier). The specifications themselves (RFC 6962 trees and proofs, C2SP signed notes,
checkpoints and cosignatures) are in :mod:`gateway.tlog`, which imports nothing from here.
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
from gateway.audit.store.open import open_audit_store
from gateway.audit.store.protocol import AuditStore
from gateway.audit.store.sql import SCHEMA_VERSION

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
