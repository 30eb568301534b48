"""Group commit: receipts for every waiter, failures for every waiter, never a hang."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from gateway.audit.commit import GroupCommitter
from gateway.audit.receipt import Receipt
from gateway.audit.store.memory import MemoryAuditStore
from gateway.errors import AuditUnavailableError
from gateway.tlog.checkpoint import open_checkpoint
from gateway.tlog.rfc6962 import verify_inclusion
from tests.unit.audit.support import make_record, test_signer


def test_concurrent_appends_get_verifiable_receipts_in_shared_batches() -> None:
    signer = test_signer()
    store = MemoryAuditStore(signer)
    committer = GroupCommitter(store, max_wait_s=0.002)
    receipts: list[Receipt] = []
    lock = threading.Lock()

    def work(k: int) -> None:
        for i in range(20):
            receipt = committer.append(make_record(1000 * k + i))
            with lock:
                receipts.append(receipt)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    committer.close()
    assert len(receipts) == 160 == store.size()
    assert sorted(r.index for r in receipts) == list(range(160))
    assert committer.stats.batches < 160  # records shared transactions and signatures
    for receipt in receipts:
        checkpoint, _ = open_checkpoint(receipt.checkpoint, [signer.verifier])
        verify_inclusion(
            receipt.leaf_hash,
            receipt.index,
            checkpoint.size,
            receipt.inclusion_proof,
            checkpoint.root_hash,
        )


def test_a_failing_store_fails_every_waiter_and_writes_nothing() -> None:
    store = MemoryAuditStore(test_signer())
    store.unavailable = True
    committer = GroupCommitter(store)
    with pytest.raises(AuditUnavailableError):
        committer.append(make_record(1))
    store.unavailable = False
    assert store.size() == 0
    assert committer.append(make_record(2)).index == 0
    committer.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_writer_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryAuditStore(test_signer())
    committer = GroupCommitter(store, timeout_s=0.5)
    original = GroupCommitter._commit
    calls: list[int] = []

    def die_once(self: GroupCommitter, batch: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise SystemExit  # a bug that kills the writer thread outright
        original(self, batch)

    monkeypatch.setattr(GroupCommitter, "_commit", die_once)
    with pytest.raises(AuditUnavailableError):
        committer.append(make_record(1))  # its writer died: times out, 503
    assert committer.append(make_record(2)).index == 0  # a new writer serves the next
    committer.close()


def test_closed_committer_refuses() -> None:
    committer = GroupCommitter(MemoryAuditStore(test_signer()))
    committer.close()
    with pytest.raises(AuditUnavailableError):
        committer.append(make_record(1))
