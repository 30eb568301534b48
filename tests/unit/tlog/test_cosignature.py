"""C2SP cosignatures (gateway.tlog.cosignature, checkpoint.cosign_checkpoint): the
transparency-dev vectors, the signed message checked literally against the spec, and
forgeries: a moved timestamp, a cosignature passed off as the log's signature."""

from __future__ import annotations

import base64
import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.tlog.checkpoint import Checkpoint, cosign_checkpoint, open_checkpoint, sign_checkpoint
from gateway.tlog.cosignature import (
    ALG_COSIGNATURE_V1,
    MAX_TIMESTAMP,
    cosignature_time,
    cosigned_message,
    join_cosignature,
    split_cosignature,
)
from gateway.tlog.note import (
    ALG_ED25519,
    NoteSignature,
    Signer,
    Verifier,
    key_hash,
    open_note,
    parse_note,
    sign_note,
    split_signed,
)
from tests.unit.tlog.support import (
    ORIGIN,
    ROOT,
    raises,
)


def test_transparency_dev_vectors() -> None:
    """transparency-dev/formats note_cosigv1_test.go: an 0x01 and a native 0x04 vkey, and
    a cosignature whose timestamp is 1727964367."""
    plain = Verifier.parse("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6")
    assert plain.alg == ALG_ED25519
    cosigner = Verifier.parse(
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
    )
    assert cosigner.alg == ALG_COSIGNATURE_V1
    raw = base64.b64decode(
        "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWO"
        "worDcFiEBYJXORmnFBOBA=="
    )
    sig = NoteSignature("w", int.from_bytes(raw[:4], "big"), raw[4:])
    assert cosignature_time(sig) == 1727964367


def test_cosign_and_verify(log: Signer, witness: Signer) -> None:
    cp = Checkpoint(ORIGIN, 7, ROOT)
    note = cosign_checkpoint(sign_checkpoint(cp, log), witness, 1679315147)
    got, verified = open_checkpoint(note, [log.verifier(), witness.verifier()], origin=ORIGIN)
    assert got == cp
    assert verified == (log.verifier(), witness.verifier())
    parsed, by = open_note(note, [witness.verifier()])
    assert by == (witness.verifier(),)
    cosig = parsed.signatures[1]
    assert cosignature_time(cosig) == 1679315147
    # Spec-literal check, independent of Verifier.verify: the 8-byte big-endian time,
    # then Ed25519 over the header, the time line and the checkpoint text.
    assert cosig.signature[:8] == (1679315147).to_bytes(8, "big")
    message = b"cosignature/v1\ntime 1679315147\n" + cp.to_text().encode()
    Ed25519PublicKey.from_public_bytes(witness.verifier().public_key).verify(
        cosig.signature[8:], message
    )
    assert cosig.key_hash == key_hash(witness.name, 0x04, witness.verifier().public_key)


def test_cosignature_key_hash_differs_from_plain(witness: Signer) -> None:
    # Same key, other signature type: another key ID, so the types are never confused.
    public = witness.verifier().public_key
    assert key_hash(witness.name, 0x01, public) != key_hash(witness.name, 0x04, public)


def test_tampered_timestamp_fails(log: Signer, witness: Signer) -> None:
    note = cosign_checkpoint(sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), log), witness, 100)
    parsed = parse_note(note)
    cosig = parsed.signatures[1]
    shifted = (101).to_bytes(8, "big") + cosig.signature[8:]
    line = base64.b64encode(cosig.key_hash.to_bytes(4, "big") + shifted).decode()
    forged = note.replace(note.splitlines()[-1], f"— {witness.name} {line}")
    assert forged != note
    with raises(f"signature by {re.escape(witness.name)}\\+[0-9a-f]{{8}} does not verify"):
        open_note(forged, [witness.verifier()])


def test_cosignature_is_not_a_log_signature(log: Signer, witness: Signer) -> None:
    signed = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), log)
    text, _ = split_signed(signed)
    cosigned = cosign_checkpoint(signed, witness, 100)
    only_cosig = text + "\n" + cosigned.splitlines(keepends=True)[-1]
    with raises("no signature by a trusted key"):
        open_checkpoint(only_cosig, [log.verifier()])
    with raises("checkpoint has no log signature: only cosignatures verified"):
        open_checkpoint(only_cosig, [log.verifier(), witness.verifier()])


def test_cosignature_does_not_verify_as_plain_signature(log: Signer, witness: Signer) -> None:
    # A plain verifier for the witness's key has another key hash: the cosignature is
    # an unknown signature to it, never a valid plain one.
    note = cosign_checkpoint(sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), log), witness, 1)
    v = witness.verifier()
    plain = Verifier(v.name, key_hash(v.name, ALG_ED25519, v.public_key), ALG_ED25519, v.public_key)
    with raises("no signature by a trusted key"):
        open_note(note, [plain])


def test_recosign_replaces(log: Signer, witness: Signer) -> None:
    signed = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), log)
    twice = cosign_checkpoint(cosign_checkpoint(signed, witness, 1), witness, 2)
    sigs = parse_note(twice).signatures
    assert len(sigs) == 2
    assert cosignature_time(sigs[1]) == 2


def test_cosign_rejects(log: Signer, witness: Signer) -> None:
    signed = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), log)
    with raises("is not a cosignature/v1 \\(0x04\\) key"):
        cosign_checkpoint(signed, log, 1)
    for bad in (-1, 2**63):
        with raises("is not between 0 and 2\\*\\*63 - 1"):
            cosign_checkpoint(signed, witness, bad)
    with raises("checkpoint has 1 line"):
        cosign_checkpoint(sign_note("hello\n", [log]), witness, 1)
    with raises("signs checkpoints only through cosign_checkpoint"):
        sign_note("t\n", [witness])
    with raises("not an Ed25519 cosignature"):
        cosignature_time(parse_note(signed).signatures[0])


def test_cosignature_timestamp_beyond_limit() -> None:
    sig = NoteSignature("w", 0, b"\xff" * 72)
    with raises("timestamp beyond 2\\*\\*63 - 1"):
        cosignature_time(sig)


def test_signature_layout_round_trip_and_limits() -> None:
    signature = bytes(range(64))
    joined = join_cosignature(1679315147, signature)
    assert joined == (1679315147).to_bytes(8, "big") + signature
    assert split_cosignature(joined) == (1679315147, signature)
    assert split_cosignature(joined[:-1]) is None  # not 72 bytes: never a valid cosignature
    assert split_cosignature(b"\x80" + joined[1:]) is None  # timestamp beyond 2**63 - 1
    assert split_cosignature((MAX_TIMESTAMP).to_bytes(8, "big") + signature) is not None
    for bad in (-1, MAX_TIMESTAMP + 1, True, 1.0):
        with raises("is not between 0 and 2\\*\\*63 - 1"):
            join_cosignature(bad, signature)  # type: ignore[arg-type]


def test_cosigned_message_is_the_spec_literal() -> None:
    text = Checkpoint(ORIGIN, 7, ROOT).to_text().encode()
    assert cosigned_message(42, text) == b"cosignature/v1\ntime 42\n" + text
