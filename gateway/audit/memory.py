"""In-process :class:`~gateway.audit.store.AuditStore` for tests and demos.

It keeps exactly what the durable stores keep (canonical bytes and leaf hash per index)
and decodes on read, so code tested against it sees the same values. Nothing survives the
process: never configure it for a real deployment.
"""

from __future__ import annotations

import threading
from typing import Self

from gateway.audit.record import AuditRecord, Outcome, leaf_hash_of
from gateway.audit.store import StoredRow, decode_stored, unavailable, validate_search, verify_rows

__all__ = ["MemoryAuditStore"]


class MemoryAuditStore:
    """A thread-safe, non-durable audit store.

    Set :attr:`unavailable` to True to make every method raise AuditUnavailableError, as
    a broken database would (for testing the 503 path of callers).
    """

    def __init__(self) -> None:
        self._rows: list[StoredRow] = []
        self._by_id: dict[str, int] = {}
        self._lock = threading.Lock()
        self._closed = False
        #: When True, every call fails like an unreachable database.
        self.unavailable = False

    def _usable(self) -> None:
        if self._closed:
            raise unavailable(None, "audit store is closed")
        if self.unavailable:
            raise unavailable(None, "memory audit store set unavailable")

    def append(self, record: AuditRecord) -> int:
        """See :meth:`AuditStore.append`. Raises AuditUnavailableError when closed, set
        unavailable, for a duplicate ``audit_id`` or a record that cannot be encoded."""
        try:
            data = record.canonical_bytes()
        except (TypeError, ValueError) as exc:
            raise unavailable(exc, "audit record cannot be encoded") from exc
        row_hash = leaf_hash_of(data)
        with self._lock:
            self._usable()
            if record.audit_id in self._by_id:
                raise unavailable(None, f"duplicate audit_id {record.audit_id}")
            idx = len(self._rows)
            self._rows.append(
                StoredRow(
                    idx=idx,
                    audit_id=record.audit_id,
                    time=record.time,
                    department=record.department,
                    system=record.system,
                    outcome=record.outcome.value,
                    record=data,
                    leaf_hash=row_hash,
                )
            )
            self._by_id[record.audit_id] = idx
            return idx

    def get(self, audit_id: str) -> tuple[int, AuditRecord] | None:
        """See :meth:`AuditStore.get`."""
        with self._lock:
            self._usable()
            idx = self._by_id.get(audit_id)
            if idx is None:
                return None
            row = self._rows[idx]
        return decode_stored(row.idx, row.record, row.leaf_hash)

    def search(
        self,
        *,
        department: str | None = None,
        system: str | None = None,
        outcome: Outcome | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 100,
    ) -> list[tuple[int, AuditRecord]]:
        """See :meth:`AuditStore.search`."""
        validate_search(since, until, limit)
        with self._lock:
            self._usable()
            rows = list(self._rows)
        found: list[tuple[int, AuditRecord]] = []
        for row in reversed(rows):
            if department is not None and row.department != department:
                continue
            if system is not None and row.system != system:
                continue
            if outcome is not None and row.outcome != Outcome(outcome).value:
                continue
            if since is not None and row.time < since:
                continue
            if until is not None and row.time >= until:
                continue
            found.append(decode_stored(row.idx, row.record, row.leaf_hash))
            if len(found) == limit:
                break
        return found

    def size(self) -> int:
        """See :meth:`AuditStore.size`."""
        with self._lock:
            self._usable()
            return len(self._rows)

    def check(self) -> None:
        """See :meth:`AuditStore.check`."""
        with self._lock:
            self._usable()
            rows = list(self._rows)
        verify_rows(rows, state_size=len(rows))

    def close(self) -> None:
        """See :meth:`AuditStore.close`."""
        with self._lock:
            self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
