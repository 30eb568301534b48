"""The checks of the evidence a user kept: checkpoints held from before, receipts, a
response body, and the witnesses' cosignatures on the head.

A held checkpoint larger than the log's head proves the log was cut; one of the same or a
smaller size whose root differs from the log's at that size proves it was rolled back (to
an old backup, say) or forked. A receipt also proves its entry's leaf hash; a response
body also proves, through the record's ``response_sha256``, which bytes were delivered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence

from gateway.audit.receipt import Receipt, receipt_in_document, split_receipt
from gateway.audit.record import AuditRecord, leaf_hash_of
from gateway.audit.verify.log import UNCHECKABLE, LogView, inconsistency
from gateway.audit.verify.parse import ParsedEntry
from gateway.audit.verify.report import Checks
from gateway.audit.verify.trust import Epoch, open_trusted_checkpoint
from gateway.tlog.checkpoint import Checkpoint
from gateway.tlog.cosignature import ALG_COSIGNATURE_V1
from gateway.tlog.errors import ProofError
from gateway.tlog.note import Note, Verifier, parse_note
from gateway.tlog.rfc6962 import verify_inclusion

__all__ = [
    "body_problem",
    "body_verdict",
    "check_body",
    "check_held",
    "check_receipt_alone",
    "check_receipt_in_bundle",
    "check_witnessed",
    "check_witnesses",
    "open_body",
    "receipt_record",
]


def _inconsistency_of_held(
    view: LogView, checkpoint: Checkpoint, proofs: Sequence[list[bytes]]
) -> tuple[str, str] | None:
    """:func:`~gateway.audit.verify.log.inconsistency` with the first proof that links the
    held root to the head's: a proof depends on the two sizes only, so it does not matter
    which carried checkpoint of this size it came with."""
    found: tuple[str, str] | None = None
    for proof in proofs:
        found = inconsistency(view, checkpoint, proof)
        if found is None:
            break
    return found


def _fail_held(
    found: tuple[str, str], checkpoint: Checkpoint, what: str, checks: Checks, name: str
) -> None:
    meaning, reason = found
    size = checkpoint.size
    if meaning == UNCHECKABLE:
        checks.fail(name, f"your checkpoint of size {size} cannot be checked: {reason} ({what})")
    else:
        checks.fail(
            name,
            f"{meaning}: your checkpoint of size {size} (origin {checkpoint.origin}) is "
            f"not a state of this log: {reason} ({what})",
        )


def check_held(
    view: LogView, note: object, what: str, checks: Checks, name: str = "held checkpoint"
) -> Checkpoint | None:
    """A checkpoint the user kept (or a receipt's): signed, not larger than the log, and
    the log's state at its size."""
    checkpoint, problem = open_trusted_checkpoint(note, view.trust.epochs, what)
    if checkpoint is None or problem is not None:
        checks.fail(name, problem or what)
        return None
    size, head = checkpoint.size, view.head
    if head is None:
        return checkpoint
    if size > head.size:
        checks.fail(
            name,
            f"the log was cut: you hold a checkpoint of size {size} but the log now has "
            f"size {head.size} ({what})",
        )
        return checkpoint
    if view.complete or size in (0, head.size):
        found = inconsistency(view, checkpoint, [])
    else:
        proofs = [x.proof for x in view.extras if x.checkpoint.size == size and x.proof is not None]
        if not proofs:
            checks.fail(
                name,
                f"no consistency proof for your checkpoint of size {size}; export a bundle "
                f"with it ({what})",
            )
            return checkpoint
        found = _inconsistency_of_held(view, checkpoint, proofs)
    if found is not None:
        _fail_held(found, checkpoint, what, checks, name)
        return checkpoint
    checks.ok(
        name,
        f"{what} (size {size}, origin {checkpoint.origin}) is consistent with the log of "
        f"size {head.size}",
    )
    return checkpoint


def check_receipt_alone(
    receipt: Receipt, epochs: Mapping[str, Epoch], what: str, checks: Checks
) -> Checkpoint | None:
    """The receipt by itself: its checkpoint is signed by the trusted key of its origin,
    and its inclusion proof takes its leaf hash to that checkpoint's root."""
    if receipt.origin not in epochs:
        checks.fail("receipt", f"{what}: no trusted key for its origin {receipt.origin}")
        return None
    checkpoint, problem = open_trusted_checkpoint(
        receipt.checkpoint, epochs, f"{what}: its checkpoint"
    )
    if checkpoint is None or problem is not None:
        checks.fail("receipt", problem or what)
        return None
    if checkpoint.origin != receipt.origin:
        checks.fail(
            "receipt",
            f"{what} names origin {receipt.origin} but its checkpoint is of {checkpoint.origin}",
        )
        return None
    try:
        verify_inclusion(
            receipt.leaf_hash,
            receipt.index,
            checkpoint.size,
            receipt.inclusion_proof,
            checkpoint.root_hash,
        )
    except ProofError as exc:
        checks.fail(
            "receipt",
            f"{what}: its inclusion proof does not verify against its checkpoint of size "
            f"{checkpoint.size} ({exc})",
        )
        return None
    if receipt.record is not None and receipt_record(receipt, what, checks) is None:
        return None
    checks.ok(
        "receipt",
        f"{what} proves entry {receipt.index} (audit_id {receipt.audit_id}) in the log of "
        f"size {checkpoint.size}, signed by {checkpoint.origin}",
    )
    return checkpoint


def receipt_record(receipt: Receipt, what: str, checks: Checks) -> AuditRecord | None:
    """The record a (version 2) receipt carries, once its text is shown to be the leaf
    the receipt proves; None after a failed ``receipt`` check (or when it carries none)."""
    if receipt.record is None:
        return None
    if not hmac.compare_digest(leaf_hash_of(receipt.record), receipt.leaf_hash):
        checks.fail(
            "receipt",
            f"{what}: the record it carries is not the entry it proves (its leaf hash "
            "differs): the record text was altered",
        )
        return None
    try:
        record = AuditRecord.from_canonical(receipt.record)
    except (TypeError, ValueError) as exc:
        checks.fail("receipt", f"{what}: the record it carries is not a canonical record: {exc}")
        return None
    if record.audit_id != receipt.audit_id:
        checks.fail(
            "receipt",
            f"{what} names audit_id {receipt.audit_id}, but its record is {record.audit_id}",
        )
        return None
    return record


def open_body(body: bytes, given: Receipt | None = None) -> tuple[bytes, Receipt, bool]:
    """What a kept body holds: the bytes the record's ``response_sha256`` covers, the
    receipt, and whether the body is a refusal (problem+json with a ``receipt`` member,
    compared by its members; a refusal has no digest). ``given`` is the receipt kept apart
    from a body that carries none. ValueError when there is no receipt at all."""
    try:
        result, receipt = split_receipt(body)
        return result, receipt, False
    except ValueError:
        pass  # not a served body with its receipt attached
    try:
        return body, receipt_in_document(body), True
    except ValueError:
        if given is None:
            raise
    return body, given, False


def _refusal_problem(document: bytes, record: AuditRecord) -> str | None:
    try:
        obj = json.loads(document)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return "the body you kept is not the JSON the gateway sent"
    if not isinstance(obj, Mapping):
        return "the body you kept is not a JSON object"
    kept = (obj.get("audit_id"), obj.get("status"), obj.get("code"))
    logged = (record.audit_id, record.status, record.error_code)
    if kept != logged:
        return (
            f"the refusal you kept (audit_id, status, code = {kept}) is not what the log "
            f"recorded ({logged})"
        )
    return None


def body_problem(result: bytes, refusal: bool, record: AuditRecord, index: int) -> str | None:
    """Why the kept body is not what ``record`` (entry ``index``) says was sent, or None.
    A served body is compared by the SHA-256 of its result bytes; a refusal (which the
    record has no digest of) by its audit id, status and error code."""
    if record.response_sha256 is None:
        if not refusal:
            return f"entry {index} records no delivered body (outcome {record.outcome.value})"
        return _refusal_problem(result, record)
    digest = hashlib.sha256(result).hexdigest()
    if record.response_sha256 != digest:
        return (
            f"the body you kept is not what the log says was delivered (entry {index}: the "
            f"result's SHA-256 is {digest[:16]}…, the record says "
            f"{record.response_sha256[:16]}…)"
        )
    return None


def body_verdict(record: AuditRecord, index: int) -> str:
    """The success line of a body check."""
    if record.response_sha256 is None:
        return f"the refusal you kept is the one entry {index} records (status {record.status})"
    return (
        f"the body you kept is exactly what entry {index} says was delivered "
        f"(SHA-256 {record.response_sha256[:16]}…)"
    )


def check_receipt_in_bundle(
    view: LogView, receipt: Receipt, what: str, checks: Checks
) -> ParsedEntry | None:
    """The receipt against the bundle: its checkpoint is a state of the log, and the
    entry it proves is still there, byte for byte."""
    if check_receipt_alone(receipt, view.trust.epochs, what, checks) is None:
        return None
    check_held(view, receipt.checkpoint, f"the checkpoint of {what}", checks, "receipt")
    entry = view.by_index.get(receipt.index)
    if entry is None:
        if view.complete:
            checks.fail(
                "receipt",
                f"entry {receipt.index} is missing: your receipt proves the log held it, but "
                f"the bundle ends after {len(view.entries)} entries (the log's tail was cut)",
            )
        return None
    if not hmac.compare_digest(entry.leaf, receipt.leaf_hash):
        checks.fail(
            "receipt",
            f"entry {receipt.index} differs from what your receipt proves: the record was "
            "altered or removed",
        )
        return None
    record = entry.fields()
    if record is not None and record.audit_id != receipt.audit_id:
        checks.fail(
            "receipt",
            f"{what} names audit_id {receipt.audit_id}, but entry {receipt.index} is "
            f"{record.audit_id}",
        )
        return None
    checks.ok("receipt", f"entry {receipt.index} is the record your receipt proves")
    return entry


def check_body(view: LogView, body: bytes, checks: Checks) -> None:
    """The response body the user kept: its receipt checks out against the bundle, and
    its result bytes are those the record says were delivered."""
    try:
        result, receipt, refusal = open_body(body)
    except ValueError as exc:
        checks.fail("body", f"the body you kept carries no usable receipt: {exc}")
        return
    entry = check_receipt_in_bundle(view, receipt, "the receipt attached to your body", checks)
    if entry is None:
        if receipt.index not in view.by_index:
            checks.fail(
                "body",
                f"the bundle has no entry {receipt.index}, so the body cannot be checked "
                "against its record; export a bundle with it",
            )
        return
    record = entry.fields()
    if record is None:
        checks.fail("body", f"entry {receipt.index} is not a readable record")
        return
    problem = body_problem(result, refusal, record, receipt.index)
    if problem is not None:
        checks.fail("body", problem)
        return
    checks.ok("body", body_verdict(record, receipt.index))


def _cosigned_by(parsed: Note, text: bytes, witnesses: Sequence[Verifier], checks: Checks) -> int:
    """How many distinct ``witnesses`` keys validly cosigned ``parsed`` (whose text is
    ``text``)."""
    counted: set[tuple[str, int, bytes]] = set()
    for witness in witnesses:
        if witness.alg != ALG_COSIGNATURE_V1:
            checks.fail("witnesses", f"witness key {witness.name} is not a cosignature/v1 key")
            continue
        signatures = [
            sig
            for sig in parsed.signatures
            if (sig.name, sig.key_hash) == (witness.name, witness.key_hash)
        ]
        if any(witness.verify(text, sig.signature) for sig in signatures):
            counted.add((witness.name, witness.key_hash, witness.public_key))
        elif signatures:
            checks.fail("witnesses", f"the cosignature by witness {witness.name} does not verify")
    return len(counted)


def check_witnessed(
    view: LogView,
    head_note: object,
    witnesses: Sequence[Verifier],
    minimum: int,
    max_unwitnessed: int,
    checks: Checks,
) -> None:
    """The bundle's log is covered by a checkpoint at least ``minimum`` of the
    ``witnesses`` cosigned: the head, or a carried checkpoint shown consistent with it
    (the log's latest cosigned one). At most ``max_unwitnessed`` entries past it (eventual
    cosigning: the newest records are witnessed a few seconds later) are accepted."""
    if minimum <= 0 and not witnesses:
        return
    head = view.head
    if head is None:
        checks.fail("witnesses", "the bundle has no trusted checkpoint to count cosignatures on")
        return
    candidates: list[tuple[int, str]] = [
        (head.size, head_note if isinstance(head_note, str) else "")
    ]
    candidates += [(x.checkpoint.size, x.note) for x in view.extras if x.verified and x.note]
    best: tuple[int, int] | None = None  # (size, cosignatures)
    for size, note in sorted(candidates, reverse=True):
        try:
            parsed = parse_note(note)
        except ValueError:
            continue
        count = _cosigned_by(parsed, parsed.text.encode("utf-8"), witnesses, checks)
        if count >= max(minimum, 1) and (best is None or size > best[0]):
            best = (size, count)
            break
    if best is None:
        checks.fail(
            "witnesses",
            f"no checkpoint in the bundle carries {max(minimum, 1)} valid cosignature(s) by "
            "the witnesses you listed: nothing shows the log was witnessed",
        )
        return
    size, count = best
    tail = head.size - size
    if tail > max_unwitnessed:
        checks.fail(
            "witnesses",
            f"entries {size}..{head.size - 1} ({tail}) are not covered by a checkpoint your "
            f"witnesses cosigned (the latest cosigned has size {size}; at most "
            f"{max_unwitnessed} unwitnessed entries accepted)",
        )
        return
    checks.ok(
        "witnesses",
        f"the log up to size {size} of {head.size} is cosigned by {count} of the listed "
        f"witnesses ({minimum} required; {tail} newer entries not yet witnessed)",
    )


def check_witnesses(
    note: object, witnesses: Sequence[Verifier], minimum: int, checks: Checks
) -> None:
    """The checkpoint ``note`` carries at least ``minimum`` valid cosignatures by the
    ``witnesses``."""
    if minimum <= 0 and not witnesses:
        return
    if not isinstance(note, str):
        checks.fail("witnesses", "the bundle has no checkpoint to count cosignatures on")
        return
    try:
        parsed = parse_note(note)
        text = parsed.text.encode("utf-8")
    except ValueError as exc:
        checks.fail("witnesses", f"the checkpoint is not a signed note: {exc}")
        return
    counted = _cosigned_by(parsed, text, witnesses, checks)
    if counted < minimum:
        checks.fail(
            "witnesses",
            f"the checkpoint carries {counted} valid cosignature(s) by the witnesses you "
            f"listed; at least {minimum} required",
        )
    else:
        checks.ok(
            "witnesses",
            f"the checkpoint is cosigned by {counted} of the listed witnesses ({minimum} required)",
        )
