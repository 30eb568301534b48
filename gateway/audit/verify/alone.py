"""Verifying one piece of evidence by itself, against pinned keys only: a receipt, a
checkpoint, a response body's receipt, a checkpoint's cosignatures. Whether the log still
agrees with it needs a bundle (:mod:`gateway.audit.verify.bundle`)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.audit.receipt import Receipt
from gateway.audit.verify.evidence import (
    body_problem,
    body_verdict,
    check_receipt_alone,
    check_witnesses,
    open_body,
    receipt_record,
)
from gateway.audit.verify.report import Check, Checks, Report
from gateway.audit.verify.trust import open_trusted_checkpoint, pinned_epochs
from gateway.tlog.note import Verifier

__all__ = ["verify_body", "verify_checkpoint", "verify_cosignatures", "verify_receipt"]


def verify_cosignatures(note: str, witnesses: Sequence[Verifier], minimum: int) -> Report:
    """Whether a checkpoint note carries at least ``minimum`` valid cosignatures by the
    ``witnesses`` keys (the log's own signature is checked by :func:`verify_checkpoint`)."""
    checks = Checks()
    check_witnesses(note, witnesses, minimum, checks)
    return checks.report()


def verify_receipt(receipt: Receipt, pinned: Sequence[Verifier]) -> Report:
    """Verify a receipt by itself: its checkpoint is signed by the pinned key named like
    the receipt's origin, and its inclusion proof takes its leaf hash at its index to that
    checkpoint's root. (Whether the log still holds the entry needs a bundle.)"""
    checks = Checks()
    epochs = pinned_epochs(pinned, checks)
    try:
        check_receipt_alone(receipt, epochs, "receipt", checks)
    except Exception as exc:  # hostile input must end in a report, not a crash
        checks.fail("receipt", f"the receipt could not be processed: {type(exc).__name__}: {exc}")
    return checks.report()


def verify_checkpoint(note: str, pinned: Sequence[Verifier]) -> Report:
    """Verify a signed checkpoint by itself: signed by the pinned key named like its
    origin. (Whether the log is still consistent with it needs a bundle.)"""
    checks = Checks()
    checkpoint, problem = open_trusted_checkpoint(note, pinned_epochs(pinned, checks), "checkpoint")
    if checkpoint is None or problem is not None:
        checks.fail("held checkpoint", problem or "checkpoint")
    else:
        checks.ok(
            "held checkpoint",
            f"checkpoint of size {checkpoint.size} is signed by the pinned key of origin "
            f"{checkpoint.origin}",
        )
    return checks.report()


def verify_body(body: bytes, pinned: Sequence[Verifier], receipt: Receipt | None = None) -> Report:
    """Verify a kept response body by itself: its receipt (attached, in a refusal's
    ``receipt`` member, or ``receipt`` kept apart) verifies (:func:`verify_receipt`), and
    the record the receipt carries says exactly these bytes were delivered (a refusal:
    this audit id, status and error code).

    A receipt that carries no record (version 1, or a record with a withheld diagnostic)
    cannot vouch for the body: that is a failed ``body`` check, to be settled with a bundle
    holding the entry (:func:`~gateway.audit.verify.bundle.verify_bundle`).
    """
    try:
        result, found, refusal = open_body(body, receipt)
    except ValueError as exc:
        return Report((Check("body", False, f"the body carries no usable receipt: {exc}"),))
    report = verify_receipt(found, pinned)
    if not report.ok:
        return report
    checks = Checks()
    if found.record is None:
        checks.fail(
            "body",
            f"the receipt carries no record, so the body can only be checked against a "
            f"bundle holding entry {found.index}",
        )
        return report + checks.report()
    record = receipt_record(found, "the receipt", checks)
    if record is not None:
        problem = body_problem(result, refusal, record, found.index)
        if problem is None:
            checks.ok("body", body_verdict(record, found.index))
        else:
            checks.fail("body", problem)
    return report + checks.report()
