"""Group commit: many requests' audit records, one durable transaction and one signature.

A request thread calls :meth:`GroupCommitter.append` and blocks until its record is
durably committed *and* covered by a signed checkpoint; it then gets a
:class:`~gateway.audit.receipt.Receipt`. One writer thread per process takes whatever
records are waiting (up to ``max_batch``), optionally lingers ``max_wait_s`` for more,
and appends them with :meth:`AuditStore.append_batch`. While one batch is being fsync'd
the next one fills up, so under load the cost of a commit and a signature is shared by
every record in the batch, and at low load a lone request pays no waiting time.

Fail closed: if the batch cannot be committed, every request in it gets
AuditUnavailableError (503, no data); a request whose batch did not finish within
``timeout_s`` gets the same, even if its record is committed later - at worst a record
exists for a response that was never sent, never the reverse.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Protocol

from gateway.audit.receipt import Receipt
from gateway.audit.record import AuditRecord
from gateway.audit.store.codec import encode_record
from gateway.audit.store.protocol import (
    Appended,
    AuditReader,
    AuditStore,
    EncodedRecord,
    TreeHead,
    unavailable,
)
from gateway.errors import AuditUnavailableError

__all__ = ["AuditWriter", "BatchStats", "GroupCommitter", "disclosable", "receipt_for"]


class AuditWriter(Protocol):
    """What the request path needs of the audit log: append, durably, and get a receipt."""

    def append(self, record: AuditRecord) -> Receipt:
        """Commit ``record`` (durable and signed) and return its receipt. Raises
        AuditUnavailableError; then no data may leave."""
        ...


@dataclass(slots=True)
class BatchStats:
    """Counters for operators and benchmarks (read without a lock: indicative only)."""

    batches: int = 0
    records: int = 0
    largest: int = 0
    failures: int = 0


#: A queued record, whether its receipt may carry the record's text, and its future.
_Pending = tuple[EncodedRecord, bool, "Future[Receipt]"]


class GroupCommitter:
    """Batches appends to ``store``; see the module docstring."""

    def __init__(
        self,
        store: AuditStore,
        *,
        max_batch: int = 256,
        max_wait_s: float = 0.0,
        timeout_s: float = 10.0,
        cosign: Callable[[TreeHead], TreeHead] | None = None,
    ) -> None:
        """``cosign`` (quorum mode, :meth:`gateway.audit.witnessing.Witnessing.cosign_batch`)
        turns each batch's head into one with enough witness cosignatures before any of
        its receipts is handed out; it raises AuditUnavailableError otherwise."""
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.store = store
        self._max_batch = max_batch
        self._max_wait_s = max(0.0, max_wait_s)
        self._timeout_s = timeout_s
        self._cosign = cosign
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = -1
        self._closed = False
        self.stats = BatchStats()

    def append(self, record: AuditRecord) -> Receipt:
        """Queue ``record`` and wait for its receipt. Raises AuditUnavailableError."""
        # Encoded here, once, in the request's thread: a bad record fails alone (not its
        # whole batch), and the single writer thread only stores and signs.
        encoded = encode_record(record)
        future: Future[Receipt] = Future()
        self._ensure_writer()
        self._queue.put((encoded, disclosable(record), future))
        try:
            return future.result(timeout=self._timeout_s)
        except FutureTimeout as exc:
            raise unavailable(exc, "audit batch did not commit in time") from exc

    def close(self) -> None:
        """Stop the writer after the records already queued; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread if self._pid == os.getpid() else None
        self._queue.put(None)
        if thread is not None:
            thread.join(timeout=self._timeout_s)

    # -- writer ------------------------------------------------------------------------

    def _ensure_writer(self) -> None:
        with self._lock:
            if self._closed:
                raise unavailable(None, "audit committer is closed")
            # A forked child (a server worker) has no writer thread, and a writer killed by
            # a bug would leave every later request waiting out its timeout: start one.
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="audit-group-commit", daemon=True
                )
                self._thread.start()

    def _collect(self, first: _Pending) -> tuple[list[_Pending], bool]:
        batch = [first]
        stop = False
        deadline = time.monotonic() + self._max_wait_s
        while len(batch) < self._max_batch:
            try:
                remaining = deadline - time.monotonic()
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if item is None:
                stop = True
                break
            batch.append(item)
        return batch, stop

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._collect(first)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Pending]) -> None:
        live = [(r, d, f) for r, d, f in batch if f.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            appended = self.store.append_batch([record for record, _, _ in live])
            if self._cosign is not None:
                appended = Appended(appended.first, appended.count, self._cosign(appended.head))
            receipts = self._receipts(appended, [(record, shown) for record, shown, _ in live])
        except Exception as exc:
            self.stats.failures += 1
            error = (
                exc
                if isinstance(exc, AuditUnavailableError)
                else unavailable(exc, "audit batch failed")
            )
            for _, _, future in live:
                future.set_exception(error)
            return
        self.stats.batches += 1
        self.stats.records += len(live)
        self.stats.largest = max(self.stats.largest, len(live))
        for (_, _, future), receipt in zip(live, receipts, strict=True):
            future.set_result(receipt)

    def _receipts(
        self, appended: Appended, records: list[tuple[EncodedRecord, bool]]
    ) -> list[Receipt]:
        return [
            receipt_for(
                self.store,
                appended.head,
                appended.first + i,
                enc.columns.audit_id,
                enc.leaf,
                record=enc.data if shown else None,
            )
            for i, (enc, shown) in enumerate(records)
        ]


def disclosable(record: AuditRecord) -> bool:
    """Whether the record's full text may travel in its receipt to whoever made the
    request: not when it holds a diagnostic (``internal_reason`` may quote a database
    error, which can echo hidden values; it is never shown to consumers)."""
    return record.internal_reason is None


def receipt_for(
    store: AuditReader,
    head: TreeHead,
    index: int,
    audit_id: str,
    leaf_hash: bytes,
    *,
    record: bytes | None = None,
) -> Receipt:
    """The receipt of the entry at ``index``: its audit path to the signed ``head``,
    carrying ``record`` (the leaf's canonical bytes) when its reader may see it."""
    return Receipt(
        # The origin the checkpoint itself names (a rotation may follow at any moment).
        origin=head.checkpoint.split("\n", 1)[0],
        index=index,
        audit_id=audit_id,
        leaf_hash=leaf_hash,
        checkpoint=head.checkpoint,
        inclusion_proof=tuple(store.inclusion_proof(index, head.size)),
        record=record,
    )
