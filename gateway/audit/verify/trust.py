"""Which signing keys to trust, and for which tree sizes: the pinned log keys, plus every
later key epoch that a valid hand-over (:mod:`gateway.audit.rotation`) from the previous
*trusted* epoch introduces.

A chain of epochs is followed oldest first. A pinned key is trusted where it stands; an
unpinned one only through a hand-over signed by the previous trusted key and by itself
that names its origin, key and first size. A malformed, mismatched or unverifiable link
breaks the chain: from there on only pinned keys are trusted again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gateway.audit.rotation import Handover, open_handover
from gateway.audit.verify.parse import EpochEntry, parse_epochs
from gateway.audit.verify.report import Checks
from gateway.tlog.checkpoint import Checkpoint, open_checkpoint
from gateway.tlog.errors import NoteError
from gateway.tlog.note import ALG_ED25519, Verifier, parse_note

__all__ = [
    "Epoch",
    "Trust",
    "establish_trust",
    "open_trusted_checkpoint",
    "pinned_epochs",
    "pinned_keys",
    "trusted_keys",
]


@dataclass(frozen=True)
class Epoch:
    """A trusted key and the span of tree sizes its checkpoints may have."""

    origin: str
    verifier: Verifier
    from_size: int
    #: The next epoch's from_size (the hand-over size), None for the current key.
    until_size: int | None


@dataclass
class Trust:
    """The trusted epochs by origin, and the hand-overs that admitted some of them."""

    epochs: dict[str, Epoch] = field(default_factory=dict)
    #: (from-origin, to-origin, size, root) of every hand-over that verified.
    handovers: list[tuple[str, str, int, bytes]] = field(default_factory=list)


def pinned_keys(pinned: Iterable[Verifier], checks: Checks) -> dict[str, Verifier]:
    """The pinned log keys by origin; a witness key or two keys for one origin fail."""
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


def pinned_epochs(pinned: Iterable[Verifier], checks: Checks) -> dict[str, Epoch]:
    """Each pinned key as an epoch of its own origin from size 0 (evidence without a
    bundle has no key history to follow)."""
    return {name: Epoch(name, key, 0, None) for name, key in pinned_keys(pinned, checks).items()}


def _spans(parsed: Sequence[EpochEntry | None]) -> list[Epoch | None]:
    """Each epoch with the span it signs: up to the next well-formed epoch's start."""
    out: list[Epoch | None] = []
    for n, entry in enumerate(parsed):
        if entry is None:
            out.append(None)
            continue
        following = next((e for e in parsed[n + 1 :] if e is not None), None)
        until = None if following is None else following.from_size
        out.append(Epoch(entry.origin, entry.key, entry.from_size, until))
    return out


def _check_order(n: int, epoch: Epoch, checks: Checks) -> None:
    """Epochs start at 0 and their sizes only grow."""
    if n == 0 and epoch.from_size != 0:
        checks.fail(
            "keys", f"the first key epoch ({epoch.origin}) starts at size {epoch.from_size}, not 0"
        )
    if epoch.until_size is not None and epoch.until_size < epoch.from_size:
        checks.fail(
            "keys",
            f"key epochs go backwards: {epoch.origin} starts at size {epoch.from_size}, the "
            f"next key at size {epoch.until_size}",
        )


def _verified_handover(entry: EpochEntry, previous: Epoch, handover: str) -> Handover:
    """The hand-over note, verified against the previous key and naming this epoch's
    origin, key and first size; NoteError (a ValueError) says what does not hold."""
    opened, new_key = open_handover(handover, previous.verifier)
    if opened.to_origin != entry.origin:
        raise NoteError(f"it hands over to origin {opened.to_origin}")
    if new_key != entry.key:
        raise NoteError("it names another key than the bundle's key for the origin")
    if opened.size != entry.from_size:
        raise NoteError(f"it is at size {opened.size}, but the epoch starts at {entry.from_size}")
    return opened


def _admit_pinned(epoch: Epoch, pin: Verifier, trust: Trust, checks: Checks) -> Epoch | None:
    if pin != epoch.verifier:
        checks.fail(
            "keys", f"the bundle's key for origin {epoch.origin} is not the key you pinned for it"
        )
        return None
    trust.epochs[epoch.origin] = epoch
    checks.ok("keys", f"key of origin {epoch.origin} (from size {epoch.from_size}) is pinned")
    return epoch


def _admit_handed_over(
    epoch: Epoch, entry: EpochEntry, previous: Epoch | None, trust: Trust, checks: Checks
) -> Epoch | None:
    what = f"key of origin {epoch.origin} (from size {epoch.from_size})"
    if previous is None:
        checks.fail("keys", f"{what} is not pinned and not handed over from a trusted key")
        return None
    if entry.handover is None:
        checks.fail(
            "keys", f"{what} is not pinned and has no hand-over note from {previous.origin}"
        )
        return None
    try:
        opened = _verified_handover(entry, previous, entry.handover)
    except ValueError as exc:
        checks.fail(
            "keys",
            f"hand-over from {previous.origin} to {epoch.origin} at size {epoch.from_size} "
            f"does not verify: {exc}",
        )
        return None
    trust.epochs[epoch.origin] = epoch
    trust.handovers.append((previous.origin, epoch.origin, opened.size, opened.root))
    checks.ok(
        "keys",
        f"{what} is trusted through a hand-over signed by {previous.origin} and {epoch.origin}",
    )
    return epoch


def establish_trust(pinned: Sequence[Verifier], epochs: object, checks: Checks) -> Trust:
    """Work out the trusted keys (see :func:`trusted_keys`), recording each finding."""
    pins = pinned_keys(pinned, checks)
    trust = Trust({name: Epoch(name, key, 0, None) for name, key in pins.items()})
    if not isinstance(epochs, list) or not epochs:
        checks.fail("keys", 'the bundle lists no key epochs ("keys" is missing or empty)')
        return trust
    parsed = parse_epochs(epochs, checks)
    previous: Epoch | None = None  # the last trusted epoch of an unbroken chain
    for n, (entry, epoch) in enumerate(zip(parsed, _spans(parsed), strict=True)):
        if entry is None or epoch is None:
            previous = None  # a broken link: the next key must be pinned to be trusted
            continue
        _check_order(n, epoch, checks)
        pin = pins.get(entry.origin)
        if pin is not None:
            previous = _admit_pinned(epoch, pin, trust, checks)
        else:
            previous = _admit_handed_over(epoch, entry, previous, trust, checks)
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
    Anything else is left out; :func:`~gateway.audit.verify.verify_bundle` reports why.
    """
    trust = establish_trust(pinned, epochs, Checks())
    return {origin: (e.verifier, e.from_size) for origin, e in trust.epochs.items()}


def _outside(checkpoint: Checkpoint, epoch: Epoch) -> str | None:
    """Why ``checkpoint``'s size is outside the span ``epoch``'s key signs, or None."""
    if checkpoint.size >= epoch.from_size and (
        epoch.until_size is None or checkpoint.size <= epoch.until_size
    ):
        return None
    span = f"from size {epoch.from_size}" + (
        "" if epoch.until_size is None else f" to size {epoch.until_size}"
    )
    return (
        f"has size {checkpoint.size}, but the key of origin {checkpoint.origin} signs the "
        f"log only {span}"
    )


def open_trusted_checkpoint(
    note: object, epochs: Mapping[str, Epoch], what: str
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
    unsigned = f"{what} (size {checkpoint.size}) is signed by no trusted key"
    epoch = epochs.get(checkpoint.origin)
    if epoch is None:
        return checkpoint, f"{unsigned} (origin {checkpoint.origin})"
    try:
        open_checkpoint(note, [epoch.verifier], origin=checkpoint.origin)
    except ValueError as exc:
        return checkpoint, f"{unsigned} (origin {checkpoint.origin}): {exc}"
    outside = _outside(checkpoint, epoch)
    return checkpoint, None if outside is None else f"{what} {outside}"
