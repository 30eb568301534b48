"""In-process :class:`~gateway.audit.store.protocol.AuditStore` for tests and demos.

It keeps exactly what the durable stores keep (canonical bytes, leaf hash, tree head and
signed checkpoints) and goes through the same :class:`~gateway.audit.sequencer.Sequencer`,
so code tested against it sees the same values and proofs. Nothing survives the process:
never configure it for a real deployment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Self

from gateway.audit.record import AuditRecord
from gateway.audit.sequencer import SequencedStore, Sequencer
from gateway.audit.signing import CheckpointSigner
from gateway.audit.store.codec import (
    StoredRow,
    decode_stored,
    encode_batch,
    entries_checked,
    verify_rows,
)
from gateway.audit.store.protocol import (
    Appended,
    ArchiveMark,
    EncodedRecord,
    KeyEpoch,
    SearchQuery,
    StoredEntry,
    TreeHead,
    check_archive_range,
    check_range,
    unavailable,
)
from gateway.tlog.rfc6962 import EMPTY_ROOT

__all__ = ["MemoryAuditStore"]


class MemoryAuditStore(SequencedStore):
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
        self._cosigned: list[tuple[int, str]] = []
        self._archives: list[ArchiveMark] = []
        self._lock = threading.Lock()
        self._closed = False
        #: When True, every call fails like an unreachable database.
        self.unavailable = False

    def _usable(self) -> None:
        if self._closed:
            raise unavailable(None, "audit store is closed")
        if self.unavailable:
            raise unavailable(None, "memory audit store set unavailable")

    def append_batch(self, records: Sequence[AuditRecord | EncodedRecord]) -> Appended:
        """See :meth:`AuditAppender.append_batch`. Raises AuditUnavailableError when closed,
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
        """See :meth:`AuditReader.get`."""
        with self._lock:
            self._usable()
            idx = self._by_id.get(audit_id)
            if idx is None:
                return None
            row = self._rows[idx]
        if not row.record:
            return None  # archived: its bytes are in its archive bundle
        return decode_stored(row.idx, row.record, row.leaf_hash)

    def entries(self, start: int, end: int) -> list[StoredEntry]:
        """See :meth:`AuditReader.entries`."""
        start, end = check_range(start, end)
        with self._lock:
            self._usable()
            rows = [(r.idx, r.record, r.leaf_hash) for r in self._rows[start:end]]
        return entries_checked(rows)

    def search(self, query: SearchQuery) -> list[tuple[int, AuditRecord]]:
        """See :meth:`AuditReader.search`."""
        with self._lock:
            self._usable()
            rows = list(self._rows)
        found: list[tuple[int, AuditRecord]] = []
        for row in reversed(rows):
            if row.record and query.matches(row.idx, row.columns):
                found.append(decode_stored(row.idx, row.record, row.leaf_hash))
                if len(found) == query.limit:
                    break
        return found

    def size(self) -> int:
        """See :meth:`AuditReader.size`."""
        with self._lock:
            self._usable()
            return len(self._rows)

    def head(self) -> TreeHead:
        """See :meth:`AuditReader.head`."""
        with self._lock:
            self._usable()
            size, note = self._checkpoints[-1]
            return TreeHead(size, self._sequencer.root(size), note)

    def checkpoint(self, size: int) -> str | None:
        """See :meth:`AuditReader.checkpoint`."""
        with self._lock:
            self._usable()
            matches = [note for s, note in self._checkpoints if s == size]
            return matches[-1] if matches else None

    def checkpoints(self, start_size: int, limit: int = 100) -> list[str]:
        """See :meth:`AuditReader.checkpoints`."""
        with self._lock:
            self._usable()
            return [note for s, note in self._checkpoints if s >= start_size][: max(limit, 1)]

    def _cover(self, size: int) -> None:
        # The tree holds every stored row: it only has to have as many.
        with self._lock:
            self._usable()
            if size > len(self._rows):
                raise ValueError(f"the log has {len(self._rows)} entries, not {size}")

    def add_cosigned(self, size: int, origin: str, note: str) -> None:
        """See :meth:`AuditAppender.add_cosigned`."""
        with self._lock:
            self._usable()
            self._cosigned.append((size, note))

    def cosigned(self, max_size: int | None = None) -> str | None:
        """See :meth:`AuditReader.cosigned`."""
        with self._lock:
            self._usable()
            found = [
                (size, n, note)
                for n, (size, note) in enumerate(self._cosigned)
                if max_size is None or size <= max_size
            ]
        return max(found)[2] if found else None

    def key_history(self) -> list[KeyEpoch]:
        """See :meth:`AuditReader.key_history`."""
        with self._lock:
            self._usable()
            return list(self._keys)

    def rotate(self, new_signer: CheckpointSigner, handover: Callable[[TreeHead], str]) -> KeyEpoch:
        """See :meth:`AuditAppender.rotate`."""
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
        """See :meth:`AuditReader.check`."""
        with self._lock:
            self._usable()
            rows = list(self._rows)
            root = self._root
            upto = self._archived_upto()
        verify_rows(rows, state_size=len(rows), state_root=root, archived_upto=upto)

    def _archived_upto(self) -> int:
        return self._archives[-1].upto if self._archives else 0

    def archives(self) -> list[ArchiveMark]:
        """See :meth:`AuditArchiver.archives`."""
        with self._lock:
            self._usable()
            return list(self._archives)

    def mark_archived(self, mark: ArchiveMark) -> None:
        """See :meth:`AuditArchiver.mark_archived`."""
        with self._lock:
            self._usable()
            check_archive_range(mark, archived_upto=self._archived_upto(), size=len(self._rows))
            self._archives.append(mark)
            for idx in range(mark.start, mark.upto):
                row = self._rows[idx]
                blank = row.columns._replace(
                    department=None, system=None, purpose=None, datasets="", sql=None
                )
                self._rows[idx] = StoredRow(idx, blank, b"", row.leaf_hash)

    def close(self) -> None:
        """See :meth:`AuditReader.close`. Idempotent."""
        with self._lock:
            self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
