"""The offline verifier: evidence bundles, receipts and response bodies, checked against
pinned public keys only (no server, no database, no network).

Everything here is a pure function of parsed JSON, bytes and :class:`Verifier` keys, and
produces a :class:`Report`: a list of named :class:`Check` results, each with a message
that names the entry index, tree size or origin it is about. Malformed input (a bundle
that is not a JSON object, a missing member, bad base64, a note that does not parse) is
never an exception: it is a failed check like any other, because for an auditor "this
evidence is broken" is a finding, not a crash.

What is checked (see :mod:`gateway.audit.bundle` for the bundle format):

``bundle``
    the document's type and version and the shape of its members.
``keys``
    which signing keys to trust (:func:`trusted_keys`): the pinned keys, plus every later
    key epoch that a valid hand-over note (:mod:`gateway.audit.rotation`) from the
    previous *trusted* epoch introduces; epochs start at 0 and their sizes only grow.
``checkpoint``
    the bundle's head: signed by the key trusted for its origin, with a size inside that
    key's epoch.
``records``
    every record text is a canonical v2 audit record (an edit by hand rarely is).
``inclusion`` (partial bundle)
    every entry's RFC 6962 audit path leads to the head's root.
``indices``, ``size``, ``root`` (complete bundle)
    indices run 0..n-1 in order, n is the head's size, and the Merkle tree rebuilt from
    the records has the head's root.
``checkpoints``
    every earlier checkpoint the bundle carries is signed by its epoch's key and
    consistent with the head (complete: equals the rebuilt tree's root at its size;
    partial: its consistency proof verifies).
``held checkpoint``, ``receipt``, ``body``
    evidence the user kept from before: a checkpoint larger than the head proves the log
    was cut; one of the same or smaller size whose root differs from the log's at that
    size proves it was rolled back (to an old backup, say) or forked. A receipt also
    proves its entry's leaf hash; a response body also proves, through the record's
    ``response_sha256``, which bytes were delivered.
``witnesses``
    the head carries enough valid cosignatures by the listed witness keys.

Checks that pass are summarised in one line each; every problem gets a line of its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from gateway.audit.bundle import BUNDLE_TYPE, BUNDLE_VERSION
from gateway.audit.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    ProofError,
    verify_consistency,
    verify_inclusion,
)
from gateway.audit.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Checkpoint,
    NoteError,
    Verifier,
    open_checkpoint,
    parse_note,
)
from gateway.audit.receipt import Receipt, split_receipt
from gateway.audit.record import AuditRecord, leaf_hash_of
from gateway.audit.rotation import open_handover

__all__ = [
    "Check",
    "Report",
    "trusted_keys",
    "verify_body",
    "verify_bundle",
    "verify_bundle_json",
    "verify_checkpoint",
    "verify_receipt",
]

_OK: Final = "\u2714"  # ✔
_FAIL: Final = "\u2718"  # ✘
_HASH_SIZE: Final = 32
_LANGS: Final = ("en", "zh")


# ------------------------------------------------------------------------------ report


@dataclass(frozen=True)
class Check:
    """One verification step: what was checked (``name``), whether it held, and a
    message for a human that names the index, size or origin concerned."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Report:
    """The outcome of a verification: every check, in the order they ran."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """True when at least one check ran and every check held (an empty report proves
        nothing, so it is not a success)."""
        return bool(self.checks) and all(check.ok for check in self.checks)

    def failures(self) -> tuple[Check, ...]:
        """The checks that did not hold."""
        return tuple(check for check in self.checks if not check.ok)

    def __add__(self, other: Report) -> Report:
        return Report(self.checks + other.checks)

    def verdict(self, lang: str = "en") -> str:
        """The one-line verdict: ``VERIFIED: ...`` / ``FAILED: n problem(s)`` (``en``) or
        ``核验通过：...`` / ``核验失败：...`` (``zh``)."""
        if lang not in _LANGS:
            raise ValueError(f"unknown report language {lang!r} (use one of {_LANGS})")
        problems = len(self.failures())
        if lang == "zh":
            if self.ok:
                return f"核验通过：全部 {len(self.checks)} 项检查通过"
            if not self.checks:
                return "核验失败：没有核验任何内容"
            return f"核验失败：{problems} 个问题"
        if self.ok:
            return f"VERIFIED: all {len(self.checks)} checks passed"
        if not self.checks:
            return "FAILED: nothing was verified"
        return f"FAILED: {problems} problem(s)"

    def render(self, lang: str = "en") -> str:
        """Human text: one line per check (✔ or ✘, then its message), then the verdict
        line in ``lang`` (``en`` or ``zh``; the messages themselves are English)."""
        lines = [f"{_OK if check.ok else _FAIL} {check.detail}" for check in self.checks]
        lines.append(self.verdict(lang))
        return "\n".join(lines)


class _Checks:
    """Accumulates checks while a verification runs."""

    def __init__(self) -> None:
        self.items: list[Check] = []

    def ok(self, name: str, detail: str) -> None:
        self.items.append(Check(name, True, detail))

    def fail(self, name: str, detail: str) -> None:
        self.items.append(Check(name, False, detail))

    def report(self) -> Report:
        return Report(tuple(self.items))


class _MalformedError(ValueError):
    """A member of the evidence does not have the shape the format prescribes."""


# ---------------------------------------------------------------------- small parsers


def _hash_list(value: object, what: str) -> list[bytes]:
    """A JSON list of standard-base64 32-byte hashes."""
    if not isinstance(value, list):
        raise _MalformedError(f"{what} is not a list of base64 hashes")
    out: list[bytes] = []
    for n, item in enumerate(value):
        if not isinstance(item, str):
            raise _MalformedError(f"{what}: hash {n} is not a string")
        try:
            raw = base64.b64decode(item.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise _MalformedError(f"{what}: hash {n} is not valid base64") from None
        if len(raw) != _HASH_SIZE:
            raise _MalformedError(f"{what}: hash {n} is {len(raw)} bytes, not {_HASH_SIZE}")
        # As note.py does for signatures: one value, one spelling (no stray trailing bits).
        if base64.b64encode(raw).decode("ascii") != item:
            raise _MalformedError(f"{what}: hash {n} is not canonical base64")
        out.append(raw)
    return out


def _size(value: object) -> int | None:
    """A non-negative JSON integer (bool is not one), or None."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _short(root: bytes) -> str:
    return base64.b64encode(root).decode("ascii")[:12] + "…"


# --------------------------------------------------------------------------- key trust


@dataclass(frozen=True)
class _Epoch:
    """A trusted key and the span of tree sizes its checkpoints may have."""

    origin: str
    verifier: Verifier
    from_size: int
    #: The next epoch's from_size (the hand-over size), None for the current key.
    until_size: int | None


@dataclass
class _Trust:
    epochs: dict[str, _Epoch] = field(default_factory=dict)
    #: (from-origin, to-origin, size, root) of every hand-over that verified.
    handovers: list[tuple[str, str, int, bytes]] = field(default_factory=list)


def _pinned_map(pinned: Iterable[Verifier], checks: _Checks) -> dict[str, Verifier]:
    out: dict[str, Verifier] = {}
    for key in pinned:
        if key.alg != ALG_ED25519:
            checks.fail(
                "keys",
                f"pinned key {key.name} is a witness (cosignature) key, not a log key; "
                "pass it as a witness key instead",
            )
            continue
        known = out.setdefault(key.name, key)
        if known != key:
            # One origin never has two keys; guessing which one is meant would be wrong.
            checks.fail("keys", f"two different keys are pinned for origin {key.name}")
    return out


def _trust(pinned: Sequence[Verifier], epochs: object, checks: _Checks) -> _Trust:
    """Work out the trusted keys (see :func:`trusted_keys`), recording each finding."""
    pins = _pinned_map(pinned, checks)
    trust = _Trust({name: _Epoch(name, key, 0, None) for name, key in pins.items()})
    if not isinstance(epochs, list) or not epochs:
        checks.fail("keys", 'the bundle lists no key epochs ("keys" is missing or empty)')
        return trust
    parsed: list[tuple[str, Verifier, int, object] | None] = []
    for n, item in enumerate(epochs):
        try:
            if not isinstance(item, Mapping):
                raise _MalformedError("is not an object")
            origin, vkey = item.get("origin"), item.get("vkey")
            from_size, handover = _size(item.get("from_size")), item.get("handover")
            if not isinstance(origin, str) or not isinstance(vkey, str) or from_size is None:
                raise _MalformedError("needs a string origin and vkey and a non-negative from_size")
            if handover is not None and not isinstance(handover, str):
                raise _MalformedError("has a hand-over that is not a note (string)")
            try:
                key = Verifier.parse(vkey)
            except ValueError as exc:
                raise _MalformedError(f"has an unusable key: {exc}") from None
            if key.name != origin:
                raise _MalformedError(f"has a key named {key.name!r}, not its origin {origin!r}")
        except _MalformedError as exc:
            checks.fail("keys", f"key epoch {n} {exc}")
            parsed.append(None)
            continue
        parsed.append((origin, key, from_size, handover))

    previous: _Epoch | None = None
    for n, entry in enumerate(parsed):
        if entry is None:
            previous = None  # a broken link: the next key must be pinned to be trusted
            continue
        origin, key, from_size, handover = entry
        following = next((e for e in parsed[n + 1 :] if e is not None), None)
        until = None if following is None else following[2]
        epoch = _Epoch(origin, key, from_size, until)
        if n == 0 and from_size != 0:
            checks.fail("keys", f"the first key epoch ({origin}) starts at size {from_size}, not 0")
        if until is not None and until < from_size:
            checks.fail(
                "keys",
                f"key epochs go backwards: {origin} starts at size {from_size}, the next "
                f"key at size {until}",
            )
        pin = pins.get(origin)
        if pin is not None:
            if pin != key:
                checks.fail(
                    "keys",
                    f"the bundle's key for origin {origin} is not the key you pinned for it",
                )
                previous = None
                continue
            trust.epochs[origin] = epoch
            checks.ok("keys", f"key of origin {origin} (from size {from_size}) is pinned")
            previous = epoch
            continue
        if previous is None:
            checks.fail(
                "keys",
                f"key of origin {origin} (from size {from_size}) is not pinned and not "
                "handed over from a trusted key",
            )
            continue
        if not isinstance(handover, str):
            checks.fail(
                "keys",
                f"key of origin {origin} (from size {from_size}) is not pinned and has no "
                f"hand-over note from {previous.origin}",
            )
            previous = None
            continue
        try:
            opened, new_key = open_handover(handover, previous.verifier)
            if opened.to_origin != origin:
                raise NoteError(f"it hands over to origin {opened.to_origin}")
            if new_key != key:
                raise NoteError("it names another key than the bundle's key for the origin")
            if opened.size != from_size:
                raise NoteError(f"it is at size {opened.size}, but the epoch starts at {from_size}")
        except ValueError as exc:
            checks.fail(
                "keys",
                f"hand-over from {previous.origin} to {origin} at size {from_size} does not "
                f"verify: {exc}",
            )
            previous = None
            continue
        trust.epochs[origin] = epoch
        trust.handovers.append((previous.origin, origin, opened.size, opened.root))
        checks.ok(
            "keys",
            f"key of origin {origin} (from size {from_size}) is trusted through a hand-over "
            f"signed by {previous.origin} and {origin}",
        )
        previous = epoch
    return trust


def trusted_keys(
    pinned: Sequence[Verifier], epochs: list[dict[str, object]]
) -> dict[str, tuple[Verifier, int]]:
    """The keys to trust, as ``origin -> (verifier, from_size)``.

    Starts from the ``pinned`` log keys (``from_size`` 0 unless an epoch says otherwise).
    Each epoch of a bundle's ``"keys"`` list (oldest first) whose key is pinned is
    trusted; one whose key is not pinned is trusted only if its hand-over note verifies
    (:func:`~gateway.audit.rotation.open_handover`) against the previous epoch's key,
    which must itself be trusted, and names this epoch's origin, key and ``from_size``.
    Anything else is left out; :func:`verify_bundle` reports why.
    """
    trust = _trust(pinned, epochs, _Checks())
    return {origin: (e.verifier, e.from_size) for origin, e in trust.epochs.items()}


def _open_checkpoint(
    note: object, epochs: Mapping[str, _Epoch], what: str
) -> tuple[Checkpoint | None, str | None]:
    """Parse ``note`` and check it is signed by the key trusted for its origin, with a
    size inside that key's epoch. Returns (checkpoint or None, problem or None); the
    checkpoint is returned even when its signature is the problem."""
    if not isinstance(note, str):
        return None, f"{what} is not a signed note (string)"
    try:
        checkpoint = Checkpoint.parse(parse_note(note).text)
    except ValueError as exc:
        return None, f"{what} is not a signed checkpoint: {exc}"
    epoch = epochs.get(checkpoint.origin)
    if epoch is None:
        return checkpoint, (
            f"{what} (size {checkpoint.size}) is signed by no trusted key "
            f"(origin {checkpoint.origin})"
        )
    try:
        open_checkpoint(note, [epoch.verifier], origin=checkpoint.origin)
    except ValueError as exc:
        return checkpoint, (
            f"{what} (size {checkpoint.size}) is signed by no trusted key "
            f"(origin {checkpoint.origin}): {exc}"
        )
    if checkpoint.size < epoch.from_size or (
        epoch.until_size is not None and checkpoint.size > epoch.until_size
    ):
        span = f"from size {epoch.from_size}" + (
            "" if epoch.until_size is None else f" to size {epoch.until_size}"
        )
        return checkpoint, (
            f"{what} has size {checkpoint.size}, but the key of origin {checkpoint.origin} "
            f"signs the log only {span}"
        )
    return checkpoint, None


# ---------------------------------------------------------------------------- bundles


@dataclass
class _Entry:
    position: int
    index: int
    data: bytes
    leaf: bytes
    #: None when the text is not a canonical record, or when decoding was deferred
    #: (``decode_records=False``) and nothing needed this entry's fields yet.
    record: AuditRecord | None
    proof: list[bytes] | None
    decoded: bool = True

    def fields(self) -> AuditRecord | None:
        """The decoded record, decoding it now if that was deferred."""
        if not self.decoded:
            self.decoded = True
            try:
                self.record = AuditRecord.from_canonical(self.data)
            except (TypeError, ValueError):
                self.record = None
        return self.record


@dataclass
class _Extra:
    """An earlier checkpoint carried in the bundle's ``"checkpoints"``."""

    checkpoint: Checkpoint
    proof: list[bytes] | None
    verified: bool


@dataclass
class _Context:
    """What the bundle established, for checking the evidence the user kept."""

    trust: _Trust
    head: Checkpoint | None
    complete: bool
    entries: list[_Entry]
    by_index: dict[int, _Entry]
    tree: MerkleTree | None
    extras: list[_Extra]


def _parse_entries(
    raw: list[object], complete: bool, checks: _Checks, decode_records: bool = True
) -> list[_Entry]:
    entries: list[_Entry] = []
    bad_records = 0
    for position, item in enumerate(raw):
        where = f"entry at position {position}"
        if not isinstance(item, Mapping):
            checks.fail("records", f"{where} is not an object")
            continue
        index, text = _size(item.get("index")), item.get("record")
        if index is None:
            checks.fail("records", f"{where} has no valid index")
            continue
        if not isinstance(text, str):
            checks.fail("records", f"entry {index} has no record text")
            continue
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            checks.fail("records", f"entry {index}: the record text is not valid Unicode")
            continue
        record: AuditRecord | None = None
        try:
            # Integrity rests on the leaf hashes alone; decoding every record (about
            # 50 µs each) only adds "each text is a canonical v2 record", so a fast
            # full-log check may defer it to the entries the user's evidence names.
            if decode_records:
                record = AuditRecord.from_canonical(data)
        except (TypeError, ValueError) as exc:
            record = None
            bad_records += 1
            checks.fail(
                "records",
                f"entry {index}: the record text is not a canonical audit record ({exc}); "
                "it was edited or corrupted",
            )
        proof: list[bytes] | None = None
        if not complete:
            try:
                proof = _hash_list(item.get("inclusion_proof"), f"entry {index}: inclusion proof")
            except _MalformedError as exc:
                checks.fail("inclusion", str(exc))
        entries.append(
            _Entry(position, index, data, leaf_hash_of(data), record, proof, decode_records)
        )
    if entries and not bad_records and decode_records:
        checks.ok("records", f"all {len(entries)} records are canonical audit records")
    return entries


def _check_indices(entries: list[_Entry], checks: _Checks) -> bool:
    """Complete bundle: indices exactly 0, 1, ..., n-1 in that order."""
    good = True
    seen: set[int] = set()
    previous = -1
    for entry in entries:
        if entry.index in seen:
            checks.fail("indices", f"entry {entry.index} appears more than once")
            good = False
        elif entry.index < previous:
            checks.fail(
                "indices",
                f"entries out of order: entry {entry.index} comes after entry {previous}",
            )
            good = False
        seen.add(entry.index)
        previous = max(previous, entry.index)
    present = sorted(seen)
    last = -1
    for index in present:
        if index > last + 1:
            good = False
            if last < 0:
                what = "entry 0" if index == 1 else f"entries 0..{index - 1}"
                checks.fail("indices", f"{what} missing: indices start at {index}")
            elif index == last + 2:
                checks.fail(
                    "indices", f"entry {last + 1} missing: indices jump from {last} to {index}"
                )
            else:
                checks.fail(
                    "indices",
                    f"entries {last + 1}..{index - 1} missing: indices jump from {last} to {index}",
                )
        last = index
    if good and entries:
        checks.ok("indices", f"entries are numbered 0..{len(entries) - 1} without a gap")
    return good


def _check_complete(ctx: _Context, checks: _Checks) -> None:
    _check_indices(ctx.entries, checks)
    tree = MerkleTree(entry.leaf for entry in ctx.entries)
    ctx.tree = tree
    head = ctx.head
    if head is None:
        return
    if tree.size != head.size:
        checks.fail(
            "size",
            f"bundle holds {tree.size} entries but the checkpoint says size {head.size}",
        )
        return
    checks.ok("size", f"the bundle holds all {head.size} entries of the checkpoint")
    if hmac.compare_digest(tree.root(), head.root_hash):
        checks.ok(
            "root",
            f"the Merkle tree rebuilt from the {head.size} records has the checkpoint's root",
        )
    else:
        checks.fail(
            "root",
            f"the Merkle tree rebuilt from the {tree.size} records does not have the "
            f"checkpoint's root (size {head.size}): records were altered, removed or reordered",
        )


def _check_partial(ctx: _Context, checks: _Checks) -> None:
    head = ctx.head
    if head is None:
        return
    failed = 0
    for entry in ctx.entries:
        if entry.proof is None:
            failed += 1
            continue
        try:
            verify_inclusion(entry.leaf, entry.index, head.size, entry.proof, head.root_hash)
        except ProofError as exc:
            failed += 1
            checks.fail(
                "inclusion",
                f"entry {entry.index}: record does not match the log (inclusion proof fails: "
                f"{exc})",
            )
    if ctx.entries and not failed:
        checks.ok(
            "inclusion",
            f"all {len(ctx.entries)} entries are in the log of size {head.size} "
            "(inclusion proofs verify)",
        )


_CUT: Final = "the log was cut"
_FORK: Final = "the log was rolled back or forked"
_UNCHECKABLE: Final = "cannot be checked"


def _check_extras(ctx: _Context, raw: list[object], checks: _Checks) -> None:
    """The bundle's earlier checkpoints: signed, in their key's epoch, consistent."""
    good = 0
    for n, item in enumerate(raw):
        what = f"earlier checkpoint {n} of the bundle"
        if not isinstance(item, Mapping):
            checks.fail("checkpoints", f"{what} is not an object")
            continue
        checkpoint, problem = _open_checkpoint(item.get("checkpoint"), ctx.trust.epochs, what)
        if checkpoint is None:
            checks.fail("checkpoints", problem or what)
            continue
        what = f"earlier checkpoint of size {checkpoint.size} (origin {checkpoint.origin})"
        proof: list[bytes] | None = None
        head = ctx.head
        # A checkpoint beyond the head can have no consistency proof; it proves a cut.
        if not ctx.complete and (head is None or checkpoint.size <= head.size):
            try:
                proof = _hash_list(item.get("consistency_proof"), f"{what}: consistency proof")
            except _MalformedError as exc:
                checks.fail("checkpoints", str(exc))
                continue
        extra = _Extra(checkpoint, proof, False)
        # Kept even when its signature fails: a consistency proof is checked against the
        # roots it links, so a held checkpoint of the same size may still use it.
        ctx.extras.append(extra)
        if problem is not None:
            checks.fail("checkpoints", problem)
            continue
        found = _inconsistency(ctx, checkpoint, proof)
        if found is not None:
            meaning, reason = found
            if meaning == _UNCHECKABLE:
                checks.fail("checkpoints", f"{what} cannot be checked: {reason}")
            else:
                checks.fail(
                    "checkpoints", f"{what} is not a state of this log: {reason}; {meaning}"
                )
            continue
        extra.verified = True
        good += 1
    if good and good == len(raw):
        checks.ok(
            "checkpoints",
            f"the bundle's {good} earlier checkpoint(s) are signed and consistent with the log",
        )


def _inconsistency(
    ctx: _Context, checkpoint: Checkpoint, proof: list[bytes] | None
) -> tuple[str, str] | None:
    """None if ``checkpoint`` is a state of the bundle's log, else (what that means:
    :data:`_CUT`, :data:`_FORK` or :data:`_UNCHECKABLE`, and why). ``proof`` is a
    consistency proof to the head (partial bundles); complete bundles compare with the
    rebuilt tree instead."""
    head = ctx.head
    if head is None:
        return _UNCHECKABLE, "the bundle has no usable head checkpoint"
    if checkpoint.size > head.size:
        return _CUT, f"it is larger than the log's head of size {head.size}"
    if ctx.complete:
        tree = ctx.tree
        if tree is None or checkpoint.size > tree.size:
            return _UNCHECKABLE, f"the bundle holds only {0 if tree is None else tree.size} entries"
        if not hmac.compare_digest(tree.root(checkpoint.size), checkpoint.root_hash):
            return _FORK, f"the log's first {checkpoint.size} entries have another root"
        return None
    if proof is None:
        return _UNCHECKABLE, "there is no consistency proof for it"
    try:
        verify_consistency(checkpoint.size, head.size, checkpoint.root_hash, head.root_hash, proof)
    except ProofError as exc:
        return _FORK, f"its consistency proof to the head of size {head.size} fails ({exc})"
    return None


def _check_handover_roots(ctx: _Context, checks: _Checks) -> None:
    """A hand-over names the root at its size: it must be the log's root there."""
    head = ctx.head
    for old, new, size, root in ctx.trust.handovers:
        what = f"hand-over from {old} to {new} at size {size}"
        actual: bytes | None = None
        if ctx.complete and ctx.tree is not None:
            if size > ctx.tree.size:
                checks.fail("keys", f"{what} is beyond the bundle's {ctx.tree.size} entries")
                continue
            actual = ctx.tree.root(size)
        elif head is not None and size == head.size:
            actual = head.root_hash
        elif size == 0:
            actual = EMPTY_ROOT
        else:
            actual = next(
                (
                    x.checkpoint.root_hash
                    for x in ctx.extras
                    if x.verified and x.checkpoint.size == size
                ),
                None,
            )
        if actual is None:
            continue  # no checkpoint of that size in a partial bundle: nothing to compare
        if hmac.compare_digest(actual, root):
            checks.ok("keys", f"{what} names the log's root at that size")
        else:
            checks.fail(
                "keys",
                f"{what} names root {_short(root)}, but the log's root at that size is "
                f"{_short(actual)}: the log was rolled back or forked",
            )


def _check_held(
    ctx: _Context, note: object, what: str, checks: _Checks, name: str = "held checkpoint"
) -> Checkpoint | None:
    """A checkpoint the user kept (or a receipt's): signed, not larger than the log, and
    the log's state at its size."""
    checkpoint, problem = _open_checkpoint(note, ctx.trust.epochs, what)
    if checkpoint is None or problem is not None:
        checks.fail(name, problem or what)
        return None
    size, head = checkpoint.size, ctx.head
    if head is None:
        return checkpoint
    if size > head.size:
        checks.fail(
            name,
            f"the log was cut: you hold a checkpoint of size {size} but the log now has "
            f"size {head.size} ({what})",
        )
        return checkpoint
    found: tuple[str, str] | None
    if ctx.complete or size in (0, head.size):
        found = _inconsistency(ctx, checkpoint, [])
    else:
        proofs = [x.proof for x in ctx.extras if x.checkpoint.size == size and x.proof is not None]
        if not proofs:
            checks.fail(
                name,
                f"no consistency proof for your checkpoint of size {size}; export a bundle "
                f"with it ({what})",
            )
            return checkpoint
        # A proof depends on the two sizes only, so it does not matter which carried
        # checkpoint of this size it came with: one that links the held root to the
        # head's root settles it.
        for proof in proofs:
            found = _inconsistency(ctx, checkpoint, proof)
            if found is None:
                break
    if found is not None:
        meaning, reason = found
        if meaning == _UNCHECKABLE:
            checks.fail(
                name, f"your checkpoint of size {size} cannot be checked: {reason} ({what})"
            )
        else:
            checks.fail(
                name,
                f"{meaning}: your checkpoint of size {size} (origin {checkpoint.origin}) is "
                f"not a state of this log: {reason} ({what})",
            )
        return checkpoint
    checks.ok(
        name,
        f"{what} (size {size}, origin {checkpoint.origin}) is consistent with the log of "
        f"size {head.size}",
    )
    return checkpoint


def _check_receipt_alone(
    receipt: Receipt, epochs: Mapping[str, _Epoch], what: str, checks: _Checks
) -> Checkpoint | None:
    """The receipt by itself: its checkpoint is signed by the trusted key of its origin,
    and its inclusion proof takes its leaf hash to that checkpoint's root."""
    epoch = epochs.get(receipt.origin)
    if epoch is None:
        checks.fail("receipt", f"{what}: no trusted key for its origin {receipt.origin}")
        return None
    checkpoint, problem = _open_checkpoint(receipt.checkpoint, epochs, f"{what}: its checkpoint")
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
    checks.ok(
        "receipt",
        f"{what} proves entry {receipt.index} (audit_id {receipt.audit_id}) in the log of "
        f"size {checkpoint.size}, signed by {checkpoint.origin}",
    )
    return checkpoint


def _check_receipt_in_bundle(
    ctx: _Context, receipt: Receipt, what: str, checks: _Checks
) -> _Entry | None:
    """The receipt against the bundle: its checkpoint is a state of the log, and the
    entry it proves is still there, byte for byte."""
    if _check_receipt_alone(receipt, ctx.trust.epochs, what, checks) is None:
        return None
    _check_held(ctx, receipt.checkpoint, f"the checkpoint of {what}", checks, "receipt")
    entry = ctx.by_index.get(receipt.index)
    if entry is None:
        if ctx.complete:
            checks.fail(
                "receipt",
                f"entry {receipt.index} is missing: your receipt proves the log held it, but "
                f"the bundle ends after {len(ctx.entries)} entries (the log's tail was cut)",
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


def _check_body(ctx: _Context, body: bytes, checks: _Checks) -> None:
    try:
        result, receipt = split_receipt(body)
    except ValueError as exc:
        checks.fail("body", f"the body you kept carries no usable receipt: {exc}")
        return
    entry = _check_receipt_in_bundle(ctx, receipt, "the receipt attached to your body", checks)
    if entry is None:
        if receipt.index not in ctx.by_index:
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
    digest = hashlib.sha256(result).hexdigest()
    if record.response_sha256 != digest:
        checks.fail(
            "body",
            f"the body you kept is not what the log says was delivered (entry "
            f"{receipt.index}: the result's SHA-256 is {digest[:16]}…, the record says "
            f"{(record.response_sha256 or 'none')[:16]}…)",
        )
        return
    checks.ok(
        "body",
        f"the body you kept is exactly what entry {receipt.index} says was delivered "
        f"(SHA-256 {digest[:16]}…)",
    )


def _check_witnesses(
    note: object, witnesses: Sequence[Verifier], minimum: int, checks: _Checks
) -> None:
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
    counted: set[tuple[str, int, bytes]] = set()
    for witness in witnesses:
        ident = (witness.name, witness.key_hash, witness.public_key)
        if witness.alg != ALG_COSIGNATURE_V1:
            checks.fail("witnesses", f"witness key {witness.name} is not a cosignature/v1 key")
            continue
        signatures = [
            sig
            for sig in parsed.signatures
            if (sig.name, sig.key_hash) == (witness.name, witness.key_hash)
        ]
        if any(witness.verify(text, sig.signature) for sig in signatures):
            counted.add(ident)
        elif signatures:
            checks.fail("witnesses", f"the cosignature by witness {witness.name} does not verify")
    if len(counted) < minimum:
        checks.fail(
            "witnesses",
            f"the checkpoint carries {len(counted)} valid cosignature(s) by the witnesses you "
            f"listed; at least {minimum} required",
        )
    else:
        checks.ok(
            "witnesses",
            f"the checkpoint is cosigned by {len(counted)} of the listed witnesses "
            f"({minimum} required)",
        )


def _verify_bundle(
    bundle: object,
    pinned: Sequence[Verifier],
    receipts: Sequence[Receipt],
    held: Sequence[str],
    body: bytes | None,
    witnesses: Sequence[Verifier],
    min_witnesses: int,
    checks: _Checks,
    decode_records: bool = True,
) -> None:
    if not isinstance(bundle, Mapping):
        checks.fail("bundle", "the bundle is not a JSON object")
        return
    if bundle.get("type") != BUNDLE_TYPE:
        checks.fail(
            "bundle", f'the document is not an evidence bundle ("type" is not {BUNDLE_TYPE})'
        )
        return
    if bundle.get("v") != BUNDLE_VERSION or isinstance(bundle.get("v"), bool):
        checks.fail("bundle", f"unsupported bundle version {bundle.get('v')!r}")
        return
    complete = bundle.get("complete")
    entries_raw, extras_raw = bundle.get("entries"), bundle.get("checkpoints", [])
    problems = [
        message
        for bad, message in (
            (not isinstance(complete, bool), '"complete" is not true or false'),
            (not isinstance(entries_raw, list), '"entries" is missing or not a list'),
            (not isinstance(extras_raw, list), '"checkpoints" is not a list'),
            (not isinstance(bundle.get("checkpoint"), str), '"checkpoint" is not a signed note'),
        )
        if bad
    ]
    if problems or not isinstance(entries_raw, list) or not isinstance(extras_raw, list):
        checks.fail("bundle", "the bundle is malformed: " + "; ".join(problems))
        return
    is_complete = complete is True
    kind = "complete log" if is_complete else "partial"
    checks.ok("bundle", f"evidence bundle v{BUNDLE_VERSION} ({kind}, {len(entries_raw)} entries)")

    trust = _trust(pinned, bundle.get("keys"), checks)
    head, problem = _open_checkpoint(bundle.get("checkpoint"), trust.epochs, "checkpoint")
    if problem is not None:
        checks.fail("checkpoint", problem)
    elif head is not None:
        checks.ok(
            "checkpoint",
            f"checkpoint of size {head.size} is signed by the trusted key of origin {head.origin}",
        )

    entries = _parse_entries(entries_raw, is_complete, checks, decode_records)
    by_index: dict[int, _Entry] = {}
    for entry in entries:
        by_index.setdefault(entry.index, entry)
    ctx = _Context(trust, head, is_complete, entries, by_index, None, [])
    if is_complete:
        _check_complete(ctx, checks)
    else:
        _check_partial(ctx, checks)
    _check_extras(ctx, extras_raw, checks)
    _check_handover_roots(ctx, checks)
    for n, note in enumerate(held):
        _check_held(ctx, note, f"held checkpoint {n + 1}", checks)
    for n, receipt in enumerate(receipts):
        _check_receipt_in_bundle(ctx, receipt, f"receipt {n + 1}", checks)
    if body is not None:
        _check_body(ctx, body, checks)
    _check_witnesses(bundle.get("checkpoint"), witnesses, min_witnesses, checks)


def verify_bundle(
    bundle: object,
    pinned: Sequence[Verifier],
    *,
    receipts: Sequence[Receipt] = (),
    checkpoints: Sequence[str] = (),
    body: bytes | None = None,
    witnesses: Sequence[Verifier] = (),
    min_witnesses: int = 0,
    decode_records: bool = True,
) -> Report:
    """Verify an evidence bundle (the parsed JSON, normally a mapping) against the
    ``pinned`` log keys, plus the evidence the user kept: ``receipts``, signed
    ``checkpoints`` (notes) and one response ``body`` with its receipt attached.

    With ``min_witnesses > 0`` the head must carry that many valid cosignatures by the
    ``witnesses`` keys. ``decode_records=False`` (``--fast``) checks every leaf, root,
    proof and signature but decodes only the records the user's evidence names, instead
    of every record. Never raises for malformed evidence: every problem is a failed
    :class:`Check` in the returned :class:`Report` (see the module docstring).
    """
    checks = _Checks()
    try:
        _verify_bundle(
            bundle,
            pinned,
            receipts,
            checkpoints,
            body,
            witnesses,
            min_witnesses,
            checks,
            decode_records,
        )
    except Exception as exc:  # hostile input must end in a report, not a crash
        checks.fail("bundle", f"the evidence could not be processed: {type(exc).__name__}: {exc}")
    return checks.report()


def verify_bundle_json(
    data: bytes,
    pinned: Sequence[Verifier],
    *,
    receipts: Sequence[Receipt] = (),
    checkpoints: Sequence[str] = (),
    body: bytes | None = None,
    witnesses: Sequence[Verifier] = (),
    min_witnesses: int = 0,
    decode_records: bool = True,
) -> Report:
    """:func:`verify_bundle` of a bundle file's bytes; bytes that are not JSON (UTF-8) are
    reported as a failed ``bundle`` check."""
    try:
        bundle = json.loads(data)
    except (ValueError, RecursionError) as exc:
        return Report((Check("bundle", False, f"the bundle is not valid JSON: {exc}"),))
    return verify_bundle(
        bundle,
        pinned,
        receipts=receipts,
        checkpoints=checkpoints,
        body=body,
        witnesses=witnesses,
        min_witnesses=min_witnesses,
        decode_records=decode_records,
    )


def verify_cosignatures(note: str, witnesses: Sequence[Verifier], minimum: int) -> Report:
    """Whether a checkpoint note carries at least ``minimum`` valid cosignatures by the
    ``witnesses`` keys (the log's own signature is checked by :func:`verify_checkpoint`)."""
    checks = _Checks()
    _check_witnesses(note, witnesses, minimum, checks)
    return checks.report()


def verify_receipt(receipt: Receipt, pinned: Sequence[Verifier]) -> Report:
    """Verify a receipt by itself: its checkpoint is signed by the pinned key named like
    the receipt's origin, and its inclusion proof takes its leaf hash at its index to that
    checkpoint's root. (Whether the log still holds the entry needs a bundle.)"""
    checks = _Checks()
    epochs = {name: _Epoch(name, key, 0, None) for name, key in _pinned_map(pinned, checks).items()}
    try:
        _check_receipt_alone(receipt, epochs, "receipt", checks)
    except Exception as exc:  # hostile input must end in a report, not a crash
        checks.fail("receipt", f"the receipt could not be processed: {type(exc).__name__}: {exc}")
    return checks.report()


def verify_checkpoint(note: str, pinned: Sequence[Verifier]) -> Report:
    """Verify a signed checkpoint by itself: signed by the pinned key named like its
    origin. (Whether the log is still consistent with it needs a bundle.)"""
    checks = _Checks()
    epochs = {name: _Epoch(name, key, 0, None) for name, key in _pinned_map(pinned, checks).items()}
    checkpoint, problem = _open_checkpoint(note, epochs, "checkpoint")
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
    bundle holding the entry: pass the body to :func:`verify_bundle` for that.
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
