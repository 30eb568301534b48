"""Sequencing: the store's Merkle tree, kept in step with storage, and batch sealing.

Every store appends a batch in one write transaction that holds the log's writer lock:

1. read the stored tree state ``(size, root)``;
2. :meth:`Sequencer.catch_up` reads any entries other writers (another gateway process)
   appended since this process last looked, re-derives their leaf hashes from the stored
   bytes and checks that the tree it now holds has exactly the stored root. A stored
   state that disagrees with the stored entries (rows edited, removed, or the state
   rolled back) stops the append: the log is never extended on top of a doubtful past;
3. insert the batch at indices ``size .. size+n-1`` and read the bytes back;
4. :meth:`Sequencer.seal` hashes *what was read back* (not what was meant to be written),
   extends the tree and signs a checkpoint for the new size;
5. advance the state by compare-and-swap from the old ``(size, root)`` and store the
   checkpoint, then COMMIT. If anything fails, :meth:`Sequencer.rollback` drops the
   uncommitted leaves from the in-memory tree.

So a checkpoint exists exactly when its entries are durable, and it commits to the bytes
the database holds.
"""

from __future__ import annotations

import abc
import hmac
import threading
from collections.abc import Callable, Iterable, Sequence

from gateway.audit.record import AuditRecord, leaf_hash_of
from gateway.audit.signing import CheckpointSigner
from gateway.audit.store.protocol import (
    Appended,
    EncodedRecord,
    TreeHead,
    check_consistency_args,
    check_proof_args,
    unavailable,
)
from gateway.tlog.rfc6962 import MerkleTree

__all__ = ["SequencedStore", "Sequencer"]


class Sequencer:
    """One process's view of the log's Merkle tree plus its checkpoint signer.

    Thread-safe. Stores call :meth:`catch_up`, :meth:`seal` and :meth:`rollback` only while
    holding their write lock; proof readers may call the other methods at any time.
    """

    def __init__(self, signer: CheckpointSigner) -> None:
        self.signer = signer
        self._tree = MerkleTree()
        self._lock = threading.RLock()

    @property
    def size(self) -> int:
        with self._lock:
            return self._tree.size

    def catch_up(
        self,
        state_size: int,
        state_root: bytes,
        read_entries: Callable[[int, int], Iterable[tuple[int, bytes, bytes]]],
    ) -> None:
        """Bring the tree to ``state_size`` from storage and check it has ``state_root``.

        ``read_entries(start, end)`` yields ``(idx, record bytes, stored leaf hash)`` for
        ``start <= idx < end`` in order. Raises AuditUnavailableError (naming the index)
        on a gap, a leaf hash that does not match its bytes, a root that differs, or a
        stored size below what this process already saw committed (a rollback).
        """
        with self._lock:
            known = self._tree.size
            if state_size < known:
                raise unavailable(
                    None,
                    f"audit_state size {state_size} is below the {known} entries this "
                    "process saw committed: the log was rolled back or truncated",
                )
            expected = known
            for idx, data, stored_leaf in read_entries(known, state_size):
                if idx != expected:
                    raise unavailable(None, f"audit log is not contiguous at index {expected}")
                # An archived entry (no bytes left) stands for its stored leaf; check()
                # proves that only what the archives cover lost its bytes.
                leaf = leaf_hash_of(bytes(data)) if data else bytes(stored_leaf)
                if not hmac.compare_digest(leaf, bytes(stored_leaf)):
                    self._tree.truncate(known)
                    raise unavailable(
                        None, f"audit log entry {idx}: leaf hash does not match its bytes"
                    )
                self._tree.append(leaf)
                expected += 1
            if expected != state_size:
                self._tree.truncate(known)
                raise unavailable(
                    None, f"audit_state size {state_size} but {expected} entries stored"
                )
            if not hmac.compare_digest(self._tree.root(), state_root):
                self._tree.truncate(known)
                raise unavailable(
                    None, f"audit_state root at size {state_size} does not match the stored entries"
                )

    def seal(self, first: int, written: Sequence[bytes], stored: Sequence[bytes]) -> TreeHead:
        """Extend the tree with the batch read back from storage and sign its head.

        ``written`` are the bytes meant to be stored, ``stored`` those read back; they
        must be identical (a driver or trigger that altered them is caught here).
        """
        with self._lock:
            if first != self._tree.size:
                raise unavailable(
                    None, f"batch starts at {first} but the tree has {self._tree.size}"
                )
            if len(written) != len(stored):
                raise unavailable(None, "audit batch read back a different number of entries")
            for i, (want, got) in enumerate(zip(written, stored, strict=True)):
                if want != got:
                    self._tree.truncate(first)
                    raise unavailable(None, f"audit log entry {first + i} was stored differently")
                self._tree.append(leaf_hash_of(bytes(got)))
            size = self._tree.size
            root = self._tree.root()
            try:
                note = self.signer.sign(size, root)
            except Exception as exc:
                self._tree.truncate(first)
                raise unavailable(
                    None, f"cannot sign the checkpoint: {type(exc).__name__}"
                ) from exc
            return TreeHead(size, root, note)

    def rollback(self, size: int) -> None:
        """Forget leaves at ``size`` and beyond (their transaction did not commit)."""
        with self._lock:
            if self._tree.size > size:
                self._tree.truncate(size)

    def root(self, size: int) -> bytes:
        with self._lock:
            return self._tree.root(size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        with self._lock:
            return self._tree.inclusion_proof(index, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        with self._lock:
            return self._tree.consistency_proof(old_size, new_size)

    def leaf(self, index: int) -> bytes:
        with self._lock:
            return self._tree.leaf(index)


class SequencedStore(abc.ABC):
    """What every store built on a :class:`Sequencer` shares: its origin, ``append`` as a
    batch of one, and proofs served from the in-memory tree once that covers the size
    asked for (:meth:`_cover`)."""

    _sequencer: Sequencer

    @property
    def origin(self) -> str:
        return self._sequencer.signer.origin

    @abc.abstractmethod
    def append_batch(self, records: Sequence[AuditRecord | EncodedRecord]) -> Appended:
        """See :meth:`~gateway.audit.store.protocol.AuditAppender.append_batch`."""

    @abc.abstractmethod
    def _cover(self, size: int) -> None:
        """Make the tree cover at least ``size`` committed entries: ValueError if the log
        has fewer, AuditUnavailableError if the store cannot be used."""

    def append(self, record: AuditRecord) -> int:
        """See :meth:`~gateway.audit.store.protocol.AuditAppender.append`."""
        return self.append_batch([record]).first

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """See :meth:`~gateway.audit.store.protocol.AuditReader.inclusion_proof`."""
        check_proof_args(index, size)
        self._cover(size)
        return self._sequencer.inclusion_proof(index, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """See :meth:`~gateway.audit.store.protocol.AuditReader.consistency_proof`."""
        check_consistency_args(old_size, new_size)
        self._cover(new_size)
        return self._sequencer.consistency_proof(old_size, new_size)
