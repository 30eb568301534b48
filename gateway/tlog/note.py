"""C2SP signed notes (https://c2sp.org/signed-note): keys, signing, opening (pure, no I/O).

The audit log's tree heads are published in the formats the transparency-log ecosystem
already speaks (Go's ``golang.org/x/mod/sumdb/note``, transparency-dev, Sigstore, Sigsum),
so that auditors and witnesses can check them with tools nobody here wrote:

* **Signed note**: a UTF-8 text ending in a newline, a blank line, then one or more
  signature lines ``"— <key name> <base64(key hash || sig)>\\n"`` (U+2014 EM DASH,
  space). The signature covers the text including its final newline but not the blank
  line. No ASCII control characters other than newline anywhere. The 4-byte key hash is
  ``SHA-256(name || "\\n" || signature type || public key)[:4]``.
* **Keys**: a verifier key (vkey) is ``<name>+<8 hex hash>+<base64(type || public key)>``,
  a signer key (skey) ``PRIVATE+KEY+<name>+<8 hex hash>+<base64(type || 32-byte seed)>``.
  Supported signature types: 0x01 (Ed25519 over the note text, defined here) and 0x04
  (Ed25519 cosignature/v1, defined by c2sp.org/tlog-cosignature: see
  :mod:`gateway.tlog.cosignature`). Nothing else is accepted, on purpose: the spec asks
  implementations to support only the types their design needs.

Verification follows Go's ``note.Open``: signatures by unknown keys are ignored (they
enable key rotation and cosigning), a signature by a known key that does not verify
rejects the whole note, and a note with no verified signature is rejected. Every failure
is a :class:`~gateway.tlog.errors.NoteError` whose message says what is wrong.

Where this module is stricter than Go (each is a MAY/SHOULD of the spec or harmless for
notes any real signer produces): base64 must be canonical, every signature by a known key
is verified (Go skips repeats), and two different verifier keys with the same name and key
hash are refused up front.

Checkpoints (c2sp.org/tlog-checkpoint) are notes with a particular text: see
:mod:`gateway.tlog.checkpoint`. Part of :mod:`gateway.tlog`: it imports nothing from the
gateway.
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

from gateway.tlog.cosignature import ALG_COSIGNATURE_V1, cosigned_message, split_cosignature
from gateway.tlog.errors import NoteError

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "Note",
    "NoteError",
    "NoteSignature",
    "Signer",
    "Verifier",
    "add_signatures",
    "check_chars",
    "check_text",
    "decode_base64",
    "encode_base64",
    "generate_key",
    "key_hash",
    "key_id",
    "open_note",
    "parse_note",
    "sign_note",
    "split_signed",
    "with_signatures",
]

#: Signature type of plain Ed25519 note signatures (c2sp.org/signed-note#signature-types).
ALG_ED25519: Final = 0x01

#: Most signature lines a note may carry. The spec asks verifiers to cap the count (and to
#: accept at least 16); 100 is Go's cap, so both accept exactly the same notes.
MAX_SIGNATURES: Final = 100

_MAX_KEY_HASH: Final = 2**32 - 1

_ED25519_KEY_SIZE: Final = 32
_ED25519_SIGNATURE_SIZE: Final = 64

_SUPPORTED_ALGS: Final = {
    ALG_ED25519: "Ed25519 (0x01)",
    ALG_COSIGNATURE_V1: "Ed25519 cosignature/v1 (0x04)",
}

_SIG_PREFIX: Final = "\u2014 "  # EM DASH, SPACE
_PRIVATE_PREFIX: Final = "PRIVATE+KEY+"

_HEX8: Final = re.compile(r"[0-9a-fA-F]{8}")
_CONTROL: Final = re.compile(r"[\x00-\x09\x0b-\x1f]")

# Go's unicode.IsSpace (the Unicode White_Space property). Key names must not contain
# any of these: the signature line separates the name from the signature at a space, and
# lookalike spaces would let two different names render identically.
_WHITE_SPACE: Final = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


# --------------------------------------------------------------------------- helpers


# c2sp.org/signed-note#note-text (UTF-8)
def _utf8(text: str, what: str) -> bytes:
    """``text`` as UTF-8; a Python str can hold lone surrogates, which UTF-8 cannot."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = ord(text[exc.start])
        raise NoteError(
            f"{what} is not valid UTF-8 (lone surrogate U+{bad:04X} at offset {exc.start})"
        ) from None


# c2sp.org/signed-note#note-text (no control characters but newline)
def _check_controls(text: str, what: str) -> None:
    match = _CONTROL.search(text)
    if match is not None:
        raise NoteError(
            f"{what} contains control character U+{ord(match.group()):04X} at offset "
            f"{match.start()}; only newline is allowed"
        )


# c2sp.org/signed-note#note-text
def check_chars(text: str, what: str) -> bytes:
    """``text`` as UTF-8 bytes if it may stand in a note (valid UTF-8, no ASCII control
    character but newline); NoteError naming ``what`` otherwise."""
    data = _utf8(text, what)
    _check_controls(text, what)
    return data


# c2sp.org/signed-note#note-text
def check_text(text: str, what: str = "note text") -> bytes:
    """Validate a note text (signed body) and return its UTF-8 bytes."""
    if not text.endswith("\n"):
        raise NoteError(f"{what} must end with a newline")
    return check_chars(text, what)


# c2sp.org/signed-note#signatures (key names)
def _name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid key name, or None if it is."""
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


# c2sp.org/signed-note#signature-types
def _check_alg(alg: int, what: str) -> None:
    if alg not in _SUPPORTED_ALGS:
        raise NoteError(
            f"{what} has unsupported signature type 0x{alg & 0xFF:02x}; only "
            + " and ".join(_SUPPORTED_ALGS.values())
            + " are supported"
        )


# c2sp.org/signed-note#signatures (base64, RFC 4648 §4)
def decode_base64(text: str, what: str) -> bytes:
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


def encode_base64(data: bytes) -> str:
    """Standard padded base64 (RFC 4648 §4), the one spelling :func:`decode_base64` reads."""
    return base64.b64encode(data).decode("ascii")


# c2sp.org/signed-note#signature-types (0x01: Ed25519 over the note text)
def _ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    if len(signature) != _ED25519_SIGNATURE_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


# c2sp.org/signed-note#signatures (key ID)
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


def key_id(name: str, hash_: int) -> str:
    """``<name>+<8 hex digits>``: how messages name a key."""
    return f"{name}+{hash_:08x}"


# ------------------------------------------------------------------------------ keys


# c2sp.org/signed-note#signatures (the key ID a key must have)
def _check_key_hash(kind: str, name: str, given: int, expected: int, hashed: str) -> None:
    """NoteError unless ``given`` is the key hash ``expected``; ``hashed`` says what was
    hashed, as the end of the message ("... hash(es) to <expected>")."""
    if given != expected:
        raise NoteError(
            f"{kind} key {key_id(name, given & _MAX_KEY_HASH)} has the wrong key hash: "
            f"{hashed} {expected:08x}"
        )


# c2sp.org/signed-note#verifier-keys (<name>+<hash>+<base64 key>; the skey alike)
def _key_fields(kind: str, name: str, hash_hex: str, key_b64: str) -> tuple[int, bytes]:
    """The key hash and the decoded ``type || key`` bytes of a ``kind`` ("verifier" or
    "signer") key string's fields. A signer key's hash is not echoed: it sits next to
    secret material in the string."""
    _check_name(name, f"{kind} key name")
    if _HEX8.fullmatch(hash_hex) is None:
        shown = f" {hash_hex!r}" if kind == "verifier" else ""
        raise NoteError(f"{kind} key {name}: key hash{shown} is not 8 hex digits")
    material = "public key" if kind == "verifier" else "private key"
    return int(hash_hex, 16), decode_base64(key_b64, f"{kind} key {name}: {material}")


# c2sp.org/signed-note#verifier-keys
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
        _check_key_hash(
            "verifier", self.name, self.key_hash, expected, "name, type and public key hash to"
        )

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """Parse a verifier key ``<name>+<hash>+<base64(type || public key)>``."""
        parts = vkey.split("+", 2)  # base64 may contain '+', names may not
        if len(parts) != 3:
            raise NoteError("verifier key is not of the form <name>+<hash>+<base64 key>")
        name, hash_hex, key_b64 = parts
        hash_, raw = _key_fields("verifier", name, hash_hex, key_b64)
        if not raw:
            raise NoteError(f"verifier key {name}: public key is empty")
        return cls(name, hash_, raw[0], raw[1:])

    def encode(self) -> str:
        """The verifier key string (the form :meth:`parse` reads)."""
        key = encode_base64(bytes([self.alg]) + self.public_key)
        return f"{key_id(self.name, self.key_hash)}+{key}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (the bytes after the key hash) is valid for ``message``.

        For a cosignature key, ``signature`` is ``timestamp || Ed25519 signature`` and
        ``message`` is the checkpoint text; the signed message is rebuilt from both.
        """
        if self.alg == ALG_ED25519:
            return _ed25519_verify(self.public_key, signature, message)
        # c2sp.org/tlog-cosignature#format: timestamp || Ed25519 over the cosigned message
        parts = split_cosignature(signature)
        if parts is None:
            return False
        timestamp, ed25519_signature = parts
        return _ed25519_verify(
            self.public_key, ed25519_signature, cosigned_message(timestamp, message)
        )


# c2sp.org/signed-note#verifier-keys (and the PRIVATE+KEY+ form of Go's note package)
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
        _check_key_hash("signer", self.name, self.key_hash, expected, "its public key hashes to")

    @classmethod
    def parse(cls, skey: str) -> Signer:
        """Parse ``PRIVATE+KEY+<name>+<hash>+<base64(type || 32-byte seed)>``.

        Error messages name the key but never include the key material.
        """
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise NoteError("signer key is not of the form PRIVATE+KEY+<name>+<hash>+<base64 key>")
        _, _, name, hash_hex, key_b64 = parts
        hash_, raw = _key_fields("signer", name, hash_hex, key_b64)
        if len(raw) != 1 + _ED25519_KEY_SIZE:
            raise NoteError(
                f"signer key {name}: private key must be a type byte and a "
                f"{_ED25519_KEY_SIZE}-byte Ed25519 seed"
            )
        private_key = Ed25519PrivateKey.from_private_bytes(raw[1:])
        return cls(name, hash_, private_key, raw[0])

    def encode(self) -> str:
        """The secret ``PRIVATE+KEY+…`` string (the form :meth:`parse` reads)."""
        seed = self.private_key.private_bytes_raw()
        return f"{_PRIVATE_PREFIX}{key_id(self.name, self.key_hash)}+" + encode_base64(
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


# c2sp.org/signed-note#verifier-keys
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


# c2sp.org/signed-note#signatures
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


# c2sp.org/signed-note#format
@dataclass(frozen=True)
class Note:
    """A parsed note: the signed ``text`` (ends with a newline) and all its signatures,
    verified or not, in the order they appear."""

    text: str
    signatures: tuple[NoteSignature, ...]


# c2sp.org/signed-note#signatures
def _signature_line(sig: NoteSignature) -> str:
    payload = sig.key_hash.to_bytes(4, "big") + sig.signature
    return f"{_SIG_PREFIX}{sig.name} {encode_base64(payload)}\n"


# c2sp.org/signed-note#format
def _assemble(text: str, signatures: Sequence[NoteSignature]) -> str:
    if not signatures:
        raise NoteError("a note needs at least one signature")
    if len(signatures) > MAX_SIGNATURES:
        raise NoteError(
            f"a note may carry at most {MAX_SIGNATURES} signatures, this one would have "
            f"{len(signatures)}"
        )
    return text + "\n" + "".join(_signature_line(sig) for sig in signatures)


# c2sp.org/signed-note#format
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


# c2sp.org/signed-note#signatures
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
    raw = decode_base64(sig_b64, f"{where} (by {name}): signature")
    if len(raw) < 5:
        raise NoteError(
            f"{where} (by {name}): signature is {len(raw)} bytes, too short for a 4-byte "
            "key hash and a signature"
        )
    return NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:])


# c2sp.org/signed-note#format
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


# c2sp.org/signed-note#signatures
def _new_signatures(text: bytes, signers: Sequence[Signer]) -> list[NoteSignature]:
    seen: set[tuple[str, int]] = set()
    signatures = []
    for signer in signers:
        ident = (signer.name, signer.key_hash)
        if ident in seen:
            raise NoteError(f"signer {key_id(*ident)} is given twice")
        seen.add(ident)
        signatures.append(NoteSignature(signer.name, signer.key_hash, signer.sign(text)))
    return signatures


# c2sp.org/signed-note#signatures
def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """Sign ``text`` (must end with a newline) with each signer; returns the full note."""
    data = check_text(text)
    return _assemble(text, _new_signatures(data, signers))


# c2sp.org/signed-note#signatures (one signature per key, as Go's note.Sign)
def _replace(old: Sequence[NoteSignature], new: Sequence[NoteSignature]) -> list[NoteSignature]:
    """Old signatures, minus those by a key that signs anew, then the new ones (as Go's
    note.Sign: re-signing replaces a key's signature instead of stacking a second one)."""
    renewed = {(sig.name, sig.key_hash) for sig in new}
    return [sig for sig in old if (sig.name, sig.key_hash) not in renewed] + list(new)


# c2sp.org/signed-note#signatures
def with_signatures(note: Note, new: Sequence[NoteSignature]) -> str:
    """``note``'s text with its signatures, each key's old signature replaced by its one
    in ``new`` and the other new ones appended (the signatures are not checked here)."""
    return _assemble(note.text, _replace(note.signatures, new))


# c2sp.org/signed-note#signatures
def add_signatures(note: str, signers: Sequence[Signer]) -> str:
    """Co-sign: append signatures by ``signers`` to ``note``, keeping the existing ones.

    The existing signatures are not verified here; open the note first if that matters.
    A signer that already signed the note replaces its old signature.
    """
    parsed = parse_note(note)
    return with_signatures(parsed, _new_signatures(_utf8(parsed.text, "note text"), signers))


# c2sp.org/signed-note#verifying
def _verifier_index(verifiers: Iterable[Verifier]) -> dict[tuple[str, int], Verifier]:
    index: dict[tuple[str, int], Verifier] = {}
    for verifier in verifiers:
        ident = (verifier.name, verifier.key_hash)
        known = index.setdefault(ident, verifier)
        if known != verifier:
            # Only possible if someone tampered with the trust configuration; guessing
            # which key is meant would be wrong either way.
            raise NoteError(
                f"two different verifier keys are both named {key_id(*ident)}; "
                "the trusted key list is ambiguous"
            )
    return index


def _untrusted(note: Note, known: dict[tuple[str, int], Verifier]) -> NoteError:
    trusted = ", ".join(key_id(*ident) for ident in known) or "none"
    signed = ", ".join(key_id(sig.name, sig.key_hash) for sig in note.signatures)
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


# c2sp.org/signed-note#verifying
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
                f"signature by {key_id(sig.name, sig.key_hash)} does not verify: the note "
                "text was altered or the signature is corrupt"
            )
        if verifier not in verified:
            verified.append(verifier)
    if not verified:
        raise _untrusted(parsed, known)
    return parsed, tuple(verified)
