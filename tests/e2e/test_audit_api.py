"""The evidence a response carries and the auditors' API, over HTTP (SQLite demo).

Each test checks evidence with the published key only (what an outsider holds), never
with the gateway's internals, except where the test is about what is stored.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from gateway.audit.evidence import EvidenceKeys, load_audit_secret
from gateway.audit.receipt import Receipt, split_receipt
from gateway.audit.record import AuditRecord
from gateway.audit.rows import prove_row, verify_row
from gateway.audit.store.memory import MemoryAuditStore
from gateway.audit.store.protocol import Appended, EncodedRecord
from gateway.errors import AuditUnavailableError
from gateway.tlog.checkpoint import open_checkpoint
from gateway.tlog.note import Verifier
from gateway.tlog.rfc6962 import verify_consistency, verify_inclusion
from tests.e2e.harness import ROOT, Gateway, demo_dsn, demo_signer, running_gateway

PEOPLE = "SELECT person_id, gender, district FROM population.people ORDER BY person_id LIMIT 20"


def _valid_cn_id(first17: str) -> str:
    """GB 11643-1999 check character (ISO 7064 MOD 11-2), computed independently."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
    return first17 + "10X98765432"[total % 11]


def _published_verifier(gw: Gateway) -> Verifier:
    keys = gw.get(None, "/v1/audit/keys").json()
    return Verifier.parse(keys["keys"][-1]["vkey"])


def _check_receipt(gw: Gateway, receipt: Receipt) -> int:
    """Verify a receipt with the published key; returns the checkpoint's tree size."""
    checkpoint, _ = open_checkpoint(receipt.checkpoint, [_published_verifier(gw)])
    assert checkpoint.origin == receipt.origin
    verify_inclusion(
        receipt.leaf_hash,
        receipt.index,
        checkpoint.size,
        receipt.inclusion_proof,
        checkpoint.root_hash,
    )
    return checkpoint.size


def test_served_response_carries_a_verifiable_receipt(sqlite_gateway: Gateway) -> None:
    resp = sqlite_gateway.query("rsj-subsidy", PEOPLE)
    assert resp.status_code == 200
    result, receipt = split_receipt(resp.content)
    assert json.loads(resp.content)["receipt"] == receipt.to_json()
    _check_receipt(sqlite_gateway, receipt)
    # The proof part stays small; the record text it carries is the record itself.
    assert len(dataclasses.replace(receipt, record=None).to_bytes()) <= 2048
    index, record = sqlite_gateway.services.audit.get(receipt.audit_id)  # type: ignore[misc]
    assert index == receipt.index
    assert receipt.record == record.canonical_bytes()
    assert record.leaf_hash() == receipt.leaf_hash
    assert record.response_sha256 == hashlib.sha256(result).hexdigest()


def test_a_tampered_receipt_does_not_verify(sqlite_gateway: Gateway) -> None:
    _, receipt = split_receipt(sqlite_gateway.query("rsj-subsidy", PEOPLE).content)
    forged = Receipt(
        receipt.origin,
        receipt.index,
        receipt.audit_id,
        bytes([receipt.leaf_hash[0] ^ 1]) + receipt.leaf_hash[1:],
        receipt.checkpoint,
        receipt.inclusion_proof,
    )
    with pytest.raises(ValueError):
        _check_receipt(sqlite_gateway, forged)


def test_refusal_carries_a_receipt_too(sqlite_gateway: Gateway) -> None:
    resp = sqlite_gateway.query("ybj-insurance", "SELECT address FROM population.people")
    assert resp.status_code == 403
    problem = resp.json()
    receipt = Receipt.from_json(problem["receipt"])
    assert receipt.audit_id == problem["audit_id"]
    _check_receipt(sqlite_gateway, receipt)
    _, record = sqlite_gateway.services.audit.get(receipt.audit_id)  # type: ignore[misc]
    assert record.outcome.value == "refused" and record.leaf_hash() == receipt.leaf_hash


def test_row_commitment_proves_delivered_and_undelivered_rows(sqlite_gateway: Gateway) -> None:
    resp = sqlite_gateway.query("rsj-subsidy", PEOPLE)
    result, receipt = split_receipt(resp.content)
    body = json.loads(result)
    salt = base64.b64decode(body["row_salt"])
    _, record = sqlite_gateway.services.audit.get(receipt.audit_id)  # type: ignore[misc]
    assert record.rows_root is not None
    root = bytes.fromhex(record.rows_root)
    rows: list[list[Any]] = body["rows"]
    assert len(rows) == 20
    delivered = rows[7]
    n = record.row_count
    assert n == 20
    assert verify_row(salt, root, delivered, prove_row(salt, rows, delivered), size=n) is True
    other = [*delivered[:-1], "not-a-district"]
    assert verify_row(salt, root, other, prove_row(salt, rows, other), size=n) is False
    # The salt matters: another response's salt cannot confirm this response's rows.
    with pytest.raises(ValueError):
        verify_row(b"\x00" * 32, root, delivered, prove_row(salt, rows, delivered), size=n)


def test_identifiers_in_sql_are_stored_as_keyed_tokens(sqlite_gateway: Gateway) -> None:
    id_number = _valid_cn_id("37010219900307123")
    resp = sqlite_gateway.query(
        "rsj-subsidy", f"SELECT person_id FROM population.people WHERE id_number = '{id_number}'"
    )
    assert resp.status_code == 200
    _, receipt = split_receipt(resp.content)
    stored = sqlite_gateway.services.audit.entries(receipt.index, receipt.index + 1)[0]
    assert id_number.encode() not in stored.record
    token = EvidenceKeys.from_secret(load_audit_secret(ROOT / "keys" / "demo")).redactor()
    expected = token.token("cn_id", id_number)
    record = AuditRecord.from_canonical(stored.record)
    assert record.sql is not None and expected in record.sql
    assert record.rewritten_sql is not None and id_number not in record.rewritten_sql
    # An auditor who holds the key finds the access by the token.
    found = sqlite_gateway.get("sjj-audit", "/v1/audit/records", q=expected).json()
    assert receipt.audit_id in {item["record"]["audit_id"] for item in found["items"]}


def test_conditional_dataset_access_names_the_grant(sqlite_gateway: Gateway) -> None:
    resp = sqlite_gateway.query("rsj-subsidy", PEOPLE)
    _, receipt = split_receipt(resp.content)
    _, record = sqlite_gateway.services.audit.get(receipt.audit_id)  # type: ignore[misc]
    # population is a conditional dataset: the approved application it was served under
    # is named (the grant of rsj's application for population.people).
    rsj_grants = [
        g.id
        for g in sqlite_gateway.services.admin.grants.grants_of("rsj")
        if "population.people" in g.columns
    ]
    assert len(rsj_grants) == 1
    assert record.grants == (rsj_grants[0],)
    stats = sqlite_gateway.query("tjj-stats", "SELECT COUNT(*) AS n FROM legal_person.enterprises")
    if stats.status_code == 200:
        _, r2 = split_receipt(stats.content)
        _, rec2 = sqlite_gateway.services.audit.get(r2.audit_id)  # type: ignore[misc]
        # legal_person is shared unconditionally: no approval was needed.
        assert rec2.grants == ()


def test_consumers_see_only_their_own_records(sqlite_gateway: Gateway) -> None:
    _, mine = split_receipt(sqlite_gateway.query("rsj-subsidy", PEOPLE).content)
    _, theirs = split_receipt(
        sqlite_gateway.query(
            "ybj-insurance", "SELECT person_id FROM population.people LIMIT 1"
        ).content
    )
    page = sqlite_gateway.get("rsj-subsidy", "/v1/audit/records", limit=1000).json()
    systems = {item["record"]["system"] for item in page["items"]}
    assert systems == {"rsj-subsidy"}
    # Diagnostic text never reaches a consumer.
    assert all(item["record"]["internal_reason"] in (None, "(withheld)") for item in page["items"])
    assert (
        sqlite_gateway.get("rsj-subsidy", f"/v1/audit/records/{mine.audit_id}").status_code == 200
    )
    assert (
        sqlite_gateway.get("rsj-subsidy", f"/v1/audit/records/{theirs.audit_id}").status_code == 404
    )
    asked = sqlite_gateway.get("rsj-subsidy", "/v1/audit/records", system="ybj-insurance")
    assert asked.status_code == 403
    assert (
        sqlite_gateway.get("rsj-subsidy", "/v1/audit/export", audit_id=mine.audit_id).status_code
        == 403
    )


def test_provider_gets_receipts_for_every_access_to_its_datasets(sqlite_gateway: Gateway) -> None:
    served = [
        split_receipt(sqlite_gateway.query(system, sql).content)[1]
        for system, sql in (
            ("rsj-subsidy", PEOPLE),
            ("ybj-insurance", "SELECT person_id FROM population.people LIMIT 2"),
        )
    ]
    page = sqlite_gateway.get(
        "gaj-officer", "/v1/audit/records", dataset="population", limit=1000
    ).json()
    by_id = {item["record"]["audit_id"]: item for item in page["items"]}
    for receipt in served:
        item = by_id[receipt.audit_id]
        fresh = Receipt.from_json(item["receipt"])
        assert fresh.leaf_hash == receipt.leaf_hash and fresh.index == receipt.index
        _check_receipt(sqlite_gateway, fresh)
        # The provider gets the exact record text: it hashes to the receipt's leaf.
        text = item["record_text"].encode("utf-8")
        assert hashlib.sha256(b"\x00" + text).digest() == receipt.leaf_hash
    assert all(
        any(t.startswith("population.") for t in item["record"]["tables"]) for item in page["items"]
    )
    # Not its dataset (subsidies belongs to another department), and not without naming one.
    assert (
        sqlite_gateway.get("gaj-officer", "/v1/audit/records", dataset="subsidies").status_code
        == 403
    )
    assert sqlite_gateway.get("gaj-officer", "/v1/audit/records").status_code == 403


def test_auditor_search_filters(sqlite_gateway: Gateway) -> None:
    sqlite_gateway.query("rsj-subsidy", PEOPLE)
    sqlite_gateway.query("ybj-insurance", "SELECT address FROM population.people")
    for params, check in (
        ({"system": "rsj-subsidy"}, lambda r: r["system"] == "rsj-subsidy"),
        ({"department": "ybj"}, lambda r: r["department"] == "ybj"),
        ({"outcome": "refused"}, lambda r: r["outcome"] == "refused"),
        (
            {"purpose": "medical_insurance_enrollment"},
            lambda r: r["purpose"] == "medical_insurance_enrollment",
        ),
        (
            {"dataset": "population"},
            lambda r: any(t.startswith("population.") for t in r["tables"]),
        ),
        ({"q": "ORDER BY person_id"}, lambda r: "ORDER BY person_id" in (r["sql"] or "")),
    ):
        page = sqlite_gateway.get("sjj-audit", "/v1/audit/records", **params).json()
        assert page["items"], params
        assert all(check(item["record"]) for item in page["items"]), params
    first = sqlite_gateway.get("sjj-audit", "/v1/audit/records", limit=2).json()
    assert "next_before" in first
    older = sqlite_gateway.get(
        "sjj-audit", "/v1/audit/records", limit=2, before=first["next_before"]
    ).json()
    assert max(i["index"] for i in older["items"]) < min(i["index"] for i in first["items"])
    bad = sqlite_gateway.get("sjj-audit", "/v1/audit/records", since="yesterday")
    assert bad.status_code == 400 and "since" in bad.json()["detail"]


def test_checkpoints_are_public_and_consistent(sqlite_gateway: Gateway) -> None:
    first_note = sqlite_gateway.get(None, "/v1/audit/checkpoint").text
    sqlite_gateway.query("rsj-subsidy", PEOPLE)
    second_note = sqlite_gateway.get(None, "/v1/audit/checkpoint").text
    verifier = _published_verifier(sqlite_gateway)
    old, _ = open_checkpoint(first_note, [verifier])
    new, _ = open_checkpoint(second_note, [verifier])
    assert new.size > old.size
    proof = sqlite_gateway.get(
        "tjj-stats", "/v1/audit/proof/consistency", first=old.size, second=new.size
    ).json()
    verify_consistency(
        old.size,
        new.size,
        old.root_hash,
        new.root_hash,
        [base64.b64decode(h) for h in proof["consistency_proof"]],
    )
    # Proofs need a token; checkpoints and keys do not.
    assert (
        sqlite_gateway.get(None, "/v1/audit/proof/consistency", first=0, second=1).status_code
        == 401
    )
    assert sqlite_gateway.get(None, "/v1/audit/keys").status_code == 200
    listed = sqlite_gateway.get(None, "/v1/audit/checkpoints", from_size=new.size).json()
    assert second_note in listed["checkpoints"]


def test_auditor_exports_a_bundle_that_proves_its_records(sqlite_gateway: Gateway) -> None:
    _, receipt = split_receipt(sqlite_gateway.query("rsj-subsidy", PEOPLE).content)
    size = open_checkpoint(receipt.checkpoint, [_published_verifier(sqlite_gateway)])[0].size
    sqlite_gateway.query("rsj-subsidy", PEOPLE)
    resp = sqlite_gateway.get(
        "sjj-audit", "/v1/audit/export", audit_id=receipt.audit_id, earlier_size=size
    )
    assert resp.status_code == 200
    bundle = resp.json()
    head, _ = open_checkpoint(bundle["checkpoint"], [_published_verifier(sqlite_gateway)])
    (entry,) = bundle["entries"]
    leaf = hashlib.sha256(b"\x00" + entry["record"].encode("utf-8")).digest()
    assert leaf == receipt.leaf_hash
    verify_inclusion(
        leaf,
        entry["index"],
        head.size,
        [base64.b64decode(h) for h in entry["inclusion_proof"]],
        head.root_hash,
    )
    (earlier,) = bundle["checkpoints"]
    old, _ = open_checkpoint(earlier["checkpoint"], [_published_verifier(sqlite_gateway)])
    verify_consistency(
        old.size,
        head.size,
        old.root_hash,
        head.root_hash,
        [base64.b64decode(h) for h in earlier["consistency_proof"]],
    )
    ranged = sqlite_gateway.get("sjj-audit", "/v1/audit/export", start=0, end=3)
    assert ranged.status_code == 200 and len(ranged.json()["entries"]) == 3
    assert sqlite_gateway.get("gaj-officer", "/v1/audit/export", start=0, end=3).status_code == 403


def test_reading_the_log_is_itself_audited(sqlite_gateway: Gateway) -> None:
    resp = sqlite_gateway.get("gaj-officer", "/v1/audit/records", dataset="population")
    assert resp.status_code == 200
    found = sqlite_gateway.services.audit.get(resp.headers["gateway-audit-id"])
    assert found is not None
    _, record = found
    assert record.system == "gaj-officer" and record.purpose == "audit_log_read"
    assert record.sql == "GET /v1/audit/records?dataset=population"


class _AppendsFail(MemoryAuditStore):
    """A log that can still be read but no longer written (a full disk, a lost lock)."""

    fail_appends = False

    def append_batch(self, records: Sequence[AuditRecord | EncodedRecord]) -> Appended:
        if self.fail_appends:
            raise AuditUnavailableError("The audit log is unavailable.")
        return super().append_batch(records)


def test_no_record_of_the_read_no_records(tmp_path: Path) -> None:
    store = _AppendsFail(demo_signer())
    with running_gateway("sqlite", demo_dsn("sqlite", tmp_path), tmp_path, audit=store) as gw:
        gw.query("rsj-subsidy", PEOPLE)  # something to read
        gw.token("sjj-audit")
        store.fail_appends = True
        for path, params in (
            ("/v1/audit/records", {}),
            ("/v1/audit/export", {"start": 0, "end": 1}),
        ):
            resp = gw.get("sjj-audit", path, **params)
            assert resp.status_code == 503, path
            assert resp.json()["code"] == "audit_unavailable"
            assert "items" not in resp.json() and "entries" not in resp.json()
