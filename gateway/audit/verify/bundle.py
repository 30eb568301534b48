"""Verifying an evidence bundle (:mod:`gateway.audit.bundle`) and the evidence kept with
it: the bundle's shape, the trusted keys, its head, its log, then the user's evidence."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict, Unpack

from gateway.audit.bundle import BUNDLE_TYPE, BUNDLE_VERSION
from gateway.audit.receipt import Receipt
from gateway.audit.verify.evidence import (
    check_body,
    check_held,
    check_receipt_in_bundle,
    check_witnessed,
    check_witnesses,
)
from gateway.audit.verify.log import (
    LogView,
    check_complete,
    check_extras,
    check_handover_roots,
    check_partial,
)
from gateway.audit.verify.parse import ParsedEntry, parse_entries
from gateway.audit.verify.report import Check, Checks, Report
from gateway.audit.verify.trust import establish_trust, open_trusted_checkpoint
from gateway.tlog.note import Verifier

__all__ = ["EvidenceOptions", "verify_bundle", "verify_bundle_json"]


class EvidenceOptions(TypedDict, total=False):
    """What :func:`verify_bundle` checks besides the bundle (see its parameters)."""

    receipts: Sequence[Receipt]
    checkpoints: Sequence[str]
    body: bytes | None
    witnesses: Sequence[Verifier]
    min_witnesses: int
    max_unwitnessed: int
    decode_records: bool


@dataclass(frozen=True, slots=True)
class _Shape:
    """The members of a well-formed bundle the checks walk."""

    complete: bool
    entries: list[object]
    extras: list[object]


def _shape(bundle: object, checks: Checks) -> _Shape | None:
    """The bundle's type, version and member types; None (after a failed ``bundle``
    check) when they are not the format's."""
    if not isinstance(bundle, Mapping):
        checks.fail("bundle", "the bundle is not a JSON object")
        return None
    if bundle.get("type") != BUNDLE_TYPE:
        checks.fail(
            "bundle", f'the document is not an evidence bundle ("type" is not {BUNDLE_TYPE})'
        )
        return None
    if bundle.get("v") != BUNDLE_VERSION or isinstance(bundle.get("v"), bool):
        checks.fail("bundle", f"unsupported bundle version {bundle.get('v')!r}")
        return None
    complete = bundle.get("complete")
    entries, extras = bundle.get("entries"), bundle.get("checkpoints", [])
    problems = [
        message
        for bad, message in (
            (not isinstance(complete, bool), '"complete" is not true or false'),
            (not isinstance(entries, list), '"entries" is missing or not a list'),
            (not isinstance(extras, list), '"checkpoints" is not a list'),
            (not isinstance(bundle.get("checkpoint"), str), '"checkpoint" is not a signed note'),
        )
        if bad
    ]
    if problems or not isinstance(entries, list) or not isinstance(extras, list):
        checks.fail("bundle", "the bundle is malformed: " + "; ".join(problems))
        return None
    kind = "complete log" if complete is True else "partial"
    checks.ok("bundle", f"evidence bundle v{BUNDLE_VERSION} ({kind}, {len(entries)} entries)")
    return _Shape(complete is True, entries, extras)


def _view(
    bundle: Mapping[str, object],
    shape: _Shape,
    pinned: Sequence[Verifier],
    decode: bool,
    checks: Checks,
) -> LogView:
    """Trust, head and entries: what the rest of the checks stand on."""
    trust = establish_trust(pinned, bundle.get("keys"), checks)
    head, problem = open_trusted_checkpoint(bundle.get("checkpoint"), trust.epochs, "checkpoint")
    if problem is not None:
        checks.fail("checkpoint", problem)
    elif head is not None:
        checks.ok(
            "checkpoint",
            f"checkpoint of size {head.size} is signed by the trusted key of origin {head.origin}",
        )
    entries = parse_entries(shape.entries, shape.complete, checks, decode)
    by_index: dict[int, ParsedEntry] = {}
    for entry in entries:
        by_index.setdefault(entry.index, entry)
    return LogView(trust, head, shape.complete, entries, by_index)


def _verify_bundle(
    bundle: object, pinned: Sequence[Verifier], options: EvidenceOptions, checks: Checks
) -> None:
    shape = _shape(bundle, checks)
    if shape is None or not isinstance(bundle, Mapping):
        return
    view = _view(bundle, shape, pinned, options.get("decode_records", True), checks)
    if view.complete:
        check_complete(view, checks)
    else:
        check_partial(view, checks)
    check_extras(view, shape.extras, checks)
    check_handover_roots(view, checks)
    witnesses, minimum = options.get("witnesses", ()), options.get("min_witnesses", 0)
    for n, note in enumerate(options.get("checkpoints", ())):
        check_held(view, note, f"held checkpoint {n + 1}", checks)
        # Every checkpoint given, not only the head: a held one nobody cosigned may be a
        # view shown to this user alone.
        check_witnesses(note, witnesses, minimum, checks)
    for n, receipt in enumerate(options.get("receipts", ())):
        check_receipt_in_bundle(view, receipt, f"receipt {n + 1}", checks)
    body = options.get("body")
    if body is not None:
        check_body(view, body, checks)
    check_witnessed(
        view,
        bundle.get("checkpoint"),
        witnesses,
        minimum,
        options.get("max_unwitnessed", 0),
        checks,
    )


def verify_bundle(
    bundle: object,
    pinned: Sequence[Verifier],
    *,
    receipts: Sequence[Receipt] = (),
    checkpoints: Sequence[str] = (),
    body: bytes | None = None,
    witnesses: Sequence[Verifier] = (),
    min_witnesses: int = 0,
    max_unwitnessed: int = 0,
    decode_records: bool = True,
) -> Report:
    """Verify an evidence bundle (the parsed JSON, normally a mapping) against the
    ``pinned`` log keys, plus the evidence the user kept: ``receipts``, signed
    ``checkpoints`` (notes) and one response ``body`` with its receipt attached.

    With ``min_witnesses > 0`` the log must be covered by a checkpoint (the head or the
    latest cosigned one the bundle carries) with that many valid cosignatures by the
    ``witnesses`` keys, leaving at most ``max_unwitnessed`` newer entries; every held
    checkpoint must carry them too. ``decode_records=False`` (``--fast``) checks every leaf, root,
    proof and signature but decodes only the records the user's evidence names, instead
    of every record. Never raises for malformed evidence: every problem is a failed
    :class:`~gateway.audit.verify.report.Check` in the returned report (see
    :mod:`gateway.audit.verify`).
    """
    options: EvidenceOptions = {
        "receipts": receipts,
        "checkpoints": checkpoints,
        "body": body,
        "witnesses": witnesses,
        "min_witnesses": min_witnesses,
        "max_unwitnessed": max_unwitnessed,
        "decode_records": decode_records,
    }
    checks = Checks()
    try:
        _verify_bundle(bundle, pinned, options, checks)
    except Exception as exc:  # hostile input must end in a report, not a crash
        checks.fail("bundle", f"the evidence could not be processed: {type(exc).__name__}: {exc}")
    return checks.report()


def verify_bundle_json(
    data: bytes, pinned: Sequence[Verifier], **options: Unpack[EvidenceOptions]
) -> Report:
    """:func:`verify_bundle` of a bundle file's bytes (same keyword arguments); bytes that
    are not JSON (UTF-8) are reported as a failed ``bundle`` check."""
    try:
        bundle = json.loads(data)
    except (ValueError, RecursionError) as exc:
        return Report((Check("bundle", False, f"the bundle is not valid JSON: {exc}"),))
    return verify_bundle(bundle, pinned, **options)
