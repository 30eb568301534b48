"""Verifying one piece of evidence by itself, against pinned keys only: a receipt, a
checkpoint, a response body's receipt, a checkpoint's cosignatures. Whether the log still
agrees with it needs a bundle (:mod:`gateway.audit.verify.bundle`)."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.audit.receipt import Receipt, split_receipt
from gateway.audit.verify.evidence import check_receipt_alone, check_witnesses
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


def verify_body(body: bytes, pinned: Sequence[Verifier]) -> Report:
    """Verify the receipt attached to a response body by itself (:func:`verify_receipt`).

    Whether the body's result bytes are what the log recorded needs the record, i.e. a
    bundle holding the entry: pass the body to
    :func:`~gateway.audit.verify.bundle.verify_bundle` for that.
    """
    try:
        _, receipt = split_receipt(body)
    except ValueError as exc:
        return Report((Check("body", False, f"the body carries no usable receipt: {exc}"),))
    report = verify_receipt(receipt, pinned)
    if report.ok:
        note = Check(
            "body",
            True,
            f"the body's receipt verifies; its result digest is checked only against a "
            f"bundle holding entry {receipt.index}",
        )
        return report + Report((note,))
    return report
