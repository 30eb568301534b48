"""C2SP tlog-cosignature/v1 (https://c2sp.org/tlog-cosignature): the witness signature
type 0x04, as bytes and messages (pure, no I/O, no keys).

A cosignature is a note signature (c2sp.org/signed-note) by a witness on a checkpoint
(c2sp.org/tlog-checkpoint). For type 0x04 the signature bytes after the key hash are
``8-byte big-endian POSIX timestamp || Ed25519 signature``, and the Ed25519 signature is
over ``"cosignature/v1\\ntime <timestamp>\\n" + checkpoint text``::

    example.com/behind-the-sofa
    20852163
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

    — example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4U...
    — witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEh...

This module holds only what the spec defines for the type: the signed message and the
layout of the signature bytes. :mod:`gateway.tlog.note` uses it to verify 0x04 note
signatures (signed-note registers the type), and
:func:`gateway.tlog.checkpoint.cosign_checkpoint` to add a cosignature to a checkpoint
note; so it imports nothing but the package's errors, and both of them can import it.
"""

from __future__ import annotations

from typing import Final, Protocol

from gateway.tlog.errors import NoteError

__all__ = [
    "ALG_COSIGNATURE_V1",
    "COSIGNATURE_SIZE",
    "MAX_TIMESTAMP",
    "check_timestamp",
    "cosignature_time",
    "cosigned_message",
    "join_cosignature",
    "split_cosignature",
]

#: c2sp.org/tlog-cosignature#format: the signature type byte of Ed25519 cosignature/v1
#: keys (it is part of their key hash, so a witness key never matches a log key).
ALG_COSIGNATURE_V1: Final = 0x04

#: c2sp.org/tlog-cosignature#format: the timestamp "MUST NOT exceed 2^63 - 1".
MAX_TIMESTAMP: Final = 2**63 - 1

_TIMESTAMP_SIZE: Final = 8
_ED25519_SIGNATURE_SIZE: Final = 64
#: The bytes after the key hash: timestamp, then the Ed25519 signature.
COSIGNATURE_SIZE: Final = _TIMESTAMP_SIZE + _ED25519_SIGNATURE_SIZE

_HEADER: Final = b"cosignature/v1\n"


class SignatureLine(Protocol):
    """What :func:`cosignature_time` reads of a parsed note signature."""

    @property
    def name(self) -> str: ...

    @property
    def signature(self) -> bytes: ...


# c2sp.org/tlog-cosignature#format (the signed message)
def cosigned_message(timestamp: int, checkpoint_text: bytes) -> bytes:
    """The message a cosignature/v1 signs: the header line gives domain separation from
    plain note signatures (so a witness signature can never pass as the log's), the time
    line binds the witness's "as of" statement."""
    return _HEADER + b"time %d\n" % timestamp + checkpoint_text


# c2sp.org/tlog-cosignature#format (timestamp range)
def check_timestamp(timestamp: object) -> int:
    """``timestamp`` if it is an int in 0 .. 2**63 - 1, else NoteError."""
    if (
        isinstance(timestamp, bool)
        or not isinstance(timestamp, int)
        or not 0 <= timestamp <= MAX_TIMESTAMP
    ):
        raise NoteError(f"cosignature timestamp {timestamp!r} is not between 0 and 2**63 - 1")
    return timestamp


# c2sp.org/tlog-cosignature#format (timestamped_signature)
def join_cosignature(timestamp: int, ed25519_signature: bytes) -> bytes:
    """The signature bytes of a note signature line: 8-byte big-endian timestamp, then
    the Ed25519 signature of :func:`cosigned_message`."""
    return check_timestamp(timestamp).to_bytes(_TIMESTAMP_SIZE, "big") + ed25519_signature


# c2sp.org/tlog-cosignature#format (timestamped_signature)
def split_cosignature(signature: bytes) -> tuple[int, bytes] | None:
    """``(timestamp, Ed25519 signature)`` of a cosignature's bytes, or None when they
    cannot be one (wrong length, timestamp beyond 2**63 - 1): such a signature by a known
    witness key simply does not verify."""
    if len(signature) != COSIGNATURE_SIZE:
        return None
    timestamp = int.from_bytes(signature[:_TIMESTAMP_SIZE], "big")
    if timestamp > MAX_TIMESTAMP:
        return None
    return timestamp, signature[_TIMESTAMP_SIZE:]


# c2sp.org/tlog-cosignature#format
def cosignature_time(sig: SignatureLine) -> int:
    """The POSIX timestamp inside an Ed25519 cosignature (not verified: open the note)."""
    if len(sig.signature) != COSIGNATURE_SIZE:
        raise NoteError(
            f"signature by {sig.name} is {len(sig.signature)} bytes, not an Ed25519 "
            f"cosignature ({COSIGNATURE_SIZE} bytes: timestamp and signature)"
        )
    parts = split_cosignature(sig.signature)
    if parts is None:
        raise NoteError(f"cosignature by {sig.name} has a timestamp beyond 2**63 - 1")
    return parts[0]
