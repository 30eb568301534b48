"""The offline verifier against real logs and real attacks on them.

Each attack is done the way an operator with database access (and, where it says so,
the signing key) would do it, on a log built by the real stores; the verifier must fail
with a message naming what happened, and the untampered evidence must pass.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import functools
import hashlib
import io
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.audit.bundle import build_bundle, checkpoint_size, full_log_bundle
from gateway.audit.evidence import EvidenceKeys, write_audit_secret
from gateway.audit.receipt import Receipt, attach_receipt, receipt_in_document
from gateway.audit.record import AuditRecord, leaf_hash_of
from gateway.audit.rotation import Handover, handover_text, open_handover, sign_handover
from gateway.audit.signing import CheckpointSigner
from gateway.audit.store.memory import MemoryAuditStore
from gateway.audit.store.protocol import Appended, AuditStore
from gateway.audit.store.sqlite import open_sqlite_store
from gateway.audit.stream import STREAM_PREFIX, write_stream
from gateway.audit.verify import (
    Report,
    trusted_keys,
    verify_body,
    verify_bundle,
    verify_bundle_json,
    verify_checkpoint,
    verify_receipt,
)
from gateway.audit.verify.stream import verify_stream
from gateway.cli.audit import audit
from gateway.tlog.checkpoint import cosign_checkpoint
from gateway.tlog.cosignature import ALG_COSIGNATURE_V1
from gateway.tlog.note import Signer, Verifier, generate_key, sign_note
from gateway.tlog.rfc6962 import MerkleTree
from tests.unit.audit.support import make_record

ORIGIN = "audit.verify.test/1"
#: Batch sizes: checkpoints at 7, 20, 30, 42 and 50 (and 0, the empty log's).
BATCHES = (7, 13, 10, 12, 8)


def new_signer(origin: str = ORIGIN) -> CheckpointSigner:
    skey, _ = generate_key(origin)
    return CheckpointSigner(Signer.parse(skey))


def new_witness(name: str) -> tuple[Signer, Verifier]:
    skey, vkey = generate_key(name, alg=ALG_COSIGNATURE_V1)
    return Signer.parse(skey), Verifier.parse(vkey)


def result_bytes(n: int, tag: str = "") -> bytes:
    """The exact bytes of a query result as the gateway would serialise it."""
    doc = {"columns": ["name", "district"], "rows": [[f"person {n}{tag}", "海淀区"]]}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def receipts_for(
    store: AuditStore, appended: Appended, records: list[AuditRecord]
) -> list[Receipt]:
    """Receipts exactly as gateway/audit/commit.py builds them."""
    head = appended.head
    origin = head.checkpoint.split("\n", 1)[0]
    return [
        Receipt(
            origin=origin,
            index=appended.first + i,
            audit_id=record.audit_id,
            leaf_hash=record.leaf_hash(),
            checkpoint=head.checkpoint,
            inclusion_proof=tuple(store.inclusion_proof(appended.first + i, head.size)),
            record=record.canonical_bytes(),
        )
        for i, record in enumerate(records)
    ]


@dataclass
class Log:
    """A log under test and everything its consumers kept."""

    store: AuditStore
    signer: CheckpointSigner
    records: list[AuditRecord] = field(default_factory=list)
    results: list[bytes] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)

    @property
    def key(self) -> Verifier:
        return self.signer.verifier

    def append(self, batches: tuple[int, ...] = BATCHES, tag: str = "") -> None:
        for count in batches:
            start = len(self.records)
            results = [result_bytes(start + i, tag) for i in range(count)]
            records = [
                make_record(
                    start + i,
                    request_id=f"req-{tag}{start + i}",
                    response_sha256=hashlib.sha256(r).hexdigest(),
                )
                for i, r in enumerate(results)
            ]
            appended = self.store.append_batch(records)
            self.records.extend(records)
            self.results.extend(results)
            self.receipts.extend(receipts_for(self.store, appended, records))

    def body(self, index: int) -> bytes:
        """The response body the consumer of entry ``index`` kept."""
        return attach_receipt(self.results[index], self.receipts[index])

    def held(self, size: int) -> str:
        note = self.store.checkpoint(size)
        assert note is not None
        return note


@pytest.fixture(params=["memory", "sqlite"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Log]:
    signer = new_signer()
    store: AuditStore
    if request.param == "memory":
        store = MemoryAuditStore(signer)
    else:
        store = open_sqlite_store(tmp_path / "audit.sqlite", signer)
    built = Log(store, signer)
    built.append()
    try:
        yield built
    finally:
        store.close()


def partial(log: Log, start: int = 38, end: int = 45) -> dict[str, Any]:
    """Entries start..end-1 with consistency proofs from the checkpoints of 20 and 42."""
    return build_bundle(
        log.store, log.store.entries(start, end), earlier=[log.held(20), log.held(42)]
    )


def details(report: Report) -> str:
    return "\n".join(check.detail for check in report.failures())


def assert_fails(report: Report, *fragments: str) -> None:
    assert not report.ok, report.render()
    text = details(report)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{report.render()}"


def edit_record(text: str, **changes: Any) -> str:
    """Change fields and re-canonicalise, as a careful forger would."""
    record = AuditRecord.from_canonical(text.encode())
    return dataclasses.replace(record, **changes).canonical_bytes().decode()


def resign_head(bundle: dict[str, Any], signer: CheckpointSigner, size: int) -> None:
    """Truncate a complete bundle to ``size`` entries and sign a new head for it with
    ``signer``, dropping the later checkpoints (an operator who rolled back and re-signed)."""
    bundle["entries"] = bundle["entries"][:size]
    leaves = [leaf_hash_of(e["record"].encode()) for e in bundle["entries"]]
    bundle["checkpoint"] = signer.sign(size, MerkleTree(leaves).root())
    bundle["checkpoints"] = [
        c for c in bundle["checkpoints"] if checkpoint_size(c["checkpoint"]) <= size
    ]


# ------------------------------------------------------------------------ untampered


class TestUntampered:
    def test_complete_bundle_with_all_evidence_passes(self, log: Log) -> None:
        bundle = full_log_bundle(log.store)
        report = verify_bundle(
            bundle,
            [log.key],
            receipts=[log.receipts[3], log.receipts[41], log.receipts[49]],
            checkpoints=[log.held(0), log.held(20), log.held(50)],
            body=log.body(41),
        )
        assert report.ok, report.render()
        names = {check.name for check in report.checks}
        assert {"bundle", "keys", "checkpoint", "records", "indices", "size", "root"} <= names
        assert {"checkpoints", "held checkpoint", "receipt", "body"} <= names
        assert report.render().endswith(f"VERIFIED: all {len(report.checks)} checks passed")
        assert report.render("zh").splitlines()[-1].startswith("核验通过")

    def test_partial_bundle_with_all_evidence_passes(self, log: Log) -> None:
        report = verify_bundle(
            partial(log),
            [log.key],
            receipts=[log.receipts[41], log.receipts[10]],
            checkpoints=[log.held(20), log.held(42), log.held(50), log.held(0)],
            body=log.body(41),
        )
        assert report.ok, report.render()
        assert "inclusion" in {check.name for check in report.checks}

    def test_receipt_body_and_checkpoint_alone(self, log: Log) -> None:
        assert verify_receipt(log.receipts[41], [log.key]).ok
        assert verify_body(log.body(41), [log.key]).ok
        assert verify_checkpoint(log.held(42), [log.key]).ok

    def test_empty_report_is_not_a_success(self) -> None:
        report = Report(())
        assert not report.ok
        assert report.render() == "FAILED: nothing was verified"


# --------------------------------------------------------------------- edited record


class TestEditedRecord:
    def test_recanonicalised_edit_breaks_the_rebuilt_root(self, log: Log) -> None:
        bundle = full_log_bundle(log.store)
        entry = bundle["entries"][41]
        entry["record"] = edit_record(entry["record"], officer="李四")
        report = verify_bundle(bundle, [log.key])
        assert_fails(
            report,
            "does not have the checkpoint's root (size 50)",
            # the earlier checkpoints narrow it down: 42 covers entry 41, 30 does not
            "earlier checkpoint of size 42 (origin audit.verify.test/1) is not a state of this "
            "log: the log's first 42 entries have another root",
        )
        assert "size 30 " not in details(report)

    def test_recanonicalised_edit_fails_inclusion_in_partial_bundle(self, log: Log) -> None:
        bundle = partial(log)
        entry = next(e for e in bundle["entries"] if e["index"] == 41)
        entry["record"] = edit_record(entry["record"], row_count=0)
        report = verify_bundle(bundle, [log.key])
        assert_fails(report, "entry 41: record does not match the log (inclusion proof fails")
        assert len(report.failures()) == 1

    def test_non_canonical_edit_is_named(self, log: Log) -> None:
        bundle = partial(log)
        entry = next(e for e in bundle["entries"] if e["index"] == 41)
        entry["record"] = entry["record"].replace('"status":200', '"status": 200')
        report = verify_bundle(bundle, [log.key])
        assert_fails(
            report,
            "entry 41: the record text is not a canonical audit record",
            "entry 41: record does not match the log",
        )

    def test_edited_record_differs_from_the_receipt(self, log: Log) -> None:
        bundle = full_log_bundle(log.store)
        bundle["entries"][41]["record"] = edit_record(bundle["entries"][41]["record"], status=403)
        report = verify_bundle(bundle, [log.key], receipts=[log.receipts[41]])
        assert_fails(
            report,
            "entry 41 differs from what your receipt proves: the record was altered or removed",
        )


# -------------------------------------------------------------------- deleted record


class TestDeletedRecord:
    def test_gap_in_a_complete_bundle(self, log: Log) -> None:
        bundle = full_log_bundle(log.store)
        del bundle["entries"][17]
        report = verify_bundle(bundle, [log.key])
        assert_fails(
            report,
            "entry 17 missing: indices jump from 16 to 18",
            "bundle holds 49 entries but the checkpoint says size 50",
        )

    def test_several_deleted(self, log: Log) -> None:
        bundle = full_log_bundle(log.store)
        del bundle["entries"][17:20]
        del bundle["entries"][0]
        report = verify_bundle(bundle, [log.key])
        assert_fails(
            report,
            "entries 17..19 missing: indices jump from 16 to 20",
            "entry 0 missing: indices start at 1",
        )

    def test_deleted_and_rebuilt_log_is_exposed_by_a_receipt(self, log: Log) -> None:
        # The operator removes entry 17 and rebuilds the whole log with the real key:
        # every later record moves down one index, every checkpoint is re-signed.
        rebuilt = MemoryAuditStore(log.signer)
        kept = log.records[:17] + log.records[18:]
        rebuilt.append_batch(kept[:20])
        rebuilt.append_batch(kept[20:])
        receipt = log.receipts[17]  # checkpoint of size 20
        bundle = build_bundle(rebuilt, rebuilt.entries(15, 20), earlier=[receipt.checkpoint])
        # Self-consistent: only evidence from before the rebuild can expose it.
        assert verify_bundle(build_bundle(rebuilt, rebuilt.entries(15, 20)), [log.key]).ok
        report = verify_bundle(bundle, [log.key], receipts=[receipt])
        assert_fails(
            report,
            "entry 17 differs from what your receipt proves: the record was altered or removed",
            "the log was rolled back or forked: your checkpoint of size 20",
        )


# --------------------------------------------------------------------- reordered pair


class TestReordered:
    def test_swapped_keeping_indices(self, log: Log) -> None:
        bundle = full_log_bundle(log.store)
        entries = bundle["entries"]
        entries[20], entries[21] = entries[21], entries[20]
        assert_fails(
            verify_bundle(bundle, [log.key]),
            "entries out of order: entry 20 comes after entry 21",
        )

    def test_swapped_and_renumbered(self, log: Log) -> None:
        bundle = full_log_bundle(log.store)
        entries = bundle["entries"]
        entries[20]["record"], entries[21]["record"] = entries[21]["record"], entries[20]["record"]
        report = verify_bundle(bundle, [log.key])
        assert_fails(report, "does not have the checkpoint's root (size 50)")
        assert "indices" not in {c.name for c in report.failures()}


# ------------------------------------------------------------------------- cut tail


class TestCutTail:
    def test_truncated_bundle_with_the_old_head(self, log: Log) -> None:
        bundle = full_log_bundle(log.store)
        del bundle["entries"][40:]
        report = verify_bundle(bundle, [log.key], receipts=[log.receipts[45]])
        assert_fails(
            report,
            "bundle holds 40 entries but the checkpoint says size 50",
            "entry 45 is missing: your receipt proves the log held it",
            "the log's tail was cut",
        )

    def test_truncated_and_resigned_is_exposed_by_what_consumers_kept(self, log: Log) -> None:
        bundle = full_log_bundle(log.store)
        resign_head(bundle, log.signer, 40)
        # On its own the shortened log is perfectly consistent: it is signed by the real
        # key. Only evidence held outside the operator's reach shows the cut.
        assert verify_bundle(bundle, [log.key]).ok
        report = verify_bundle(bundle, [log.key], receipts=[log.receipts[45]])
        assert_fails(
            report,
            "the log was cut: you hold a checkpoint of size 50 but the log now has size 40",
            "entry 45 is missing",
        )
        report = verify_bundle(bundle, [log.key], checkpoints=[log.held(42)])
        assert_fails(
            report, "the log was cut: you hold a checkpoint of size 42 but the log now has size 40"
        )

    def test_cut_partial_bundle_against_held_checkpoint(self, log: Log) -> None:
        # The log cut to 40 and re-signed; a partial bundle exported from it.
        cut = MemoryAuditStore(log.signer)
        cut.append_batch(log.records[:40])
        bundle = build_bundle(cut, cut.entries(30, 35), earlier=[log.held(20)])
        report = verify_bundle(bundle, [log.key], receipts=[log.receipts[41]])
        assert_fails(
            report, "the log was cut: you hold a checkpoint of size 42 but the log now has size 40"
        )

    def test_carried_checkpoint_beyond_the_head_proves_a_cut(self, log: Log) -> None:
        # build_bundle cannot prove consistency from a size above the head, so such a
        # checkpoint travels without a proof; it is evidence of the cut by itself.
        cut = MemoryAuditStore(log.signer)
        cut.append_batch(log.records[:40])
        bundle = build_bundle(cut, cut.entries(30, 35))
        bundle["checkpoints"].append({"checkpoint": log.held(42), "consistency_proof": None})
        assert_fails(
            verify_bundle(bundle, [log.key]),
            "earlier checkpoint of size 42 (origin audit.verify.test/1) is not a state of "
            "this log: it is larger than the log's head of size 40; the log was cut",
        )


# --------------------------------------------------------------------------- rollback


def _backup(src: Path, dst: Path) -> None:
    """A consistent copy of a live SQLite file (what a nightly backup does)."""
    source, target = sqlite3.connect(src), sqlite3.connect(dst)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


class TestRollback:
    @pytest.fixture
    def restored(self, tmp_path: Path) -> Iterator[tuple[Log, Log]]:
        """(the original log as consumers saw it, the log after restoring a backup taken
        at size 20 and appending different records past the consumers' checkpoints)."""
        signer = new_signer()
        path, copy_path = tmp_path / "audit.sqlite", tmp_path / "backup.sqlite"
        original = Log(open_sqlite_store(path, signer), signer)
        original.append((7, 13))
        _backup(path, copy_path)
        original.append((10, 5))  # size 35: consumers got receipts and checkpoints
        original.store.close()
        restored = Log(open_sqlite_store(copy_path, signer), signer)
        restored.records = original.records[:20]
        restored.results = original.results[:20]
        restored.receipts = original.receipts[:20]
        restored.append((10, 10), tag="-after-restore")  # size 40 > 35
        try:
            yield original, restored
        finally:
            restored.store.close()

    def test_restored_log_verifies_on_its_own(self, restored: tuple[Log, Log]) -> None:
        _, after = restored
        assert verify_bundle(full_log_bundle(after.store), [after.key]).ok

    def test_held_checkpoint_exposes_rollback_in_complete_bundle(
        self, restored: tuple[Log, Log]
    ) -> None:
        before, after = restored
        held = before.receipts[30].checkpoint  # size 35
        assert checkpoint_size(held) == 35
        report = verify_bundle(
            full_log_bundle(after.store),
            [after.key],
            checkpoints=[held],
            receipts=[before.receipts[30]],
            body=before.body(30),
        )
        assert_fails(
            report,
            "the log was rolled back or forked: your checkpoint of size 35",
            "entry 30 differs from what your receipt proves",
        )

    def test_held_checkpoint_exposes_rollback_in_partial_bundle(
        self, restored: tuple[Log, Log]
    ) -> None:
        before, after = restored
        held = before.receipts[30].checkpoint
        bundle = build_bundle(after.store, after.store.entries(28, 32), earlier=[held])
        report = verify_bundle(bundle, [after.key], checkpoints=[held])
        assert_fails(report, "the log was rolled back or forked: your checkpoint of size 35")
        # Evidence from before the backup point is still consistent: no false alarm.
        early = before.receipts[17].checkpoint
        assert checkpoint_size(early) == 20
        bundle = build_bundle(after.store, after.store.entries(17, 18), earlier=[early])
        report = verify_bundle(
            bundle, [after.key], checkpoints=[early], receipts=[before.receipts[17]]
        )
        assert report.ok, report.render()

    def test_missing_consistency_proof_is_named(self, restored: tuple[Log, Log]) -> None:
        before, after = restored
        bundle = build_bundle(after.store, after.store.entries(28, 32))
        report = verify_bundle(bundle, [after.key], checkpoints=[before.receipts[30].checkpoint])
        assert_fails(
            report,
            "no consistency proof for your checkpoint of size 35; export a bundle with it",
        )


# ----------------------------------------------------------------------- foreign keys


class TestUntrustedKey:
    def test_head_resigned_with_another_key_of_the_same_origin(self, log: Log) -> None:
        bundle = full_log_bundle(log.store)
        head = log.store.head()
        bundle["checkpoint"] = new_signer().sign(head.size, head.root)
        assert_fails(
            verify_bundle(bundle, [log.key]),
            f"checkpoint (size 50) is signed by no trusted key (origin {ORIGIN})",
        )

    def test_head_signed_for_another_origin(self, log: Log) -> None:
        bundle = full_log_bundle(log.store)
        head = log.store.head()
        bundle["checkpoint"] = new_signer("audit.evil.test/1").sign(head.size, head.root)
        assert_fails(
            verify_bundle(bundle, [log.key]),
            "checkpoint (size 50) is signed by no trusted key (origin audit.evil.test/1)",
        )

    def test_bundle_keys_do_not_override_the_pinned_key(self, log: Log) -> None:
        evil = new_signer()
        bundle = full_log_bundle(log.store)
        head = log.store.head()
        bundle["keys"][0]["vkey"] = evil.verifier.encode()
        bundle["checkpoint"] = evil.sign(head.size, head.root)
        assert_fails(
            verify_bundle(bundle, [log.key]),
            f"the bundle's key for origin {ORIGIN} is not the key you pinned for it",
            "is signed by no trusted key",
        )

    def test_receipt_signed_by_an_unknown_key(self, log: Log) -> None:
        receipt = log.receipts[41]
        head = log.store.head()
        forged = dataclasses.replace(receipt, checkpoint=new_signer().sign(head.size, head.root))
        assert_fails(verify_receipt(forged, [log.key]), "is signed by no trusted key")
        assert_fails(verify_receipt(receipt, [new_signer().verifier]), "is signed by no trusted")


# --------------------------------------------------------------------------- rotation


class TestKeyRotation:
    @pytest.fixture
    def rotated(self) -> tuple[Log, CheckpointSigner, CheckpointSigner]:
        old, new = new_signer("audit.verify.test/old"), new_signer("audit.verify.test/new")
        log = Log(MemoryAuditStore(old), old)
        log.append((7, 13))
        log.store.rotate(new, lambda head: sign_handover(old, new, head))
        log.signer = new
        log.append((6, 9))
        return log, old, new

    def test_pinning_the_old_key_trusts_the_handover(
        self, rotated: tuple[Log, CheckpointSigner, CheckpointSigner]
    ) -> None:
        log, old, new = rotated
        pinned = [old.verifier]
        keys = full_log_bundle(log.store)["keys"]
        assert trusted_keys(pinned, keys) == {
            old.origin: (old.verifier, 0),
            new.origin: (new.verifier, 20),
        }
        report = verify_bundle(
            full_log_bundle(log.store),
            pinned,
            receipts=[log.receipts[3], log.receipts[30]],
            checkpoints=[log.held(7)],
        )
        assert report.ok, report.render()
        assert "trusted through a hand-over" in report.render()
        report = verify_bundle(
            build_bundle(
                log.store, log.store.entries(18, 23), earlier=[log.held(20), log.held(26)]
            ),
            pinned,
            receipts=[log.receipts[19], log.receipts[21]],
            body=log.body(21),
        )
        assert report.ok, report.render()

    def test_handover_signed_only_by_the_new_key_is_refused(
        self, rotated: tuple[Log, CheckpointSigner, CheckpointSigner]
    ) -> None:
        log, old, new = rotated
        bundle = full_log_bundle(log.store)
        real, _ = open_handover(bundle["keys"][1]["handover"], old.verifier)
        bundle["keys"][1]["handover"] = sign_note(handover_text(real), [new.note_signer])
        assert trusted_keys([old.verifier], bundle["keys"]) == {old.origin: (old.verifier, 0)}
        assert_fails(
            verify_bundle(bundle, [old.verifier]),
            f"hand-over from {old.origin} to {new.origin} at size 20 does not verify",
            f"checkpoint (size 35) is signed by no trusted key (origin {new.origin})",
        )

    def test_handover_to_an_attackers_key_is_refused(
        self, rotated: tuple[Log, CheckpointSigner, CheckpointSigner]
    ) -> None:
        # The attacker has neither key: a hand-over they sign with a key named like the
        # old origin does not verify against the pinned old key.
        log, old, new = rotated
        evil_old, evil_new = new_signer(old.origin), new_signer(new.origin)
        bundle = full_log_bundle(log.store)
        root = MerkleTree([r.leaf_hash() for r in log.records[:20]]).root()
        forged = Handover(old.origin, new.origin, 20, root, evil_new.verifier.encode())
        bundle["keys"][1]["handover"] = sign_note(
            handover_text(forged), [evil_old.note_signer, evil_new.note_signer]
        )
        bundle["keys"][1]["vkey"] = evil_new.verifier.encode()
        assert_fails(verify_bundle(bundle, [old.verifier]), "does not verify")

    def test_handover_naming_another_root_is_exposed(
        self, rotated: tuple[Log, CheckpointSigner, CheckpointSigner]
    ) -> None:
        # Both keys sign a hand-over whose root is not the log's (a rewritten past).
        log, old, new = rotated
        bundle = full_log_bundle(log.store)
        wrong = Handover(old.origin, new.origin, 20, b"\x07" * 32, new.verifier.encode())
        bundle["keys"][1]["handover"] = sign_note(
            handover_text(wrong), [old.note_signer, new.note_signer]
        )
        assert_fails(
            verify_bundle(bundle, [old.verifier]),
            f"hand-over from {old.origin} to {new.origin} at size 20 names root",
        )

    def test_old_key_signing_past_the_handover_is_refused(
        self, rotated: tuple[Log, CheckpointSigner, CheckpointSigner]
    ) -> None:
        # A leaked old key keeps signing heads after the hand-over: refused.
        log, old, _ = rotated
        bundle = full_log_bundle(log.store)
        head = log.store.head()
        bundle["checkpoint"] = old.sign(head.size, head.root)
        assert_fails(
            verify_bundle(bundle, [old.verifier]),
            f"has size 35, but the key of origin {old.origin} signs the log only from size 0 "
            "to size 20",
        )


# ------------------------------------------------------------------------------ body


class TestBody:
    def test_true_body_passes_and_modified_body_fails(self, log: Log) -> None:
        bundle = partial(log)
        assert verify_bundle(bundle, [log.key], body=log.body(41)).ok
        forged = attach_receipt(
            log.results[41].replace(b"person 41", b"person 99"), log.receipts[41]
        )
        assert_fails(
            verify_bundle(bundle, [log.key], body=forged),
            "the body you kept is not what the log says was delivered (entry 41",
        )

    def test_body_needs_its_entry_in_the_bundle(self, log: Log) -> None:
        assert_fails(
            verify_bundle(partial(log), [log.key], body=log.body(10)),
            "the bundle has no entry 10, so the body cannot be checked",
        )

    def test_body_without_receipt(self, log: Log) -> None:
        assert_fails(
            verify_bundle(partial(log), [log.key], body=log.results[41]),
            "the body you kept carries no usable receipt",
        )
        assert not verify_body(b"not json", [log.key]).ok


class TestSelfContainedReceipt:
    """A receipt carries its record's text: the kept body is checked with no bundle."""

    def test_every_one_byte_change_of_the_result_fails_without_a_bundle(self, log: Log) -> None:
        body = log.body(41)
        assert verify_body(body, [log.key]).ok
        # Every byte of the result part of the body (its closing brace is the body's last).
        for at in range(len(log.results[41]) - 1):
            changed = bytearray(body)
            changed[at] ^= 0x01
            assert not verify_body(bytes(changed), [log.key]).ok, at

    def test_body_kept_apart_from_its_receipt(self, log: Log) -> None:
        receipt = log.receipts[41]
        assert verify_body(log.results[41], [log.key], receipt).ok
        assert_fails(
            verify_body(log.results[41] + b" ", [log.key], receipt),
            "the body you kept is not what the log says was delivered (entry 41",
        )
        # Another entry's receipt does not vouch for this body.
        assert not verify_body(log.results[41], [log.key], log.receipts[40]).ok

    def test_a_forged_record_in_the_receipt_fails(self, log: Log) -> None:
        # The forger puts the digest of an altered body into the receipt's record.
        forged_result = log.results[41].replace(b"person 41", b"person 99")
        record = dataclasses.replace(
            log.records[41], response_sha256=hashlib.sha256(forged_result).hexdigest()
        )
        receipt = dataclasses.replace(log.receipts[41], record=record.canonical_bytes())
        assert_fails(
            verify_body(attach_receipt(forged_result, receipt), [log.key]),
            "the record it carries is not the entry it proves",
        )

    def test_a_receipt_without_record_cannot_vouch_for_a_body(self, log: Log) -> None:
        bare = dataclasses.replace(log.receipts[41], record=None)
        assert verify_receipt(bare, [log.key]).ok
        assert_fails(
            verify_body(attach_receipt(log.results[41], bare), [log.key]),
            "the receipt carries no record",
        )

    def test_version_1_receipts_are_read(self, log: Log) -> None:
        obj = log.receipts[41].to_json()
        obj["v"] = 1
        del obj["record"]
        assert Receipt.from_json(obj).record is None

    def test_refused_body_is_a_receipt_and_a_checkable_body(self, log: Log) -> None:
        refusal = make_record(
            len(log.records), request_id="req-refused", outcome="refused", status=403
        )
        refusal = dataclasses.replace(
            refusal, error_code="access_denied", reason="no", response_sha256=None, rows_root=None
        )
        appended = log.store.append_batch([refusal])
        (receipt,) = receipts_for(log.store, appended, [refusal])
        # As gateway/api/problems.py writes it: ordinary json.dumps spacing.
        document = {
            "type": "https://gateway/problems/access_denied",
            "status": 403,
            "code": "access_denied",
            "detail": "no",
            "audit_id": refusal.audit_id,
            "receipt": receipt.to_json(),
        }
        body = json.dumps(document, ensure_ascii=False).encode()
        assert receipt_in_document(body) == receipt
        report = verify_body(body, [log.key])
        assert report.ok, report.render()
        document["status"] = 200
        assert_fails(verify_body(json.dumps(document).encode(), [log.key]), "the refusal you kept")
        assert verify_bundle(full_log_bundle(log.store), [log.key], body=body).ok


# ------------------------------------------------------------------------- witnesses


class TestWitnesses:
    def test_witness_policy(self, log: Log) -> None:
        bundle = full_log_bundle(log.store)
        witness, witness_key = new_witness("witness.test/a")
        stranger, _ = new_witness("witness.test/b")
        _, absent_key = new_witness("witness.test/c")
        bundle["checkpoint"] = cosign_checkpoint(bundle["checkpoint"], witness, 1_790_000_000)
        bundle["checkpoint"] = cosign_checkpoint(bundle["checkpoint"], stranger, 1_790_000_000)
        one = verify_bundle(bundle, [log.key], witnesses=[witness_key], min_witnesses=1)
        assert one.ok, one.render()
        assert_fails(
            verify_bundle(bundle, [log.key], witnesses=[witness_key, absent_key], min_witnesses=2),
            "no checkpoint in the bundle carries 2 valid cosignature(s) by the witnesses you "
            "listed",
        )
        # The stranger's cosignature is on the note, but it is not a listed witness.
        assert_fails(
            verify_bundle(bundle, [log.key], witnesses=[absent_key], min_witnesses=1),
            "no checkpoint in the bundle carries 1 valid cosignature(s)",
        )

    def test_forged_cosignature_fails(self, log: Log) -> None:
        bundle = full_log_bundle(log.store)
        witness, witness_key = new_witness("witness.test/a")
        note = cosign_checkpoint(bundle["checkpoint"], witness, 1_790_000_000)
        # Corrupt the last byte of the cosignature: same key name and hash, bad signature.
        head, line, _ = note.rsplit("\n", 2)
        prefix, b64 = line.rsplit(" ", 1)
        raw = bytearray(base64.b64decode(b64))
        raw[-1] ^= 1
        bundle["checkpoint"] = f"{head}\n{prefix} {base64.b64encode(raw).decode()}\n"
        assert_fails(
            verify_bundle(bundle, [log.key], witnesses=[witness_key], min_witnesses=1),
            "the cosignature by witness witness.test/a does not verify",
            "no checkpoint in the bundle carries 1 valid cosignature(s)",
        )

    def test_the_latest_cosigned_checkpoint_covers_the_log(self, log: Log) -> None:
        """Eventual cosigning: the store's cosigned checkpoint travels in every bundle;
        newer entries are accepted only up to --max-unwitnessed."""
        witness, witness_key = new_witness("witness.test/a")
        cosigned = cosign_checkpoint(log.held(42), witness, 1_790_000_000)
        log.store.add_cosigned(42, ORIGIN, cosigned)
        for bundle in (full_log_bundle(log.store), partial(log)):
            options: dict[str, Any] = {"witnesses": [witness_key], "min_witnesses": 1}
            assert_fails(
                verify_bundle(bundle, [log.key], **options),
                "entries 42..49 (8) are not covered by a checkpoint your witnesses cosigned",
            )
            report = verify_bundle(bundle, [log.key], **options, max_unwitnessed=8)
            assert report.ok, report.render()

    def test_a_rewritten_and_resigned_log_contradicts_its_stored_cosignature(
        self, log: Log
    ) -> None:
        """The operator holds the log key: rewrites entry 10, rebuilds the tree and
        re-signs every checkpoint. The cosignature the witness gave earlier exposes it."""
        witness, witness_key = new_witness("witness.test/a")
        log.store.add_cosigned(42, ORIGIN, cosign_checkpoint(log.held(42), witness, 1))
        bundle = full_log_bundle(log.store)
        bundle["entries"][10]["record"] = edit_record(bundle["entries"][10]["record"], row_count=0)
        leaves = [leaf_hash_of(e["record"].encode()) for e in bundle["entries"]]
        tree = MerkleTree(leaves)
        bundle["checkpoint"] = log.signer.sign(50, tree.root())
        bundle["checkpoints"] = [
            {"checkpoint": log.signer.sign(size, tree.root(size))} for size in (7, 20, 30)
        ] + [c for c in bundle["checkpoints"] if "witness.test/a" in c["checkpoint"]]
        assert verify_bundle(
            {**bundle, "checkpoints": bundle["checkpoints"][:-1]}, [log.key]
        ).ok  # without the witness, the rewrite verifies
        assert_fails(
            verify_bundle(bundle, [log.key], witnesses=[witness_key], min_witnesses=1),
            "earlier checkpoint of size 42",
            "not a state of this log",
            "no checkpoint in the bundle carries 1 valid cosignature(s)",
        )

    def test_held_checkpoints_need_the_cosignatures_too(self, log: Log) -> None:
        witness, witness_key = new_witness("witness.test/a")
        bundle = full_log_bundle(log.store)
        bundle["checkpoint"] = cosign_checkpoint(bundle["checkpoint"], witness, 1)
        options: dict[str, Any] = {"witnesses": [witness_key], "min_witnesses": 1}
        assert verify_bundle(bundle, [log.key], **options).ok
        assert_fails(
            verify_bundle(bundle, [log.key], checkpoints=[log.held(20)], **options),
            "the checkpoint carries 0 valid cosignature(s)",
        )
        held = cosign_checkpoint(log.held(20), witness, 1)
        assert verify_bundle(bundle, [log.key], checkpoints=[held], **options).ok


def test_pinned_key_problems_are_reported(log: Log) -> None:
    bundle = full_log_bundle(log.store)
    _, witness_key = new_witness("witness.test/a")
    assert_fails(verify_bundle(bundle, [log.key, witness_key]), "is a witness (cosignature) key")
    assert_fails(
        verify_bundle(bundle, [log.key, new_signer().verifier]),
        f"two different keys are pinned for origin {ORIGIN}",
    )
    assert trusted_keys([], bundle["keys"]) == {}
    assert_fails(verify_bundle(bundle, []), "is not pinned and not handed over from a trusted key")


# --------------------------------------------------------------------- malformed input


def _mutations() -> list[tuple[str, Any, str]]:
    def set_(path: list[Any], value: Any) -> Any:
        def apply(bundle: dict[str, Any]) -> Any:
            target: Any = bundle
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
            return bundle

        return apply

    return [
        ("not an object", lambda b: [b], "the bundle is not a JSON object"),
        ("wrong type", set_(["type"], "x"), "not an evidence bundle"),
        ("wrong version", set_(["v"], 2), "unsupported bundle version 2"),
        ("entries missing", lambda b: {k: v for k, v in b.items() if k != "entries"}, "malformed"),
        ("checkpoint number", set_(["checkpoint"], 5), '"checkpoint" is not a signed note'),
        ("keys missing", set_(["keys"], None), "the bundle lists no key epochs"),
        ("key garbage", set_(["keys", 0, "vkey"], "garbage"), "key epoch 0 has an unusable key"),
        ("key epoch str", set_(["keys", 0], "x"), "key epoch 0 is not an object"),
        ("entry str", set_(["entries", 0], "x"), "entry at position 0 is not an object"),
        ("index bool", set_(["entries", 1, "index"], True), "position 1 has no valid index"),
        ("record int", set_(["entries", 2, "record"], 2), "entry 2 has no record text"),
        ("surrogate", set_(["entries", 2, "record"], "\ud800"), "entry 2: the record text is not"),
        ("proof b64", set_(["entries", 0, "inclusion_proof"], ["!!"]), "not valid base64"),
        ("proof short", set_(["entries", 0, "inclusion_proof"], ["AAAA"]), "3 bytes, not 32"),
        ("proof type", set_(["entries", 0, "inclusion_proof"], "AAAA"), "is not a list"),
        ("extra str", set_(["checkpoints", 0], "x"), "earlier checkpoint 0 of the bundle is not"),
        ("extra note", set_(["checkpoints", 0, "checkpoint"], "x"), "is not a signed checkpoint"),
        ("extra proof", set_(["checkpoints", 0, "consistency_proof"], None), "is not a list"),
        ("complete str", set_(["complete"], "yes"), '"complete" is not true or false'),
    ]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [pytest.param(m, msg, id=name) for name, m, msg in _mutations()],
)
def test_malformed_bundles_are_reported_not_raised(mutate: Any, message: str) -> None:
    signer = new_signer()
    store = MemoryAuditStore(signer)
    store.append_batch([make_record(i) for i in range(5)])
    bundle = mutate(build_bundle(store, store.entries(0, 5), earlier=[store.checkpoint(0) or ""]))
    assert_fails(verify_bundle(bundle, [signer.verifier]), message)


def test_malformed_json_and_receipts() -> None:
    signer = new_signer()
    assert_fails(verify_bundle_json(b"{not json", [signer.verifier]), "not valid JSON")
    assert_fails(verify_bundle_json(b"\xff\xfe\x00", [signer.verifier]), "not valid JSON")
    assert_fails(verify_bundle({}, []), "not an evidence bundle")
    store = MemoryAuditStore(signer)
    appended = store.append_batch([make_record(0), make_record(1)])
    receipt = receipts_for(store, appended, [make_record(0), make_record(1)])[1]
    bad = dataclasses.replace(receipt, inclusion_proof=(b"\x00" * 32,))
    assert_fails(verify_receipt(bad, [signer.verifier]), "inclusion proof does not verify")
    assert_fails(
        verify_receipt(dataclasses.replace(receipt, checkpoint="junk"), [signer.verifier]),
        "is not a signed checkpoint",
    )
    assert_fails(
        verify_receipt(dataclasses.replace(receipt, origin="other.test/x"), [signer.verifier]),
        "no trusted key for its origin other.test/x",
    )


# -------------------------------------------------------------------- property: bits


@functools.cache
def _flip_base() -> tuple[str, str, str]:
    """A complete and a partial bundle (JSON texts) and the pinned key, built once for all
    examples (hypothesis reruns the test body, and a log per example would be slow)."""
    signer = new_signer()
    log = Log(MemoryAuditStore(signer), signer)
    log.append((3, 5, 4))
    partial = build_bundle(log.store, log.store.entries(6, 10), earlier=[log.held(3)])
    return (
        json.dumps(full_log_bundle(log.store), ensure_ascii=False),
        json.dumps(partial, ensure_ascii=False),
        signer.verifier.encode(),
    )


_PLACEHOLDER = "@@flip-me@@"


def _flip_targets(bundle: dict[str, Any]) -> list[tuple[Any, Any]]:
    """(container, key) of every string whose bits the attacker may flip: the head, the
    record texts, the earlier checkpoints, and every proof hash."""
    targets: list[tuple[Any, Any]] = [(bundle, "checkpoint")]
    for entry in bundle["entries"]:
        targets.append((entry, "record"))
        proof = entry.get("inclusion_proof", [])
        targets += [(proof, i) for i in range(len(proof))]
    for extra in bundle["checkpoints"]:
        targets.append((extra, "checkpoint"))
        proof = extra.get("consistency_proof", [])
        targets += [(proof, i) for i in range(len(proof))]
    return targets


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.booleans())
def test_any_single_bit_flip_fails_verification(data: st.DataObject, complete: bool) -> None:
    complete_text, partial_text, vkey = _flip_base()
    bundle = json.loads(complete_text if complete else partial_text)
    key = Verifier.parse(vkey)
    assert verify_bundle(bundle, [key]).ok
    container, member = data.draw(st.sampled_from(_flip_targets(bundle)))
    literal = json.dumps(container[member], ensure_ascii=False).encode()
    bit = data.draw(st.integers(0, len(literal) * 8 - 1))
    flipped = bytearray(literal)
    flipped[bit // 8] ^= 1 << (bit % 8)
    # Flip the bit in the serialised document (quotes and escapes included), not in the
    # parsed value: that is what an attacker editing the file does.
    container[member] = _PLACEHOLDER
    document = json.dumps(bundle, ensure_ascii=False).encode()
    document = document.replace(json.dumps(_PLACEHOLDER).encode(), bytes(flipped), 1)
    report = verify_bundle_json(document, [key])
    assert not report.ok, report.render()


# ------------------------------------------------------------------------------- CLI


@pytest.fixture
def files(log: Log, tmp_path: Path) -> dict[str, Path]:
    """The untampered evidence on disk, plus a tampered bundle."""
    out = {
        "bundle": tmp_path / "bundle.json",
        "tampered": tmp_path / "tampered.json",
        "key": tmp_path / "audit-log.vkey",
        "receipt": tmp_path / "receipt-41.json",
        "body": tmp_path / "response-41.json",
        "checkpoint": tmp_path / "head-20.note",
    }
    bundle = full_log_bundle(log.store)
    out["bundle"].write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
    tampered = copy.deepcopy(bundle)
    del tampered["entries"][17]
    out["tampered"].write_text(json.dumps(tampered), encoding="utf-8")
    out["key"].write_text(f"# the log's key\n{log.key.encode()}\n", encoding="utf-8")
    out["receipt"].write_bytes(log.receipts[41].to_bytes())
    out["body"].write_bytes(log.body(41))
    out["checkpoint"].write_text(log.held(20), encoding="utf-8")
    return out


def run(*args: str) -> Any:
    return CliRunner().invoke(audit, list(args), catch_exceptions=False)


class TestCli:
    def test_verify_passes(self, files: dict[str, Path], log: Log) -> None:
        result = run(
            "verify",
            str(files["bundle"]),
            "--key",
            str(files["key"]),
            "--receipt",
            str(files["receipt"]),
            "--receipt",
            str(files["body"]),
            "--checkpoint",
            str(files["checkpoint"]),
            "--body",
            str(files["body"]),
        )
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[-2].startswith("VERIFIED: all")
        assert lines[-1].startswith("核验通过")

    def test_verify_inline_key_and_lang_zh(self, files: dict[str, Path], log: Log) -> None:
        result = run("verify", str(files["bundle"]), "--key", log.key.encode(), "--lang", "zh")
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[-2].startswith("核验通过")
        assert result.output.splitlines()[-1].startswith("VERIFIED")

    def test_verify_fails_with_exit_1(self, files: dict[str, Path]) -> None:
        result = run("verify", str(files["tampered"]), "--key", str(files["key"]), "--lang", "zh")
        assert result.exit_code == 1, result.output
        assert "✘ entry 17 missing: indices jump from 16 to 18" in result.output
        lines = result.output.splitlines()
        # The gap, the size, and the three earlier checkpoints past index 17.
        assert lines[-2] == "核验失败：5 个问题"
        assert lines[-1] == "FAILED: 5 problem(s)"

    def test_verify_without_bundle(self, files: dict[str, Path], log: Log, tmp_path: Path) -> None:
        result = run(
            "verify",
            "--key",
            str(files["key"]),
            "--receipt",
            str(files["receipt"]),
            "--body",
            str(files["body"]),
            "--checkpoint",
            str(files["checkpoint"]),
        )
        assert result.exit_code == 0, result.output
        other = tmp_path / "other.vkey"
        other.write_text(new_signer().verifier.encode(), encoding="utf-8")
        result = run("verify", "--key", str(other), "--receipt", str(files["receipt"]))
        assert result.exit_code == 1, result.output
        assert "FAILED: 1 problem(s)" in result.output

    def test_body_and_receipt_without_bundle_fail_on_one_changed_byte(
        self, files: dict[str, Path], log: Log, tmp_path: Path
    ) -> None:
        kept = tmp_path / "result.json"
        kept.write_bytes(log.results[41])
        args = ["verify", "--key", str(files["key"]), "--receipt", str(files["receipt"])]
        assert run(*args, "--body", str(kept)).exit_code == 0
        kept.write_bytes(log.results[41].replace(b"41", b"42"))
        result = run(*args, "--body", str(kept))
        assert result.exit_code == 1, result.output
        assert "not what the log says was delivered" in result.output

    def test_unreadable_evidence_is_a_failure(self, files: dict[str, Path], tmp_path: Path) -> None:
        junk = tmp_path / "junk.json"
        junk.write_bytes(b"\x00garbage")
        result = run("verify", str(junk), "--key", str(files["key"]))
        assert result.exit_code == 1
        assert "the bundle is not valid JSON" in result.output
        result = run("verify", "--key", str(files["key"]), "--receipt", str(junk))
        assert result.exit_code == 1
        assert "not a receipt or a body with one" in result.output

    @pytest.mark.parametrize(
        "args",
        [
            ["verify"],  # no key
            ["verify", "--key", "not-a-key"],
            ["verify", "--key", "{key}"],  # nothing to verify
            ["verify", "{bundle}", "--key", "{key}", "--lang", "fr"],
            ["verify", "--key", "{key}", "--receipt", "{receipt}", "--min-witnesses", "1"],
            ["verify", "/nonexistent/bundle.json", "--key", "{key}"],
        ],
    )
    def test_usage_errors_exit_2(self, files: dict[str, Path], args: list[str]) -> None:
        paths = {name: str(path) for name, path in files.items()}
        result = run(*[a.format(**paths) for a in args])
        assert result.exit_code == 2, result.output

    def test_help_explains_itself(self) -> None:
        for command in (["--help"], ["verify", "--help"], ["lookup-id", "--help"]):
            result = run(*command)
            assert result.exit_code == 0
            assert "Examples" in result.output

    def test_lookup_id(self, tmp_path: Path) -> None:
        write_audit_secret(tmp_path)
        from gateway.audit.evidence import load_audit_secret

        redactor = EvidenceKeys.from_secret(load_audit_secret(tmp_path)).redactor()
        expected = redactor.token("cn_id", "11010519491231002X")
        result = run(
            "lookup-id", "110105 19491231 002x", "--kind", "cn_id", "--key-dir", str(tmp_path)
        )
        assert result.exit_code == 0, result.output
        assert result.output.strip() == expected
        result = run("lookup-id", "11010519491231002X", "--key-dir", str(tmp_path))
        assert result.output.strip() == expected
        assert (
            run("lookup-id", "12345", "--kind", "phone", "--key-dir", str(tmp_path)).exit_code == 2
        )
        empty = tmp_path / "empty"
        empty.mkdir()
        result = run("lookup-id", "11010519491231002X", "--key-dir", str(empty))
        assert result.exit_code == 1
        assert "no audit secret" in result.output


# --------------------------------------------------------------------------- streams


def stream_of(log: Log, max_checkpoints: int = 1_000) -> bytes:
    out = io.BytesIO()
    write_stream(log.store, out, max_checkpoints=max_checkpoints)
    return out.getvalue()


def verify_stream_bytes(data: bytes, log: Log, **options: Any) -> Report:
    report, _ = verify_stream(io.BytesIO(data), [log.key], **options)
    return report


class TestStream:
    def test_untampered_stream_with_all_evidence_passes(self, log: Log) -> None:
        data = stream_of(log)
        assert data.startswith(STREAM_PREFIX)
        assert data.count(b"\n") == 51  # the header and 50 records
        for decode in (False, True):
            report = verify_stream_bytes(
                data,
                log,
                receipts=[log.receipts[3], log.receipts[41]],
                checkpoints=[log.held(7), log.held(42)],
                decode_records=decode,
            )
            assert report.ok, report.render()

    def test_worker_processes_agree_and_find_a_non_canonical_line(self, log: Log) -> None:
        data = stream_of(log)
        options: dict[str, Any] = {"receipts": [log.receipts[0]], "decode_records": True}
        report = verify_stream_bytes(data, log, jobs=2, **options)
        assert report.ok, report.render()
        lines = data.split(b"\n")
        lines[6] = lines[6].replace(b'":', b'": ', 1)  # entry 5: valid JSON, not canonical
        assert_fails(
            verify_stream_bytes(b"\n".join(lines), log, jobs=2, **options),
            "entry 5 is not a canonical record",
            "does not have the checkpoint's root",
        )

    def test_the_checkpoint_series_is_bounded(self, log: Log) -> None:
        header = json.loads(stream_of(log, max_checkpoints=2).split(b"\n", 1)[0])
        sizes = [checkpoint_size(note) for note in header["checkpoints"]]
        assert sizes == [0, 30]  # of 0, 7, 20, 30, 42 (the head, 50, is apart)
        # A receipt whose checkpoint (size 42) is not in the series is still proven.
        report = verify_stream_bytes(
            stream_of(log, max_checkpoints=2), log, receipts=[log.receipts[41]]
        )
        assert report.ok, report.render()

    def test_a_complete_bundle_carries_the_same_bounded_series(self, log: Log) -> None:
        bundle = full_log_bundle(log.store, max_checkpoints=2)
        sizes = [checkpoint_size(c["checkpoint"]) for c in bundle["checkpoints"]]
        assert sizes == [0, 30]
        report = verify_bundle(
            bundle, [log.key], receipts=[log.receipts[41]], checkpoints=[log.held(20)]
        )
        assert report.ok, report.render()

    def test_an_edited_record_line_fails_the_root(self, log: Log) -> None:
        lines = stream_of(log).split(b"\n")
        lines[11] = edit_record(lines[11].decode(), row_count=999).encode()
        report = verify_stream_bytes(b"\n".join(lines), log, receipts=[log.receipts[10]])
        assert_fails(
            report,
            "does not have the checkpoint's root",
            "entry 10 differs from what your receipt proves",
        )

    def test_a_deleted_line_and_a_cut_tail_are_found(self, log: Log) -> None:
        lines = stream_of(log).split(b"\n")
        assert_fails(
            verify_stream_bytes(b"\n".join(lines[:20] + lines[21:]), log),
            "the stream holds 49 entries",
        )
        assert_fails(
            verify_stream_bytes(b"\n".join(lines[:31]) + b"\n", log, receipts=[log.receipts[41]]),
            "the stream holds 30 entries",
        )

    def test_witnessed_stream(self, log: Log) -> None:
        witness, witness_key = new_witness("witness.test/a")
        log.store.add_cosigned(42, ORIGIN, cosign_checkpoint(log.held(42), witness, 1))
        options: dict[str, Any] = {"witnesses": [witness_key], "min_witnesses": 1}
        assert verify_stream_bytes(stream_of(log), log, **options, max_unwitnessed=8).ok
        assert_fails(verify_stream_bytes(stream_of(log), log, **options), "entries 42..49 (8)")

    def test_garbage_is_a_report(self, log: Log) -> None:
        assert_fails(verify_stream_bytes(b"not json\n", log), "could not be processed")
        assert_fails(verify_stream_bytes(b'{"type":"x"}\n', log), "not an evidence stream")

    def test_cli_export_shape_and_verify(self, log: Log, tmp_path: Path) -> None:
        path = tmp_path / "log.jsonl"
        path.write_bytes(stream_of(log))
        key = tmp_path / "log.vkey"
        key.write_text(log.key.encode())
        result = run("verify", str(path), "--key", str(key), "--fast")
        assert result.exit_code == 0, result.output
        assert "50 records hashed in" in result.output
        result = run("verify", str(path), "--key", str(key))
        assert result.exit_code == 0 and "50 records hashed and decoded" in result.output
