"""Key rotation: a new signing key starts a new log origin; both keys sign the hand-over.

A verifier pins (origin, key) pairs. When the audit signing key is replaced (scheduled,
or because the old one may be exposed), the log does not restart: the same tree goes on,
but its checkpoints from size N on are signed by the new key under a new origin. What
lets a verifier that pinned only the *old* key trust the new one is the hand-over note::

    gateway audit key hand-over v1
    from-origin <old origin>
    to-origin <new origin>
    size <N>
    root <base64 root of the first N entries>
    to-key <new verifier key>

    — <old origin> <signature by the old key>
    — <new origin> <signature by the new key>

The old key's signature says "my log continues under this key from N"; the new key's
says its holder accepts that tree as its past (so the new origin cannot later disown the
first N entries). The note is stored with the new key epoch (``audit_keys``) and travels
in every evidence bundle.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Final

from gateway.audit.note import NoteError, Verifier, open_note, sign_note
from gateway.audit.sequencer import TreeHead
from gateway.audit.signing import CheckpointSigner

__all__ = ["HANDOVER_HEADER", "Handover", "handover_text", "open_handover", "sign_handover"]

HANDOVER_HEADER: Final = "gateway audit key hand-over v1"


@dataclass(frozen=True, slots=True)
class Handover:
    from_origin: str
    to_origin: str
    size: int
    root: bytes
    to_key: str


def handover_text(h: Handover) -> str:
    return (
        f"{HANDOVER_HEADER}\n"
        f"from-origin {h.from_origin}\n"
        f"to-origin {h.to_origin}\n"
        f"size {h.size}\n"
        f"root {base64.b64encode(h.root).decode('ascii')}\n"
        f"to-key {h.to_key}\n"
    )


def sign_handover(old: CheckpointSigner, new: CheckpointSigner, head: TreeHead) -> str:
    """The hand-over note for switching from ``old`` to ``new`` at ``head``."""
    h = Handover(old.origin, new.origin, head.size, head.root, new.verifier.encode())
    return sign_note(handover_text(h), [old.note_signer, new.note_signer])


def _parse(text: str) -> Handover:
    lines = text.split("\n")
    if len(lines) != 7 or lines[0] != HANDOVER_HEADER or lines[6] != "":
        raise NoteError("not a gateway key hand-over note")
    fields: dict[str, str] = {}
    for line, key in zip(
        lines[1:6], ("from-origin", "to-origin", "size", "root", "to-key"), strict=True
    ):
        name, sep, value = line.partition(" ")
        if name != key or not sep or not value:
            raise NoteError(f"hand-over note: expected a {key!r} line, got {line!r}")
        fields[key] = value
    size_text = fields["size"]
    if re.fullmatch(r"0|[1-9][0-9]{0,18}", size_text) is None:
        raise NoteError("hand-over note: size is not a decimal number")
    try:
        root = base64.b64decode(fields["root"], validate=True)
    except binascii.Error as exc:
        raise NoteError("hand-over note: root is not base64") from exc
    if len(root) != 32:
        raise NoteError("hand-over note: root is not 32 bytes")
    if base64.b64encode(root).decode("ascii") != fields["root"]:
        raise NoteError("hand-over note: root is not canonical base64")
    return Handover(
        fields["from-origin"], fields["to-origin"], int(size_text), root, fields["to-key"]
    )


def open_handover(note: str, old: Verifier) -> tuple[Handover, Verifier]:
    """Verify a hand-over against the trusted ``old`` key: it must be signed by ``old``
    AND by the new key it names. Returns the hand-over and the new key's verifier.
    Raises NoteError with the reason otherwise."""
    opened, _ = open_note(note, [old])
    handover = _parse(opened.text)
    if handover.from_origin != old.name:
        raise NoteError(f"hand-over is from origin {handover.from_origin!r}, not {old.name!r}")
    try:
        new = Verifier.parse(handover.to_key)
    except ValueError as exc:
        raise NoteError(f"hand-over names an unusable new key: {exc}") from exc
    if new.name != handover.to_origin:
        raise NoteError("hand-over: the new key's name is not the new origin")
    open_note(note, [new])  # the new key must have signed too
    return handover, new
