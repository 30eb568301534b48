"""Signed notes, checkpoints and witness cosignatures in the C2SP formats (pure, no I/O).

The audit log's tree heads are published in the formats the transparency-log ecosystem
already speaks (Go's ``golang.org/x/mod/sumdb/note``, transparency-dev, Sigstore, Sigsum),
so that auditors and witnesses can check them with tools nobody here wrote:

* **Signed note** (https://c2sp.org/signed-note): a UTF-8 text ending in a newline, a blank
  line, then one or more signature lines ``"— <key name> <base64(key hash || sig)>\\n"``
  (U+2014 EM DASH, space). The signature covers the text including its final newline but
  not the blank line. No ASCII control characters other than newline anywhere. The 4-byte
  key hash is ``SHA-256(name || "\\n" || signature type || public key)[:4]``.
* **Keys**: a verifier key (vkey) is ``<name>+<8 hex hash>+<base64(type || public key)>``,
  a signer key (skey) ``PRIVATE+KEY+<name>+<8 hex hash>+<base64(type || 32-byte seed)>``.
  Supported signature types: 0x01 (Ed25519 over the note text) and 0x04 (Ed25519
  cosignature/v1, below). Nothing else is accepted, on purpose: the spec asks
  implementations to support only the types their design needs.
* **Checkpoint** (https://c2sp.org/tlog-checkpoint): a note whose text is the origin line,
  the tree size in decimal (no leading zeroes), the base64 RFC 6962 root hash (32 bytes),
  then optional non-empty extension lines::

      example.com/behind-the-sofa
      20852163
      CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

      — example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4U...

* **Cosignature** (https://c2sp.org/tlog-cosignature, type 0x04): a witness's note
  signature whose bytes are ``8-byte big-endian POSIX timestamp || Ed25519 signature`` over
  ``"cosignature/v1\\ntime <timestamp>\\n" + checkpoint text``.

Verification follows Go's ``note.Open``: signatures by unknown keys are ignored (they
enable key rotation and cosigning), a signature by a known key that does not verify
rejects the whole note, and a note with no verified signature is rejected. Every failure
is a :class:`NoteError` whose message says what is wrong.

Where this module is stricter than Go (each is a MAY/SHOULD of the spec or harmless for
notes any real signer produces): base64 must be canonical, every signature by a known key
is verified (Go skips repeats), checkpoint sizes must not have leading zeroes, and two
different verifier keys with the same name and key hash are refused up front.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "Checkpoint",
    "Note",
    "NoteError",
    "NoteSignature",
    "Signer",
    "Verifier",
    "add_signatures",
    "cosign_checkpoint",
    "cosignature_time",
    "generate_key",
    "key_hash",
    "open_checkpoint",
    "open_note",
    "parse_note",
    "sign_checkpoint",
    "sign_note",
    "split_signed",
]

#: Signature type of plain Ed25519 note signatures (c2sp.org/signed-note).
ALG_ED25519: Final = 0x01
#: Signature type of timestamped Ed25519 witness cosignatures (c2sp.org/tlog-cosignature).
ALG_COSIGNATURE_V1: Final = 0x04

#: Most signature lines a note may carry. The spec asks verifiers to cap the count (and to
#: accept at least 16); 100 is Go's cap, so both accept exactly the same notes.
MAX_SIGNATURES: Final = 100

#: tlog-cosignature: the timestamp "MUST NOT exceed 2^63 - 1".
_MAX_TIMESTAMP: Final = 2**63 - 1
#: The tree size is a uint64 everywhere else (Go parses it with ParseUint(…, 64)).
_MAX_TREE_SIZE: Final = 2**64 - 1
_MAX_KEY_HASH: Final = 2**32 - 1

_ED25519_KEY_SIZE: Final = 32
_ED25519_SIGNATURE_SIZE: Final = 64
_TIMESTAMP_SIZE: Final = 8
_COSIGNATURE_SIZE: Final = _TIMESTAMP_SIZE + _ED25519_SIGNATURE_SIZE
_ROOT_HASH_SIZE: Final = 32  # SHA-256, RFC 6962

_SUPPORTED_ALGS: Final = {
    ALG_ED25519: "Ed25519 (0x01)",
    ALG_COSIGNATURE_V1: "Ed25519 cosignature/v1 (0x04)",
}

_SIG_PREFIX: Final = "\u2014 "  # EM DASH, SPACE
_PRIVATE_PREFIX: Final = "PRIVATE+KEY+"
_COSIGNATURE_HEADER: Final = b"cosignature/v1\n"

_HEX8: Final = re.compile(r"[0-9a-fA-F]{8}")
# ASCII digits only: ``int()`` would also take "+1", " 1", "1_0" and non-ASCII digits.
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]*")
_CONTROL: Final = re.compile(r"[\x00-\x09\x0b-\x1f]")

# Go's unicode.IsSpace (the Unicode White_Space property). Key names must not contain
# any of these: the signature line separates the name from the signature at a space, and
# lookalike spaces would let two different names render identically.
_WHITE_SPACE: Final = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


class NoteError(ValueError):
    """A key, note or checkpoint is malformed, or its signatures do not verify."""


# --------------------------------------------------------------------------- helpers


def _utf8(text: str, what: str) -> bytes:
    """``text`` as UTF-8; a Python str can hold lone surrogates, which UTF-8 cannot."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = ord(text[exc.start])
        raise NoteError(
            f"{what} is not valid UTF-8 (lone surrogate U+{bad:04X} at offset {exc.start})"
        ) from None


def _check_controls(text: str, what: str) -> None:
    match = _CONTROL.search(text)
    if match is not None:
        raise NoteError(
            f"{what} contains control character U+{ord(match.group()):04X} at offset "
            f"{match.start()}; only newline is allowed"
        )


def _check_text(text: str, what: str = "note text") -> bytes:
    """Validate a note text (signed body) and return its UTF-8 bytes."""
    if not text.endswith("\n"):
        raise NoteError(f"{what} must end with a newline")
    data = _utf8(text, what)
    _check_controls(text, what)
    return data


def _name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid key name (c2sp.org/signed-note), or None if it is."""
    if not name:
        return "is empty"
    if "+" in name:
        # '+' separates the fields of a vkey/skey, so a name with one could not be parsed.
        return "contains '+'"
    for char in name:
        if char in _WHITE_SPACE:
            return f"contains whitespace U+{ord(char):04X}"
        if char < " ":
            # Cannot appear in a note, so a key with such a name could never match one.
            return f"contains control character U+{ord(char):04X}"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    return None


def _check_name(name: str, what: str) -> None:
    problem = _name_problem(name)
    if problem is not None:
        raise NoteError(f"{what} {name!r} {problem}; key names must be non-empty, without '+'")


def _check_alg(alg: int, what: str) -> None:
    if alg not in _SUPPORTED_ALGS:
        raise NoteError(
            f"{what} has unsupported signature type 0x{alg & 0xFF:02x}; only "
            + " and ".join(_SUPPORTED_ALGS.values())
            + " are supported"
        )


def _b64decode(text: str, what: str) -> bytes:
    """Strict standard base64 (RFC 4648 §4): padded, no stray characters, canonical.

    Canonical means the encoding is the one an encoder would produce (unused trailing bits
    zero), so that one signature has exactly one textual form. The message never echoes
    ``text``: it may be private key material.
    """
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what} is not valid base64") from None
    if base64.b64encode(data).decode("ascii") != text:
        raise NoteError(f"{what} is not canonical base64")
    return data


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    if len(signature) != _ED25519_SIGNATURE_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _cosigned_message(timestamp: int, text: bytes) -> bytes:
    """The message a cosignature/v1 signs: the header line gives domain separation from
    plain note signatures (so a witness signature can never pass as the log's), the time
    line binds the witness's "as of" statement."""
    return _COSIGNATURE_HEADER + b"time %d\n" % timestamp + text


def key_hash(name: str, alg: int, public_key: bytes) -> int:
    """The 32-bit key ID: ``SHA-256(name || "\\n" || alg || public key)[:4]``, big-endian.

    It is an identifier, not a security measure: it lets a verifier pick the right key
    for a signature line (and tells apart keys of one name across rotation or signature
    types). A forged key with a colliding hash gains nothing, the signature still fails.
    """
    if not 0 <= alg <= 0xFF:
        raise NoteError(f"signature type {alg} does not fit in a byte")
    data = _utf8(name, "key name") + b"\n" + bytes([alg]) + public_key
    return int.from_bytes(hashlib.sha256(data).digest()[:4], "big")


def _key_id(name: str, hash_: int) -> str:
    return f"{name}+{hash_:08x}"


# ------------------------------------------------------------------------------ keys


@dataclass(frozen=True)
class Verifier:
    """A public key that can check note signatures: Ed25519 (0x01) or cosignature (0x04)."""

    name: str
    key_hash: int
    alg: int
    public_key: bytes  # raw 32-byte Ed25519 public key

    def __post_init__(self) -> None:
        _check_name(self.name, "verifier key name")
        _check_alg(self.alg, f"verifier key {self.name}")
        if len(self.public_key) != _ED25519_KEY_SIZE:
            raise NoteError(
                f"verifier key {self.name} has a {len(self.public_key)}-byte public key; "
                f"Ed25519 keys are {_ED25519_KEY_SIZE} bytes"
            )
        # Go's NewVerifier insists on the recommended key hash too: a key whose hash were
        # free could be configured under another key's (name, hash) and shadow it.
        expected = key_hash(self.name, self.alg, self.public_key)
        if self.key_hash != expected:
            raise NoteError(
                f"verifier key {_key_id(self.name, self.key_hash & _MAX_KEY_HASH)} has the "
                f"wrong key hash: name, type and public key hash to {expected:08x}"
            )

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """Parse a verifier key ``<name>+<hash>+<base64(type || public key)>``."""
        parts = vkey.split("+", 2)  # base64 may contain '+', names may not
        if len(parts) != 3:
            raise NoteError("verifier key is not of the form <name>+<hash>+<base64 key>")
        name, hash_hex, key_b64 = parts
        _check_name(name, "verifier key name")
        if _HEX8.fullmatch(hash_hex) is None:
            raise NoteError(f"verifier key {name}: key hash {hash_hex!r} is not 8 hex digits")
        raw = _b64decode(key_b64, f"verifier key {name}: public key")
        if not raw:
            raise NoteError(f"verifier key {name}: public key is empty")
        return cls(name, int(hash_hex, 16), raw[0], raw[1:])

    def encode(self) -> str:
        """The verifier key string (the form :meth:`parse` reads)."""
        key = _b64encode(bytes([self.alg]) + self.public_key)
        return f"{_key_id(self.name, self.key_hash)}+{key}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (the bytes after the key hash) is valid for ``message``.

        For a cosignature key, ``signature`` is ``timestamp || Ed25519 signature`` and
        ``message`` is the checkpoint text; the signed message is rebuilt from both.
        """
        if self.alg == ALG_ED25519:
            return _ed25519_verify(self.public_key, signature, message)
        if len(signature) != _COSIGNATURE_SIZE:
            return False
        timestamp = int.from_bytes(signature[:_TIMESTAMP_SIZE], "big")
        if timestamp > _MAX_TIMESTAMP:
            return False
        return _ed25519_verify(
            self.public_key,
            signature[_TIMESTAMP_SIZE:],
            _cosigned_message(timestamp, message),
        )


# eq=False: two signers are the same only if they are the same object (private keys have
# no meaningful equality, and comparing secrets is best not done casually).
@dataclass(frozen=True, eq=False)
class Signer:
    """A private Ed25519 key with its name: a log key (0x01) or a witness key (0x04)."""

    name: str
    key_hash: int
    # repr=False so that logging or printing a Signer never leaks the private key.
    private_key: Ed25519PrivateKey = field(repr=False)
    alg: int = ALG_ED25519

    def __post_init__(self) -> None:
        _check_name(self.name, "signer key name")
        _check_alg(self.alg, f"signer key {self.name}")
        expected = key_hash(self.name, self.alg, self.private_key.public_key().public_bytes_raw())
        if self.key_hash != expected:
            raise NoteError(
                f"signer key {_key_id(self.name, self.key_hash & _MAX_KEY_HASH)} has the "
                f"wrong key hash: its public key hashes to {expected:08x}"
            )

    @classmethod
    def parse(cls, skey: str) -> Signer:
        """Parse ``PRIVATE+KEY+<name>+<hash>+<base64(type || 32-byte seed)>``.

        Error messages name the key but never include the key material.
        """
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise NoteError("signer key is not of the form PRIVATE+KEY+<name>+<hash>+<base64 key>")
        _, _, name, hash_hex, key_b64 = parts
        _check_name(name, "signer key name")
        if _HEX8.fullmatch(hash_hex) is None:
            raise NoteError(f"signer key {name}: key hash is not 8 hex digits")
        raw = _b64decode(key_b64, f"signer key {name}: private key")
        if len(raw) != 1 + _ED25519_KEY_SIZE:
            raise NoteError(
                f"signer key {name}: private key must be a type byte and a "
                f"{_ED25519_KEY_SIZE}-byte Ed25519 seed"
            )
        private_key = Ed25519PrivateKey.from_private_bytes(raw[1:])
        return cls(name, int(hash_hex, 16), private_key, raw[0])

    def encode(self) -> str:
        """The secret ``PRIVATE+KEY+…`` string (the form :meth:`parse` reads)."""
        seed = self.private_key.private_bytes_raw()
        return f"{_PRIVATE_PREFIX}{_key_id(self.name, self.key_hash)}+" + _b64encode(
            bytes([self.alg]) + seed
        )

    def verifier(self) -> Verifier:
        """The matching public :class:`Verifier`."""
        public_key = self.private_key.public_key().public_bytes_raw()
        return Verifier(self.name, self.key_hash, self.alg, public_key)

    def sign(self, message: bytes) -> bytes:
        """Ed25519-sign ``message`` (a note text). Only for 0x01 keys."""
        if self.alg != ALG_ED25519:
            # A cosignature needs a timestamp and signs a different message; signing the
            # bare text would produce a line no cosignature verifier accepts.
            raise NoteError(
                f"signer key {self.name} is a cosignature/v1 (0x04) key: it signs "
                "checkpoints only through cosign_checkpoint"
            )
        return self.private_key.sign(message)


def generate_key(name: str, *, alg: int = ALG_ED25519) -> tuple[str, str]:
    """A fresh random Ed25519 key pair as ``(skey, vkey)`` strings.

    ``alg=ALG_COSIGNATURE_V1`` makes a witness key. The skey is secret.
    """
    _check_name(name, "key name")
    _check_alg(alg, f"key {name}")
    private_key = Ed25519PrivateKey.generate()
    hash_ = key_hash(name, alg, private_key.public_key().public_bytes_raw())
    signer = Signer(name, hash_, private_key, alg)
    return signer.encode(), signer.verifier().encode()


# ----------------------------------------------------------------------------- notes


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, key hash, and the signature bytes after the hash."""

    name: str
    key_hash: int
    signature: bytes

    def __post_init__(self) -> None:
        _check_name(self.name, "signature key name")
        if not 0 <= self.key_hash <= _MAX_KEY_HASH:
            raise NoteError(f"signature key hash {self.key_hash} is not a 32-bit value")
        if not self.signature:
            raise NoteError(f"signature by {self.name} is empty")


@dataclass(frozen=True)
class Note:
    """A parsed note: the signed ``text`` (ends with a newline) and all its signatures,
    verified or not, in the order they appear."""

    text: str
    signatures: tuple[NoteSignature, ...]


def _signature_line(sig: NoteSignature) -> str:
    payload = sig.key_hash.to_bytes(4, "big") + sig.signature
    return f"{_SIG_PREFIX}{sig.name} {_b64encode(payload)}\n"


def _assemble(text: str, signatures: Sequence[NoteSignature]) -> str:
    if not signatures:
        raise NoteError("a note needs at least one signature")
    if len(signatures) > MAX_SIGNATURES:
        raise NoteError(
            f"a note may carry at most {MAX_SIGNATURES} signatures, this one would have "
            f"{len(signatures)}"
        )
    return text + "\n" + "".join(_signature_line(sig) for sig in signatures)


def split_signed(note: str) -> tuple[str, str]:
    """Split a signed note into its text and its block of signature lines.

    Checks the note-wide rules (valid UTF-8, no control characters but newline) and splits
    at the *last* blank line, as the spec says: the text may contain blank lines itself.
    """
    _utf8(note, "note")
    _check_controls(note, "note")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line between its text and its signatures (or no text)")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise NoteError("note has no signature lines after the blank line")
    if not block.endswith("\n"):
        raise NoteError("note's last signature line does not end with a newline")
    return text, block


def _parse_signature_line(line: str, number: int) -> NoteSignature:
    where = f"signature line {number}"
    if not line.startswith(_SIG_PREFIX):
        raise NoteError(
            f"{where} does not start with an em dash (U+2014) and a space: {line[:60]!r}"
        )
    name, space, sig_b64 = line[len(_SIG_PREFIX) :].partition(" ")
    if not space:
        raise NoteError(f"{where} has no space between the key name and the signature")
    problem = _name_problem(name)
    if problem is not None:
        raise NoteError(f"{where}: key name {name!r} {problem}")
    raw = _b64decode(sig_b64, f"{where} (by {name}): signature")
    if len(raw) < 5:
        raise NoteError(
            f"{where} (by {name}): signature is {len(raw)} bytes, too short for a 4-byte "
            "key hash and a signature"
        )
    return NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:])


def parse_note(note: str) -> Note:
    """Parse a signed note's syntax (no cryptography: nothing here is trusted yet)."""
    text, block = split_signed(note)
    lines = block[:-1].split("\n")
    # Counted before decoding anything, so a note stuffed with signatures costs nothing.
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(
            f"note has {len(lines)} signature lines; at most {MAX_SIGNATURES} are accepted"
        )
    signatures = tuple(_parse_signature_line(line, n) for n, line in enumerate(lines, 1))
    return Note(text, signatures)


def _new_signatures(text: bytes, signers: Sequence[Signer]) -> list[NoteSignature]:
    seen: set[tuple[str, int]] = set()
    signatures = []
    for signer in signers:
        ident = (signer.name, signer.key_hash)
        if ident in seen:
            raise NoteError(f"signer {_key_id(*ident)} is given twice")
        seen.add(ident)
        signatures.append(NoteSignature(signer.name, signer.key_hash, signer.sign(text)))
    return signatures


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """Sign ``text`` (must end with a newline) with each signer; returns the full note."""
    data = _check_text(text)
    return _assemble(text, _new_signatures(data, signers))


def _replace(old: Sequence[NoteSignature], new: Sequence[NoteSignature]) -> list[NoteSignature]:
    """Old signatures, minus those by a key that signs anew, then the new ones (as Go's
    note.Sign: re-signing replaces a key's signature instead of stacking a second one)."""
    renewed = {(sig.name, sig.key_hash) for sig in new}
    return [sig for sig in old if (sig.name, sig.key_hash) not in renewed] + list(new)


def add_signatures(note: str, signers: Sequence[Signer]) -> str:
    """Co-sign: append signatures by ``signers`` to ``note``, keeping the existing ones.

    The existing signatures are not verified here; open the note first if that matters.
    A signer that already signed the note replaces its old signature.
    """
    parsed = parse_note(note)
    new = _new_signatures(_utf8(parsed.text, "note text"), signers)
    return _assemble(parsed.text, _replace(parsed.signatures, new))


def _verifier_index(verifiers: Iterable[Verifier]) -> dict[tuple[str, int], Verifier]:
    index: dict[tuple[str, int], Verifier] = {}
    for verifier in verifiers:
        ident = (verifier.name, verifier.key_hash)
        known = index.setdefault(ident, verifier)
        if known != verifier:
            # Only possible if someone tampered with the trust configuration; guessing
            # which key is meant would be wrong either way.
            raise NoteError(
                f"two different verifier keys are both named {_key_id(*ident)}; "
                "the trusted key list is ambiguous"
            )
    return index


def _untrusted(note: Note, known: dict[tuple[str, int], Verifier]) -> NoteError:
    trusted = ", ".join(_key_id(*ident) for ident in known) or "none"
    signed = ", ".join(_key_id(sig.name, sig.key_hash) for sig in note.signatures)
    message = f"no signature by a trusted key (trusted: {trusted}): signed by {signed}"
    # The commonest real cause is a rotated or mistyped key: say so when names match.
    for sig in note.signatures:
        hashes = [f"{hash_:08x}" for name, hash_ in known if name == sig.name]
        if hashes:
            message += (
                f"; the signature by {sig.name} has key hash {sig.key_hash:08x}, but the "
                f"trusted {sig.name} key hash is {' or '.join(hashes)}"
            )
            break
    return NoteError(message)


def open_note(note: str, verifiers: Iterable[Verifier]) -> tuple[Note, tuple[Verifier, ...]]:
    """Parse and verify a note against trusted ``verifiers``.

    Returns the note (with all signatures) and the verifiers whose signatures verified,
    in order of first appearance. A signature matching a trusted (name, key hash) that
    fails to verify rejects the note; signatures by unknown keys are ignored; a note with
    no verified signature is rejected.
    """
    known = _verifier_index(verifiers)
    parsed = parse_note(note)
    text = _utf8(parsed.text, "note text")
    verified: list[Verifier] = []
    for sig in parsed.signatures:
        verifier = known.get((sig.name, sig.key_hash))
        if verifier is None:
            continue  # unknown key: ignored, as the spec requires (rotation, witnesses)
        # Every signature by a known key is checked, repeats included: the spec says a
        # known key's signature MUST be verified, and a bad one taints the whole note.
        if not verifier.verify(text, sig.signature):
            raise NoteError(
                f"signature by {_key_id(sig.name, sig.key_hash)} does not verify: the note "
                "text was altered or the signature is corrupt"
            )
        if verifier not in verified:
            verified.append(verifier)
    if not verified:
        raise _untrusted(parsed, known)
    return parsed, tuple(verified)


# ------------------------------------------------------------------------ checkpoints


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
            _utf8(line, f"checkpoint {what}")
            _check_controls(line, f"checkpoint {what}")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise NoteError(f"checkpoint size {self.size!r} is not an integer")
        if not 0 <= self.size <= _MAX_TREE_SIZE:
            raise NoteError(f"checkpoint size {self.size} is not between 0 and 2**64 - 1")
        if len(self.root_hash) != _ROOT_HASH_SIZE:
            raise NoteError(
                f"checkpoint root hash is {len(self.root_hash)} bytes, not {_ROOT_HASH_SIZE}"
            )

    def to_text(self) -> str:
        """The note text: origin, size, base64 root hash, extension lines; each + "\\n"."""
        lines = [self.origin, str(self.size), _b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)

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
        if _DECIMAL.fullmatch(size_text) is None:
            if size_text.startswith("-"):
                raise NoteError(f"checkpoint tree size {size_text!r} is negative")
            if re.fullmatch(r"0[0-9]+", size_text):
                raise NoteError(f"checkpoint tree size {size_text!r} has a leading zero")
            raise NoteError(f"checkpoint tree size {size_text!r} is not a decimal number")
        size = int(size_text)
        if size > _MAX_TREE_SIZE:
            raise NoteError(f"checkpoint tree size {size_text} does not fit in 64 bits")
        try:
            root_hash = _b64decode(root_text, "checkpoint root hash")
        except NoteError:
            root_hash = b""
        if len(root_hash) != _ROOT_HASH_SIZE:
            raise NoteError(
                f"checkpoint root hash is not {_ROOT_HASH_SIZE} bytes of base64: {root_text!r}"
            )
        return cls(origin, size, root_hash, tuple(extensions))


def sign_checkpoint(cp: Checkpoint, signer: Signer) -> str:
    """The checkpoint as a note signed by the log's key (its name SHOULD be the origin)."""
    return sign_note(cp.to_text(), [signer])


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
        names = ", ".join(_key_id(v.name, v.key_hash) for v in verified)
        raise NoteError(f"checkpoint has no log signature: only cosignatures verified ({names})")
    return checkpoint, verified


# ---------------------------------------------------------------------- cosignatures


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
    if isinstance(timestamp, bool) or not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp!r} is not between 0 and 2**63 - 1")
    parsed = parse_note(note)
    Checkpoint.parse(parsed.text)  # cosignatures are defined over checkpoints only
    text = _utf8(parsed.text, "note text")
    signature = timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + witness.private_key.sign(
        _cosigned_message(timestamp, text)
    )
    cosignature = NoteSignature(witness.name, witness.key_hash, signature)
    return _assemble(parsed.text, _replace(parsed.signatures, [cosignature]))


def cosignature_time(sig: NoteSignature) -> int:
    """The POSIX timestamp inside an Ed25519 cosignature (not verified: open the note)."""
    if len(sig.signature) != _COSIGNATURE_SIZE:
        raise NoteError(
            f"signature by {sig.name} is {len(sig.signature)} bytes, not an Ed25519 "
            f"cosignature ({_COSIGNATURE_SIZE} bytes: timestamp and signature)"
        )
    timestamp = int.from_bytes(sig.signature[:_TIMESTAMP_SIZE], "big")
    if timestamp > _MAX_TIMESTAMP:
        raise NoteError(f"cosignature by {sig.name} has a timestamp beyond 2**63 - 1")
    return timestamp
