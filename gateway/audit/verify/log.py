"""The checks of the log a bundle carries: its indices, size and root (complete bundles),
its inclusion proofs (partial ones), its earlier checkpoints and the roots its key
hand-overs name. What they establish (:class:`LogView`) is what the evidence the user kept
is then checked against (:mod:`gateway.audit.verify.evidence`)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from gateway.audit.verify.parse import MalformedError, ParsedEntry, hash_list, short_root
from gateway.audit.verify.report import Checks
from gateway.audit.verify.trust import Trust, open_trusted_checkpoint
from gateway.tlog.checkpoint import Checkpoint
from gateway.tlog.errors import ProofError
from gateway.tlog.rfc6962 import EMPTY_ROOT, MerkleTree, verify_consistency, verify_inclusion

__all__ = [
    "CUT",
    "FORK",
    "UNCHECKABLE",
    "Extra",
    "LogView",
    "check_complete",
    "check_extras",
    "check_handover_roots",
    "check_partial",
    "inconsistency",
]

#: What an inconsistent checkpoint means (see :func:`inconsistency`).
CUT: Final = "the log was cut"
FORK: Final = "the log was rolled back or forked"
UNCHECKABLE: Final = "cannot be checked"


@dataclass
class Extra:
    """An earlier checkpoint carried in the bundle's ``"checkpoints"``."""

    checkpoint: Checkpoint
    proof: list[bytes] | None
    verified: bool
    #: The signed note as carried (witnesses' cosignatures included).
    note: str = ""


class TreeRoots(Protocol):
    """The roots of the log at its sizes: a :class:`MerkleTree`, or the roots a stream
    verifier noted (gateway/audit/verify/stream.py)."""

    @property
    def size(self) -> int: ...

    def root(self, size: int | None = None) -> bytes: ...


@dataclass
class LogView:
    """What the bundle established, for checking the evidence the user kept."""

    trust: Trust
    head: Checkpoint | None
    complete: bool
    entries: list[ParsedEntry]
    by_index: dict[int, ParsedEntry]
    #: Complete bundles: the tree rebuilt from every entry.
    tree: TreeRoots | None = None
    extras: list[Extra] = field(default_factory=list)


# ------------------------------------------------------------------- the entries


def _check_order(entries: list[ParsedEntry], checks: Checks) -> tuple[set[int], bool]:
    """Each index once, ascending; returns the indices present and whether it held."""
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
    return seen, good


def _check_gaps(present: set[int], checks: Checks) -> bool:
    """Indices from 0 without a gap; a failed check names each missing range."""
    good = True
    last = -1
    for index in sorted(present):
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
    return good


def check_indices(entries: list[ParsedEntry], checks: Checks) -> bool:
    """Complete bundle: indices exactly 0, 1, ..., n-1 in that order."""
    present, ordered = _check_order(entries, checks)
    good = _check_gaps(present, checks) and ordered
    if good and entries:
        checks.ok("indices", f"entries are numbered 0..{len(entries) - 1} without a gap")
    return good


def check_complete(view: LogView, checks: Checks) -> None:
    """Complete bundle: the indices, and the tree rebuilt from every record has the
    head's size and root."""
    check_indices(view.entries, checks)
    tree = MerkleTree(entry.leaf for entry in view.entries)
    view.tree = tree
    head = view.head
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


def check_partial(view: LogView, checks: Checks) -> None:
    """Partial bundle: every entry's audit path leads to the head's root."""
    head = view.head
    if head is None:
        return
    failed = 0
    for entry in view.entries:
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
    if view.entries and not failed:
        checks.ok(
            "inclusion",
            f"all {len(view.entries)} entries are in the log of size {head.size} "
            "(inclusion proofs verify)",
        )


# ---------------------------------------------------------- earlier checkpoints


def inconsistency(
    view: LogView, checkpoint: Checkpoint, proof: list[bytes] | None
) -> tuple[str, str] | None:
    """None if ``checkpoint`` is a state of the bundle's log, else (what that means:
    :data:`CUT`, :data:`FORK` or :data:`UNCHECKABLE`, and why). ``proof`` is a
    consistency proof to the head (partial bundles); complete bundles compare with the
    rebuilt tree instead."""
    head = view.head
    if head is None:
        return UNCHECKABLE, "the bundle has no usable head checkpoint"
    if checkpoint.size > head.size:
        return CUT, f"it is larger than the log's head of size {head.size}"
    if view.complete:
        tree = view.tree
        if tree is None or checkpoint.size > tree.size:
            return UNCHECKABLE, f"the bundle holds only {0 if tree is None else tree.size} entries"
        if not hmac.compare_digest(tree.root(checkpoint.size), checkpoint.root_hash):
            return FORK, f"the log's first {checkpoint.size} entries have another root"
        return None
    if proof is None:
        return UNCHECKABLE, "there is no consistency proof for it"
    try:
        verify_consistency(checkpoint.size, head.size, checkpoint.root_hash, head.root_hash, proof)
    except ProofError as exc:
        return FORK, f"its consistency proof to the head of size {head.size} fails ({exc})"
    return None


def _check_extra(view: LogView, n: int, item: object, checks: Checks) -> bool:
    """One earlier checkpoint of the bundle; True when it is signed and consistent."""
    what = f"earlier checkpoint {n} of the bundle"
    if not isinstance(item, Mapping):
        checks.fail("checkpoints", f"{what} is not an object")
        return False
    checkpoint, problem = open_trusted_checkpoint(item.get("checkpoint"), view.trust.epochs, what)
    if checkpoint is None:
        checks.fail("checkpoints", problem or what)
        return False
    what = f"earlier checkpoint of size {checkpoint.size} (origin {checkpoint.origin})"
    proof: list[bytes] | None = None
    head = view.head
    # A checkpoint beyond the head can have no consistency proof; it proves a cut.
    if not view.complete and (head is None or checkpoint.size <= head.size):
        try:
            proof = hash_list(item.get("consistency_proof"), f"{what}: consistency proof")
        except MalformedError as exc:
            checks.fail("checkpoints", str(exc))
            return False
    note = item.get("checkpoint")
    extra = Extra(checkpoint, proof, False, note if isinstance(note, str) else "")
    # Kept even when its signature fails: a consistency proof is checked against the
    # roots it links, so a held checkpoint of the same size may still use it.
    view.extras.append(extra)
    if problem is not None:
        checks.fail("checkpoints", problem)
        return False
    found = inconsistency(view, checkpoint, proof)
    if found is not None:
        meaning, reason = found
        if meaning == UNCHECKABLE:
            checks.fail("checkpoints", f"{what} cannot be checked: {reason}")
        else:
            checks.fail("checkpoints", f"{what} is not a state of this log: {reason}; {meaning}")
        return False
    extra.verified = True
    return True


def check_extras(view: LogView, raw: list[object], checks: Checks) -> None:
    """The bundle's earlier checkpoints: signed, in their key's epoch, consistent."""
    good = sum(_check_extra(view, n, item, checks) for n, item in enumerate(raw))
    if good and good == len(raw):
        checks.ok(
            "checkpoints",
            f"the bundle's {good} earlier checkpoint(s) are signed and consistent with the log",
        )


# -------------------------------------------------------------------- hand-overs


def _root_at(view: LogView, size: int) -> bytes | None:
    """The log's root at ``size`` as far as the bundle shows it, or None."""
    head = view.head
    if view.complete and view.tree is not None:
        return view.tree.root(size)
    if head is not None and size == head.size:
        return head.root_hash
    if size == 0:
        return EMPTY_ROOT
    return next(
        (x.checkpoint.root_hash for x in view.extras if x.verified and x.checkpoint.size == size),
        None,
    )


def check_handover_roots(view: LogView, checks: Checks) -> None:
    """A hand-over names the root at its size: it must be the log's root there."""
    for old, new, size, root in view.trust.handovers:
        what = f"hand-over from {old} to {new} at size {size}"
        if view.complete and view.tree is not None and size > view.tree.size:
            checks.fail("keys", f"{what} is beyond the bundle's {view.tree.size} entries")
            continue
        actual = _root_at(view, size)
        if actual is None:
            continue  # no checkpoint of that size in a partial bundle: nothing to compare
        if hmac.compare_digest(actual, root):
            checks.ok("keys", f"{what} names the log's root at that size")
        else:
            checks.fail(
                "keys",
                f"{what} names root {short_root(root)}, but the log's root at that size is "
                f"{short_root(actual)}: the log was rolled back or forked",
            )
