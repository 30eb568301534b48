"""In-process :class:`~gateway.audit.store.AuditStore` for tests and demos.

It keeps exactly what the durable stores keep (canonical bytes, leaf hash, tree head and
signed checkpoints) and goes through the same :class:`~gateway.audit.sequencer.Sequencer`,
so code tested against it sees the same values and proofs. Nothing survives the process:
never configure it for a real deployment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Self

from gateway.audit.merkle import EMPTY_ROOT
from gateway.audit.record import AuditRecord, Outcome
from gateway.audit.sequencer import Appended, Sequencer, TreeHead
from gateway.audit.signing import CheckpointSigner
from gateway.audit.store import (
    EncodedRecord,
    KeyEpoch,
    StoredEntry,
    StoredRow,
    check_consistency_args,
    check_proof_args,
    check_range,
    decode_stored,
    encode_batch,
    entries_checked,
    unavailable,
    validate_search,
    verify_rows,
)

__all__ = ["MemoryAuditStore"]


class MemoryAuditStore:
    """A thread-safe, non-durable audit store.

    Set :attr:`unavailable` to True to make every method raise AuditUnavailableError, as
    a broken database would (for testing the 503 path of callers).
    """

    def __init__(self, signer: CheckpointSigner) -> None:
        self._sequencer = Sequencer(signer)
        self._rows: list[StoredRow] = []
        self._by_id: dict[str, int] = {}
        self._root = EMPTY_ROOT
        self._checkpoints: list[tuple[int, str]] = [(0, signer.sign(0, EMPTY_ROOT))]
        self._keys = [KeyEpoch(signer.origin, signer.verifier.encode(), 0, None)]
        self._lock = threading.Lock()
        self._closed = False
        #: When True, every call fails like an unreachable database.
        self.unavailable = False

    def _usable(self) -> None:
        if self._closed:
            raise unavailable(None, "audit store is closed")
        if self.unavailable:
            raise unavailable(None, "memory audit store set unavailable")

    @property
    def origin(self) -> str:
        return self._sequencer.signer.origin

    def append(self, record: AuditRecord) -> int:
        """See :meth:`AuditStore.append`."""
        return self.append_batch([record]).first

    def append_batch(self, records: Sequence[AuditRecord | EncodedRecord]) -> Appended:
        """See :meth:`AuditStore.append_batch`. Raises AuditUnavailableError when closed,
        set unavailable, for a duplicate ``audit_id`` or a record that cannot be encoded."""
        encoded = encode_batch(records)
        with self._lock:
            self._usable()
            for columns, _, _ in encoded:
                if columns.audit_id in self._by_id:
                    raise unavailable(None, f"duplicate audit_id {columns.audit_id}")
            first = len(self._rows)
            data = [d for _, d, _ in encoded]
            head = self._sequencer.seal(first, data, data)
            for i, (columns, d, leaf) in enumerate(encoded):
                self._rows.append(StoredRow(first + i, columns, d, leaf))
                self._by_id[columns.audit_id] = first + i
            self._root = head.root
            self._checkpoints.append((head.size, head.checkpoint))
            return Appended(first, len(encoded), head)

    def get(self, audit_id: str) -> tuple[int, AuditRecord] | None:
        """See :meth:`AuditStore.get`."""
        with self._lock:
            self._usable()
            idx = self._by_id.get(audit_id)
            if idx is None:
                return None
            row = self._rows[idx]
        return decode_stored(row.idx, row.record, row.leaf_hash)

    def entries(self, start: int, end: int) -> list[StoredEntry]:
        """See :meth:`AuditStore.entries`."""
        start, end = check_range(start, end)
        with self._lock:
            self._usable()
            rows = [(r.idx, r.record, r.leaf_hash) for r in self._rows[start:end]]
        return entries_checked(rows)

    def search(
        self,
        *,
        department: str | None = None,
        system: str | None = None,
        outcome: Outcome | None = None,
        since: str | None = None,
        until: str | None = None,
        dataset: str | None = None,
        purpose: str | None = None,
        text: str | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[tuple[int, AuditRecord]]:
        """See :meth:`AuditStore.search`."""
        validate_search(since, until, limit, before)
        wanted = None if outcome is None else Outcome(outcome).value
        with self._lock:
            self._usable()
            rows = list(self._rows)
        found: list[tuple[int, AuditRecord]] = []
        for row in reversed(rows):
            c = row.columns
            if (
                (before is not None and row.idx >= before)
                or (department is not None and c.department != department)
                or (system is not None and c.system != system)
                or (wanted is not None and c.outcome != wanted)
                or (since is not None and c.time < since)
                or (until is not None and c.time >= until)
                or (purpose is not None and c.purpose != purpose)
                or (dataset is not None and f" {dataset} " not in c.datasets)
                or (text is not None and (c.sql is None or text not in c.sql))
            ):
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

    def head(self) -> TreeHead:
        """See :meth:`AuditStore.head`."""
        with self._lock:
            self._usable()
            size, note = self._checkpoints[-1]
            return TreeHead(size, self._sequencer.root(size), note)

    def checkpoint(self, size: int) -> str | None:
        """See :meth:`AuditStore.checkpoint`."""
        with self._lock:
            self._usable()
            matches = [note for s, note in self._checkpoints if s == size]
            return matches[-1] if matches else None

    def checkpoints(self, start_size: int, limit: int = 100) -> list[str]:
        """See :meth:`AuditStore.checkpoints`."""
        with self._lock:
            self._usable()
            return [note for s, note in self._checkpoints if s >= start_size][: max(limit, 1)]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """See :meth:`AuditStore.inclusion_proof`."""
        check_proof_args(index, size)
        with self._lock:
            self._usable()
            if size > len(self._rows):
                raise ValueError(f"the log has {len(self._rows)} entries, not {size}")
        return self._sequencer.inclusion_proof(index, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """See :meth:`AuditStore.consistency_proof`."""
        check_consistency_args(old_size, new_size)
        with self._lock:
            self._usable()
            if new_size > len(self._rows):
                raise ValueError(f"the log has {len(self._rows)} entries, not {new_size}")
        return self._sequencer.consistency_proof(old_size, new_size)

    def key_history(self) -> list[KeyEpoch]:
        """See :meth:`AuditStore.key_history`."""
        with self._lock:
            self._usable()
            return list(self._keys)

    def rotate(self, new_signer: CheckpointSigner, handover: Callable[[TreeHead], str]) -> KeyEpoch:
        """See :meth:`AuditStore.rotate`."""
        with self._lock:
            self._usable()
            size = len(self._rows)
            old = self._sequencer.signer
            final = TreeHead(size, self._root, old.sign(size, self._root))
            epoch = KeyEpoch(new_signer.origin, new_signer.verifier.encode(), size, handover(final))
            # Like the durable stores: the old key's checkpoint at this size is stored
            # once (a batch may already have left one at exactly this size).
            if (size, final.checkpoint) not in self._checkpoints:
                self._checkpoints.append((size, final.checkpoint))
            self._checkpoints.append((size, new_signer.sign(size, self._root)))
            self._keys.append(epoch)
            self._sequencer.signer = new_signer
            return epoch

    def check(self) -> None:
        """See :meth:`AuditStore.check`."""
        with self._lock:
            self._usable()
            rows = list(self._rows)
            root = self._root
        verify_rows(rows, state_size=len(rows), state_root=root)

    def close(self) -> None:
        """See :meth:`AuditStore.close`. Idempotent."""
        with self._lock:
            self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
