"""The offline verifier: evidence bundles, receipts and response bodies, checked against
pinned public keys only (no server, no database, no network).

Everything here is a pure function of parsed JSON, bytes and :class:`Verifier` keys, and
produces a :class:`Report`: a list of named :class:`Check` results, each with a message
that names the entry index, tree size or origin it is about. Malformed input (a bundle
that is not a JSON object, a missing member, bad base64, a note that does not parse) is
never an exception: it is a failed check like any other, because for an auditor "this
evidence is broken" is a finding, not a crash.

What is checked (see :mod:`gateway.audit.bundle` for the bundle format), and where:

``bundle`` (:mod:`~gateway.audit.verify.bundle`)
    the document's type and version and the shape of its members.
``keys`` (:mod:`~gateway.audit.verify.trust`)
    which signing keys to trust (:func:`trusted_keys`): the pinned keys, plus every later
    key epoch that a valid hand-over note (:mod:`gateway.audit.rotation`) from the
    previous *trusted* epoch introduces; epochs start at 0 and their sizes only grow.
``checkpoint``
    the bundle's head: signed by the key trusted for its origin, with a size inside that
    key's epoch.
``records`` (:mod:`~gateway.audit.verify.parse`)
    every record text is a canonical v2 audit record (an edit by hand rarely is).
``inclusion`` (partial bundle; this and the next two in :mod:`~gateway.audit.verify.log`)
    every entry's RFC 6962 audit path leads to the head's root.
``indices``, ``size``, ``root`` (complete bundle)
    indices run 0..n-1 in order, n is the head's size, and the Merkle tree rebuilt from
    the records has the head's root.
``checkpoints``
    every earlier checkpoint the bundle carries is signed by its epoch's key and
    consistent with the head (complete: equals the rebuilt tree's root at its size;
    partial: its consistency proof verifies).
``held checkpoint``, ``receipt``, ``body`` (:mod:`~gateway.audit.verify.evidence`)
    evidence the user kept from before: a checkpoint larger than the head proves the log
    was cut; one of the same or smaller size whose root differs from the log's at that
    size proves it was rolled back (to an old backup, say) or forked. A receipt also
    proves its entry's leaf hash; a response body also proves, through the record's
    ``response_sha256``, which bytes were delivered.
``witnesses``
    the head carries enough valid cosignatures by the listed witness keys.

Checks that pass are summarised in one line each; every problem gets a line of its own
(:mod:`~gateway.audit.verify.report`). A receipt, checkpoint or body can also be checked by
itself (:mod:`~gateway.audit.verify.alone`).
"""

from __future__ import annotations

from gateway.audit.verify.alone import (
    verify_body,
    verify_checkpoint,
    verify_cosignatures,
    verify_receipt,
)
from gateway.audit.verify.bundle import verify_bundle, verify_bundle_json
from gateway.audit.verify.report import Check, Report
from gateway.audit.verify.trust import trusted_keys

__all__ = [
    "Check",
    "Report",
    "trusted_keys",
    "verify_body",
    "verify_bundle",
    "verify_bundle_json",
    "verify_checkpoint",
    "verify_cosignatures",
    "verify_receipt",
]
