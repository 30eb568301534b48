"""Retention: records past it move to verified archive bundles (gateway/audit/archive.py),
on the memory, SQLite and PostgreSQL stores. The live log keeps verifying, the archives
verify offline, and nothing is removed without a verified archive."""

from __future__ import annotations

import io
import json
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.audit import AuditStore, open_audit_store
from gateway.audit.archive import archivable, archive_expired, plan_archive
from gateway.audit.bundle import build_bundle, full_log_bundle
from gateway.audit.signing import CheckpointSigner
from gateway.audit.store.protocol import SearchQuery
from gateway.audit.stream import write_stream
from gateway.audit.verify.bundle import verify_bundle_json
from gateway.audit.verify.stream import verify_stream
from gateway.errors import AuditUnavailableError, InvalidRequestError
from tests.unit.audit.support import FIXED_NOW, RawLog, make_record, test_signer

#: Record n is n days after FIXED_NOW; "now" is 20 days after, retention 10 days: records
#: 0..9 are past it (record 10 is exactly at the cut-off and stays).
RECORDS = 16
NOW = FIXED_NOW + timedelta(days=20)
RETENTION = 10


def _fill(store: AuditStore) -> list[str]:
    ids = []
    for n in range(RECORDS):
        record = make_record(n * 86_400, department="rsj" if n % 2 else "gaj")
        store.append(record)
        ids.append(record.audit_id)
    return ids


def _verified(data: bytes, signer: CheckpointSigner) -> None:
    report = verify_bundle_json(data, [signer.verifier])
    assert report.ok, [c.detail for c in report.failures()]


def test_archive_moves_expired_records_and_the_log_still_verifies(
    store: AuditStore, signer: CheckpointSigner, tmp_path: Path
) -> None:
    ids = _fill(store)
    head = store.head()
    live_bundle = build_bundle(store, store.entries(12, 14))
    archiver = archivable(store)
    plan = plan_archive(archiver, now=NOW, retention_days=RETENTION)
    assert (plan.start, plan.upto) == (0, 10)

    made = archive_expired(
        archiver, tmp_path, [signer.verifier], now=NOW, retention_days=RETENTION, max_records=4
    )
    assert [(m.start, m.upto) for m in made] == [(0, 4), (4, 8), (8, 10)]
    assert archiver.archives() == made
    # Each archive verifies offline and holds exactly its records.
    for mark in made:
        data = (tmp_path / mark.name).read_bytes()
        _verified(data, signer)
        bundle = json.loads(data)
        assert [e["index"] for e in bundle["entries"]] == list(range(mark.start, mark.upto))
        assert bundle["archive"]["retention_days"] == RETENTION
        assert {json.loads(e["record"])["audit_id"] for e in bundle["entries"]} == set(
            ids[mark.start : mark.upto]
        )

    # The tree is untouched: same head, and proofs made before still verify.
    assert store.head() == head
    store.check()
    _verified(json.dumps(live_bundle).encode(), signer)
    # The live store no longer holds the archived records' bytes or searchable copies.
    assert all(e.archived for e in store.entries(0, 10))
    assert not any(e.archived for e in store.entries(10, RECORDS))
    assert store.get(ids[3]) is None
    assert store.get(ids[12]) is not None
    found = store.search(SearchQuery(limit=100))
    assert sorted(idx for idx, _ in found) == list(range(10, RECORDS))
    assert {idx for idx, _ in store.search(SearchQuery(department="rsj", limit=100))} == {
        i for i in range(10, RECORDS) if i % 2
    }
    # A complete export carries archived entries as leaf hashes, and verifies.
    complete = full_log_bundle(store)
    assert complete["entries"][0] == {
        "index": 0,
        "archived": complete["entries"][0]["archived"],
    }
    _verified(json.dumps(complete).encode(), signer)
    # So does the streamed export.
    out = io.BytesIO()
    write_stream(store, out)
    report, _stats = verify_stream(io.BytesIO(out.getvalue()), [signer.verifier])
    assert report.ok, [c.detail for c in report.failures()]
    # A partial bundle cannot name archived records: their evidence is the archive.
    with pytest.raises(InvalidRequestError, match="archived"):
        build_bundle(store, store.entries(2, 3))
    # The log grows on as before, and a second run archives nothing new yet.
    store.append(make_record(RECORDS * 86_400))
    store.check()
    assert (
        archive_expired(archiver, tmp_path, [signer.verifier], now=NOW, retention_days=RETENTION)
        == []
    )


def test_an_altered_archived_leaf_in_an_export_fails_verification(
    store: AuditStore, signer: CheckpointSigner, tmp_path: Path
) -> None:
    _fill(store)
    archive_expired(
        archivable(store), tmp_path, [signer.verifier], now=NOW, retention_days=RETENTION
    )
    complete = full_log_bundle(store)
    other = complete["entries"][1]["archived"]
    complete["entries"][0]["archived"] = other
    report = verify_bundle_json(json.dumps(complete).encode(), [signer.verifier])
    assert not report.ok
    assert "root" in {c.name for c in report.failures()}


def test_nothing_is_removed_when_the_archive_does_not_verify(
    store: AuditStore, tmp_path: Path
) -> None:
    ids = _fill(store)
    wrong_key = test_signer("another.log/2026").verifier
    with pytest.raises(AuditUnavailableError, match="does not verify"):
        archive_expired(archivable(store), tmp_path, [wrong_key], now=NOW, retention_days=RETENTION)
    assert archivable(store).archives() == []
    assert not any(e.archived for e in store.entries(0, RECORDS))
    assert store.get(ids[0]) is not None
    store.check()


def test_nothing_is_removed_when_the_archive_cannot_be_written(
    store: AuditStore, signer: CheckpointSigner, tmp_path: Path
) -> None:
    ids = _fill(store)
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("x")
    with pytest.raises(OSError):
        archive_expired(
            archivable(store), blocked, [signer.verifier], now=NOW, retention_days=RETENTION
        )
    assert archivable(store).archives() == []
    assert store.get(ids[0]) is not None


def test_the_database_refuses_removals_no_archive_covers(
    durable_location: str, signer: CheckpointSigner, tmp_path: Path
) -> None:
    with closing(open_audit_store(durable_location, signer)) as store:
        _fill(store)
        archive_expired(
            archivable(store), tmp_path, [signer.verifier], now=NOW, retention_days=RETENTION
        )
    raw = RawLog(durable_location)
    blank = (
        "UPDATE {t}audit_log SET record = %s, department = NULL, system = NULL, "
        "purpose = NULL, datasets = '', sql = NULL WHERE idx = %s"
    )
    # A live record cannot lose its bytes, not even the way archiving removes them ...
    with pytest.raises(Exception, match="append-only"):
        raw.query(blank, (b"", 12))
    # ... nor can an archived row be changed otherwise, or any row deleted.
    with pytest.raises(Exception, match="append-only"):
        raw.query("UPDATE {t}audit_log SET leaf_hash = %s WHERE idx = %s", (b"\x00" * 32, 3))
    with pytest.raises(Exception, match="append-only"):
        raw.query("DELETE FROM {t}audit_log WHERE idx = %s", (3,))
    with pytest.raises(Exception, match="append-only"):
        raw.query("DELETE FROM {t}audit_archives")
    with closing(open_audit_store(durable_location, signer)) as store:
        store.check()
        assert len(archivable(store).archives()) == 1


def test_check_finds_a_record_removed_without_an_archive(
    durable_location: str, signer: CheckpointSigner
) -> None:
    with closing(open_audit_store(durable_location, signer)) as store:
        _fill(store)
    raw = RawLog(durable_location)
    # An operator who disables the guard and blanks a record as if it were archived.
    raw.drop_triggers()
    raw.query("UPDATE {t}audit_log SET record = %s WHERE idx = %s", (b"", 5))
    with (
        closing(open_audit_store(durable_location, signer)) as store,
        pytest.raises(AuditUnavailableError, match="no archive covers it"),
    ):
        store.check()
