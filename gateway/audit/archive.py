"""Retention: records past the retention period move to signed archive bundles.

``gateway audit archive`` runs :func:`archive_expired`. For the oldest records not yet
archived whose ``time`` is before the cut-off (now minus the retention, default 1,096
days), in chunks of at most ``max_records``, it

1. writes an evidence bundle (:func:`~gateway.audit.bundle.build_bundle`: every record
   with its inclusion proof to the current signed head, plus the latest cosigned
   checkpoint) to ``<dir>/audit-archive-<start>-<last>.json``, through a temporary file
   that is fsync'd and renamed;
2. reads the file back and verifies it with the offline verifier against the log's
   pinned key, and checks that it holds exactly the records of the range with the leaf
   hashes the live log stores;
3. only then records the archive (its name, SHA-256 and head) and removes the records'
   bytes and searchable copies from the live store, in one transaction
   (:meth:`~gateway.audit.store.protocol.AuditArchiver.mark_archived`).

The leaves and every checkpoint stay: the live log still verifies (a complete export
carries archived entries as their leaf hashes), later receipts and proofs are
unchanged, and an archived record is proven by its archive bundle alone (``gateway audit
verify <archive> --key <audit-log.vkey>``). Nothing is removed without a verified archive;
a failure at any step leaves the live store as it was (a file already written stays and
is overwritten by the next run).

Archives cover a prefix of the log (records are appended in time order), so the archive
mark is one number and a search never has to ask which records are gone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final, Protocol, cast

from gateway.audit.bundle import build_bundle
from gateway.audit.record import AuditRecord, format_time
from gateway.audit.store.protocol import ArchiveMark, AuditArchiver, AuditReader
from gateway.audit.verify.bundle import verify_bundle_json
from gateway.durable import write_durably
from gateway.errors import AuditUnavailableError
from gateway.tlog.note import Verifier

__all__ = ["ArchivePlan", "ArchiveStore", "archivable", "archive_expired", "plan_archive"]

#: Records per archive file: bounded memory (measured: ~20 MB of file and ~220 MB peak
#: RSS per 10,000 records, most of it the JSON document and its verification).
DEFAULT_MAX_RECORDS: Final = 10_000
#: Records read per statement while looking for the cut-off.
_SCAN: Final = 5_000


class ArchiveStore(AuditReader, AuditArchiver, Protocol):
    """A store that can be read and archived (the SQL and memory stores)."""


def archivable(store: AuditReader) -> ArchiveStore:
    """``store`` as an :class:`ArchiveStore` (every store the gateway opens is one)."""
    if not hasattr(store, "mark_archived") or not hasattr(store, "archives"):
        raise AuditUnavailableError(f"{type(store).__name__} cannot archive records")
    return cast(ArchiveStore, store)


@dataclass(frozen=True, slots=True)
class ArchivePlan:
    """What a run would archive: records ``start .. upto-1`` (none when equal)."""

    start: int
    upto: int
    cutoff: str

    @property
    def count(self) -> int:
        return self.upto - self.start


def plan_archive(store: ArchiveStore, *, now: datetime, retention_days: int) -> ArchivePlan:
    """The records past retention not archived yet: from the archive mark up to the first
    record whose time is not before ``now - retention_days`` (a prefix, in index order)."""
    cutoff = format_time(now - timedelta(days=retention_days))
    marks = store.archives()
    start = marks[-1].upto if marks else 0
    size = store.head().size
    upto = start
    while upto < size:
        chunk = store.entries(upto, min(size, upto + _SCAN))
        for entry in chunk:
            if AuditRecord.from_canonical(entry.record).time >= cutoff:
                return ArchivePlan(start, upto, cutoff)
            upto += 1
    return ArchivePlan(start, upto, cutoff)


def _archive_one(
    store: ArchiveStore,
    start: int,
    upto: int,
    directory: Path,
    pinned: Sequence[Verifier],
    info: dict[str, object],
) -> ArchiveMark:
    entries = store.entries(start, upto)
    if [e.idx for e in entries] != list(range(start, upto)):
        raise AuditUnavailableError(f"could not read records {start}..{upto - 1} to archive")
    bundle = build_bundle(store, entries)
    bundle["archive"] = {**info, "start": start, "upto": upto}
    data = json.dumps(bundle, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    path = directory / f"audit-archive-{start:012d}-{upto - 1:012d}.json"
    write_durably(path, data)
    # What is on disk, not what was meant to be written, is what must verify.
    kept = path.read_bytes()
    report = verify_bundle_json(kept, pinned)
    if not report.ok:
        failures = "; ".join(c.detail for c in report.failures())
        raise AuditUnavailableError(f"the archive {path} does not verify: {failures}")
    leaves = {e.idx: e.leaf_hash for e in entries}
    written = json.loads(kept)["entries"]
    if [e["index"] for e in written] != list(range(start, upto)) or any(
        hashlib.sha256(b"\x00" + e["record"].encode("utf-8")).digest() != leaves[e["index"]]
        for e in written
    ):
        raise AuditUnavailableError(f"the archive {path} does not hold records {start}..{upto - 1}")
    return ArchiveMark(
        start=start,
        upto=upto,
        name=path.name,
        sha256=hashlib.sha256(kept).hexdigest(),
        archived_at=str(info["archived_at"]),
        checkpoint=str(bundle["checkpoint"]),
    )


def archive_expired(
    store: ArchiveStore,
    directory: Path,
    pinned: Sequence[Verifier],
    *,
    now: datetime,
    retention_days: int,
    max_records: int = DEFAULT_MAX_RECORDS,
    progress: Callable[[ArchiveMark], None] = lambda _mark: None,
) -> list[ArchiveMark]:
    """Archive every record past retention (see the module doc); returns the archives
    made, oldest first. Raises AuditUnavailableError (nothing removed for the failing
    chunk) when a file cannot be written or does not verify."""
    plan = plan_archive(store, now=now, retention_days=retention_days)
    directory.mkdir(parents=True, exist_ok=True)
    info: dict[str, object] = {
        "archived_at": format_time(now),
        "cutoff": plan.cutoff,
        "retention_days": retention_days,
    }
    made: list[ArchiveMark] = []
    start = plan.start
    while start < plan.upto:
        upto = min(plan.upto, start + max_records)
        mark = _archive_one(store, start, upto, directory, pinned, info)
        store.mark_archived(mark)
        made.append(mark)
        progress(mark)
        start = upto
    return made
