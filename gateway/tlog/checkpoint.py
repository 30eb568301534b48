"""C2SP checkpoints (https://c2sp.org/tlog-checkpoint): a transparency log's signed tree
head, and witness cosignatures on it (pure, no I/O).

A checkpoint is a signed note (:mod:`gateway.tlog.note`) whose text is the origin line,
the tree size in decimal (no leading zeroes), the base64 RFC 6962 root hash (32 bytes),
then optional non-empty extension lines::

    example.com/behind-the-sofa
    20852163
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

    — example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4U...

The log signs it with its own key (signature type 0x01); witnesses add cosignatures
(type 0x04, :mod:`gateway.tlog.cosignature`). Stricter than Go where the spec allows:
sizes must not have leading zeroes. Part of :mod:`gateway.tlog`: it imports nothing from
the gateway.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from gateway.tlog.cosignature import (
    ALG_COSIGNATURE_V1,
    check_timestamp,
    cosigned_message,
    join_cosignature,
)
from gateway.tlog.errors import NoteError
from gateway.tlog.note import (
    ALG_ED25519,
    NoteSignature,
    Signer,
    Verifier,
    check_chars,
    check_text,
    decode_base64,
    encode_base64,
    key_id,
    open_note,
    parse_note,
    sign_note,
    with_signatures,
)

__all__ = ["Checkpoint", "cosign_checkpoint", "open_checkpoint", "sign_checkpoint"]

#: The tree size is a uint64 everywhere else (Go parses it with ParseUint(…, 64)).
_MAX_TREE_SIZE: Final = 2**64 - 1
_ROOT_HASH_SIZE: Final = 32  # SHA-256, RFC 6962

# ASCII digits only: ``int()`` would also take "+1", " 1", "1_0" and non-ASCII digits.
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]*")


# c2sp.org/tlog-checkpoint#note-text
@dataclass(frozen=True)
class Checkpoint:
    """A transparency log tree head (c2sp.org/tlog-checkpoint)."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Validated here so that to_text() always yields a text parse() accepts.
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for what, line in [("origin", self.origin)] + [
            (f"extension line {n}", ext) for n, ext in enumerate(self.extensions, 1)
        ]:
            if not line:
                raise NoteError(f"checkpoint {what} is empty")
            if "\n" in line:
                raise NoteError(f"checkpoint {what} contains a newline")
            check_chars(line, f"checkpoint {what}")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise NoteError(f"checkpoint size {self.size!r} is not an integer")
        if not 0 <= self.size <= _MAX_TREE_SIZE:
            raise NoteError(f"checkpoint size {self.size} is not between 0 and 2**64 - 1")
        if len(self.root_hash) != _ROOT_HASH_SIZE:
            raise NoteError(
                f"checkpoint root hash is {len(self.root_hash)} bytes, not {_ROOT_HASH_SIZE}"
            )

    # c2sp.org/tlog-checkpoint#note-text
    def to_text(self) -> str:
        """The note text: origin, size, base64 root hash, extension lines; each + "\\n"."""
        lines = [self.origin, str(self.size), encode_base64(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)

    # c2sp.org/tlog-checkpoint#note-text
    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text strictly (the unsigned text, not the whole note)."""
        if not text.endswith("\n"):
            raise NoteError("checkpoint text does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError(
                f"checkpoint has {len(lines)} line(s); it needs an origin, a tree size and "
                "a root hash"
            )
        for number, line in enumerate(lines, 1):
            if not line:
                raise NoteError(f"checkpoint line {number} is empty")
        origin, size_text, root_text, *extensions = lines
        return cls(origin, _parse_size(size_text), _parse_root(root_text), tuple(extensions))


# c2sp.org/tlog-checkpoint#note-text (tree size: ASCII decimal, no leading zeroes)
def _parse_size(text: str) -> int:
    if _DECIMAL.fullmatch(text) is None:
        if text.startswith("-"):
            raise NoteError(f"checkpoint tree size {text!r} is negative")
        if re.fullmatch(r"0[0-9]+", text):
            raise NoteError(f"checkpoint tree size {text!r} has a leading zero")
        raise NoteError(f"checkpoint tree size {text!r} is not a decimal number")
    size = int(text)
    if size > _MAX_TREE_SIZE:
        raise NoteError(f"checkpoint tree size {text} does not fit in 64 bits")
    return size


# c2sp.org/tlog-checkpoint#note-text (root hash: base64 of 32 bytes)
def _parse_root(text: str) -> bytes:
    try:
        root_hash = decode_base64(text, "checkpoint root hash")
    except NoteError:
        root_hash = b""
    if len(root_hash) != _ROOT_HASH_SIZE:
        raise NoteError(f"checkpoint root hash is not {_ROOT_HASH_SIZE} bytes of base64: {text!r}")
    return root_hash


# c2sp.org/tlog-checkpoint#signatures
def sign_checkpoint(cp: Checkpoint, signer: Signer) -> str:
    """The checkpoint as a note signed by the log's key (its name SHOULD be the origin)."""
    return sign_note(cp.to_text(), [signer])


# c2sp.org/tlog-checkpoint#signatures
def open_checkpoint(
    note: str, verifiers: Iterable[Verifier], *, origin: str | None = None
) -> tuple[Checkpoint, tuple[Verifier, ...]]:
    """Verify a checkpoint note against the log's keys and parse it.

    ``origin``, if given, must equal the checkpoint's: a log key might sign tree heads of
    more than one log, and a valid tree head of another log is no statement about this one.
    At least one plain Ed25519 (0x01) signature must verify: a witness cosignature says a
    witness saw the tree head, it does not stand in for the log's own signature.
    """
    parsed, verified = open_note(note, verifiers)
    checkpoint = Checkpoint.parse(parsed.text)
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint is for origin {checkpoint.origin!r}, expected {origin!r}")
    if not any(v.alg == ALG_ED25519 for v in verified):
        names = ", ".join(key_id(v.name, v.key_hash) for v in verified)
        raise NoteError(f"checkpoint has no log signature: only cosignatures verified ({names})")
    return checkpoint, verified


# c2sp.org/tlog-cosignature#format, applied to a checkpoint note
def cosign_checkpoint(note: str, witness: Signer, timestamp: int) -> str:
    """Add ``witness``'s cosignature/v1 at POSIX time ``timestamp`` to a checkpoint note.

    The witness must already have checked the log's signature and the consistency of
    this tree head with what it saw before; this function only produces the signature.
    A previous cosignature by the same witness key is replaced.
    """
    if witness.alg != ALG_COSIGNATURE_V1:
        raise NoteError(
            f"witness key {witness.name} is not a cosignature/v1 (0x04) key; generate one "
            "with generate_key(name, alg=ALG_COSIGNATURE_V1)"
        )
    check_timestamp(timestamp)
    parsed = parse_note(note)
    Checkpoint.parse(parsed.text)  # cosignatures are defined over checkpoints only
    text = check_text(parsed.text)
    signed = witness.private_key.sign(cosigned_message(timestamp, text))
    cosignature = NoteSignature(witness.name, witness.key_hash, join_cosignature(timestamp, signed))
    return with_signatures(parsed, [cosignature])
