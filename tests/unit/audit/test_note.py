"""C2SP signed notes, checkpoints and cosignatures: published Go vectors, round trips,
attacks (each must fail with a NoteError a human understands) and bit-flip properties."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    MAX_SIGNATURES,
    Checkpoint,
    NoteError,
    NoteSignature,
    Signer,
    Verifier,
    add_signatures,
    cosign_checkpoint,
    cosignature_time,
    generate_key,
    key_hash,
    open_checkpoint,
    open_note,
    parse_note,
    sign_checkpoint,
    sign_note,
    split_signed,
)

# golang.org/x/mod/sumdb/note: note.go package doc and note_test.go (TestSign, TestOpen).
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNX"
    "gKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01o"
    "OTGwnWLox33WWd1RvMc+QQ=\n"
)
PETER_NOTE = TEXT + "\n" + PETER_SIG

ROOT = hashlib.sha256(b"root").digest()
ORIGIN = "gateway.example/audit"


def peter() -> Verifier:
    return Verifier.parse(PETER_VKEY)


def new_signer(name: str, alg: int = ALG_ED25519) -> Signer:
    return Signer.parse(generate_key(name, alg=alg)[0])


def raises(match: str) -> pytest.RaisesExc[NoteError]:
    return pytest.raises(NoteError, match=match)


@pytest.fixture(scope="module")
def log() -> Signer:
    return new_signer(ORIGIN)


@pytest.fixture(scope="module")
def witness() -> Signer:
    return new_signer("witness.example/w1", ALG_COSIGNATURE_V1)


# ------------------------------------------------------------------ published vectors


def test_go_vector_keys_match() -> None:
    signer = Signer.parse(PETER_SKEY)
    assert signer.verifier() == peter()
    assert signer.key_hash == 0xC74F20A3
    assert key_hash("PeterNeumann", ALG_ED25519, peter().public_key) == 0xC74F20A3
    assert signer.encode() == PETER_SKEY
    assert peter().encode() == PETER_VKEY
    assert "AYEKF" not in repr(signer)  # the secret never shows in a repr


def test_go_vector_sign_is_byte_exact() -> None:
    assert sign_note(TEXT, [Signer.parse(PETER_SKEY)]) == PETER_NOTE


def test_go_vector_open() -> None:
    note, verified = open_note(PETER_NOTE, [peter()])
    assert note.text == TEXT
    assert verified == (peter(),)
    (sig,) = note.signatures
    assert (sig.name, sig.key_hash, len(sig.signature)) == ("PeterNeumann", 0xC74F20A3, 64)


def test_go_vector_two_signers() -> None:
    enoch = Verifier.parse(ENOCH_VKEY)
    msg = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    note, verified = open_note(msg, [peter()])  # Enoch unknown: ignored, but kept
    assert verified == (peter(),)
    assert [s.name for s in note.signatures] == ["PeterNeumann", "EnochRoot"]
    assert open_note(msg, [enoch, peter()])[1] == (peter(), enoch)
    with raises(r"no signature by a trusted key \(trusted: none\): signed by PeterNeumann"):
        open_note(msg, [])


def test_go_vector_corrupt_signature() -> None:
    bad = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with raises("signature by PeterNeumann\\+c74f20a3 does not verify"):
        open_note(TEXT + "\n" + bad, [peter()])


@pytest.mark.parametrize(
    "msg",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        "\udcff" + TEXT + "\n" + PETER_SIG,  # what a stray 0xff byte decodes to
        TEXT + "\n" + "— Bad Name " + PETER_SIG.split(" ")[2],
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    ],
)
def test_go_vector_malformed_notes(msg: str) -> None:
    with pytest.raises(NoteError):
        open_note(msg, [peter()])


def test_go_verifier_manglings() -> None:
    """note_test.go TestNewVerifier: every proper substring and every one-character
    increment of the vkey must be refused."""
    for i in range(len(PETER_VKEY) + 1):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                with pytest.raises(NoteError):
                    Verifier.parse(PETER_VKEY[i:j])
    for i, char in enumerate(PETER_VKEY):
        with pytest.raises(NoteError):
            Verifier.parse(PETER_VKEY[:i] + chr(ord(char) + 1) + PETER_VKEY[i + 1 :])
    # Go's "wrong length key, with adjusted key hash" is also non-canonical base64 here.
    with raises("not canonical base64"):
        Verifier.parse("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    long_key = b"\x01" + peter().public_key + b"\x00"
    long_hash = key_hash("PeterNeumann", ALG_ED25519, long_key[1:])
    with raises("33-byte public key"):
        Verifier.parse(f"PeterNeumann+{long_hash:08x}+{base64.b64encode(long_key).decode()}")
    with raises("unsupported signature type 0x65"):
        Verifier.parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_go_signer_manglings() -> None:
    for i in range(len(PETER_SKEY) + 1):
        for j in range(i + 1, len(PETER_SKEY) + 1):
            if (i, j) != (0, len(PETER_SKEY)):
                with pytest.raises(NoteError):
                    Signer.parse(PETER_SKEY[i:j])
    for i, char in enumerate(PETER_SKEY):
        mangled = PETER_SKEY[:i] + chr(ord(char) + 1) + PETER_SKEY[i + 1 :]
        with pytest.raises(NoteError) as info:
            Signer.parse(mangled)
        assert "AYEKF" not in str(info.value)  # key material never in a message


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


# ------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("alg", [ALG_ED25519, ALG_COSIGNATURE_V1])
def test_generate_key_round_trip(alg: int) -> None:
    skey, vkey = generate_key("example.com/log", alg=alg)
    assert skey.startswith("PRIVATE+KEY+example.com/log+")
    signer, verifier = Signer.parse(skey), Verifier.parse(vkey)
    assert signer.encode() == skey
    assert verifier.encode() == vkey
    assert signer.verifier() == verifier
    assert base64.b64decode(vkey.split("+", 2)[2])[0] == alg


def test_sign_open_round_trip(log: Signer) -> None:
    note = sign_note("hello\n\nworld\n", [log])  # blank lines inside the text are fine
    parsed, verified = open_note(note, [log.verifier()])
    assert parsed.text == "hello\n\nworld\n"
    assert verified == (log.verifier(),)
    assert split_signed(note) == ("hello\n\nworld\n", note[len("hello\n\nworld\n\n") :])


def test_add_signatures_co_signs_and_replaces(log: Signer) -> None:
    other = new_signer("other.example/key")
    note = add_signatures(sign_note("text\n", [log]), [other])
    parsed, verified = open_note(note, [log.verifier(), other.verifier()])
    assert verified == (log.verifier(), other.verifier())
    assert [s.name for s in parsed.signatures] == [log.name, other.name]
    # Re-signing replaces the key's old signature instead of stacking a second.
    again = add_signatures(note, [log])
    assert [s.name for s in parse_note(again).signatures] == [other.name, log.name]
    assert add_signatures(note, []) == note


def test_checkpoint_text_round_trip() -> None:
    cp = Checkpoint(ORIGIN, 20852163, ROOT)
    text = cp.to_text()
    assert text == f"{ORIGIN}\n20852163\n{base64.b64encode(ROOT).decode()}\n"
    assert Checkpoint.parse(text) == cp
    with_ext = Checkpoint(ORIGIN, 0, ROOT, ("ext one", "ext two"))
    assert with_ext.to_text().endswith("\next one\next two\n")
    assert Checkpoint.parse(with_ext.to_text()) == with_ext


def test_spec_checkpoint_example_parses() -> None:
    cp = Checkpoint.parse(
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
    assert (cp.origin, cp.size, len(cp.root_hash)) == ("example.com/behind-the-sofa", 20852163, 32)


def test_sign_open_checkpoint(log: Signer) -> None:
    cp = Checkpoint(ORIGIN, 42, ROOT)
    note = sign_checkpoint(cp, log)
    assert open_checkpoint(note, [log.verifier()], origin=ORIGIN) == (cp, (log.verifier(),))
    assert open_checkpoint(note, [log.verifier()])[0] == cp


@settings(max_examples=50, deadline=None)
@given(
    origin=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30),
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(
        st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=10),
        max_size=3,
    ),
)
def test_checkpoint_round_trip_property(
    origin: str, size: int, root: bytes, extensions: list[str]
) -> None:
    cp = Checkpoint(origin, size, root, tuple(extensions))
    assert Checkpoint.parse(cp.to_text()) == cp


# ---------------------------------------------------------------------------- attacks


def test_modified_text_fails() -> None:
    forged = PETER_NOTE.replace("problem,", "problem;", 1)
    with raises("signature by PeterNeumann\\+c74f20a3 does not verify"):
        open_note(forged, [peter()])


@pytest.mark.parametrize(
    "forge",
    [
        lambda note: note.replace("\n42\n", "\n43\n", 1),
        lambda note: note.replace(base64.b64encode(ROOT).decode(), "A" * 43 + "=", 1),
    ],
    ids=["size", "root"],
)
def test_modified_checkpoint_fails(log: Signer, forge: Callable[[str], str]) -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 42, ROOT), log)
    forged = forge(note)
    assert forged != note
    with raises(f"signature by {re.escape(ORIGIN)}\\+[0-9a-f]{{8}} does not verify"):
        open_checkpoint(forged, [log.verifier()])


def test_unknown_key_only(log: Signer) -> None:
    with raises(r"no signature by a trusted key \(trusted: PeterNeumann\+c74f20a3\)"):
        open_note(sign_note(TEXT, [log]), [peter()])


def test_right_name_wrong_key_hash() -> None:
    payload = base64.b64decode(PETER_SIG.split(" ")[2])
    forged_sig = base64.b64encode(b"\xde\xad\xbe\xef" + payload[4:]).decode()
    forged = TEXT + "\n— PeterNeumann " + forged_sig + "\n"
    with raises(
        "no signature by a trusted key .*: signed by PeterNeumann\\+deadbeef; the signature "
        "by PeterNeumann has key hash deadbeef, but the trusted PeterNeumann key hash is "
        "c74f20a3"
    ):
        open_note(forged, [peter()])


def test_same_key_other_name_is_unknown() -> None:
    # Same key hash, another name: per spec an unknown key, so no trusted signature.
    with raises("no signature by a trusted key"):
        open_note(PETER_NOTE.replace("PeterNeumann", "PeterNeuman"), [peter()])


@pytest.mark.parametrize(
    ("cut", "match"),
    [
        (lambda b64: b64[:-4], "does not verify"),  # valid base64, signature too short
        (lambda b64: b64[:-1], "signature line 1 \\(by PeterNeumann\\): signature is not valid"),
        (lambda b64: b64[:4], "signature is 3 bytes"),
        (lambda b64: "AAAAAA==", "signature is 4 bytes, too short"),
        (lambda b64: b64[:-2] + "N=", "not canonical base64"),
        (lambda b64: b64 + "=", "not valid base64"),
        (lambda b64: b64.replace("/", "_"), "not valid base64"),  # URL alphabet
        (lambda b64: b64 + " x", "not valid base64"),
    ],
)
def test_truncated_or_invalid_signature(cut: Callable[[str], str], match: str) -> None:
    b64 = PETER_SIG.split(" ")[2].rstrip("\n")
    with raises(match):
        open_note(TEXT + "\n— PeterNeumann " + cut(b64) + "\n", [peter()])


def test_duplicate_signatures() -> None:
    # An identical repeat is harmless; a repeat that does not verify is not ignored.
    assert open_note(PETER_NOTE + PETER_SIG, [peter()])[1] == (peter(),)
    bad = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with raises("does not verify"):
        open_note(PETER_NOTE + bad, [peter()])


def test_missing_blank_line() -> None:
    with raises("no blank line between its text and its signatures"):
        open_note(TEXT + PETER_SIG, [peter()])
    with raises("no signature lines after the blank line"):
        parse_note(TEXT + "\n")
    with raises("last signature line does not end with a newline"):
        parse_note(PETER_NOTE[:-1])
    with raises("signature line 2 does not start with an em dash"):
        parse_note(PETER_NOTE + "- PeterNeumann AAAAAAA=\n")
    with raises("signature line 1 has no space"):
        parse_note(TEXT + "\n— PeterNeumann\n")


def test_text_must_end_with_newline(log: Signer) -> None:
    with raises("note text must end with a newline"):
        sign_note(TEXT[:-1], [log])
    with raises("note text must end with a newline"):
        sign_note("", [log])


@pytest.mark.parametrize("char", ["\x00", "\t", "\r", "\x1b", "\x0b"])
def test_control_characters(log: Signer, char: str) -> None:
    text = f"line{char}one\n"
    with raises(f"note text contains control character U\\+{ord(char):04X} at offset 4"):
        sign_note(text, [log])
    with raises(f"note contains control character U\\+{ord(char):04X}"):
        open_note(text + "\n" + PETER_SIG, [peter()])


def test_lone_surrogate(log: Signer) -> None:
    with raises("not valid UTF-8"):
        sign_note("a\ud800\n", [log])


def test_signature_count_limit(log: Signer) -> None:
    assert len(parse_note(TEXT + "\n" + PETER_SIG * MAX_SIGNATURES).signatures) == 100
    with raises("note has 101 signature lines; at most 100 are accepted"):
        open_note(TEXT + "\n" + PETER_SIG * 101, [peter()])
    signers = [new_signer(f"k{i}") for i in range(101)]
    with raises("at most 100 signatures"):
        sign_note("t\n", signers)
    full = sign_note("t\n", signers[:100])
    with raises("at most 100 signatures, this one would have 101"):
        add_signatures(full, [log])


def test_sign_note_needs_distinct_signers(log: Signer) -> None:
    with raises("a note needs at least one signature"):
        sign_note("t\n", [])
    with raises("is given twice"):
        sign_note("t\n", [log, log])


def test_wrong_origin(log: Signer) -> None:
    note = sign_checkpoint(Checkpoint("other.example/log", 1, ROOT), log)
    with raises("checkpoint is for origin 'other.example/log', expected 'gateway.example/audit'"):
        open_checkpoint(note, [log.verifier()], origin=ORIGIN)


def test_signed_non_checkpoint(log: Signer) -> None:
    with raises("checkpoint has 1 line"):
        open_checkpoint(sign_note("hello\n", [log]), [log.verifier()])


@pytest.mark.parametrize(
    ("size", "match"),
    [
        ("01", "checkpoint tree size '01' has a leading zero"),
        ("00", "leading zero"),
        ("-1", "checkpoint tree size '-1' is negative"),
        ("+1", "is not a decimal number"),
        (" 1", "is not a decimal number"),
        ("1_000", "is not a decimal number"),
        ("\u0661", "is not a decimal number"),  # ARABIC-INDIC DIGIT ONE
        ("0x10", "is not a decimal number"),
        (str(2**64), "does not fit in 64 bits"),
    ],
)
def test_bad_checkpoint_size(size: str, match: str) -> None:
    root = base64.b64encode(ROOT).decode()
    with raises(match):
        Checkpoint.parse(f"{ORIGIN}\n{size}\n{root}\n")


@pytest.mark.parametrize(
    "root",
    [
        base64.b64encode(ROOT[:31]).decode(),
        base64.b64encode(ROOT + b"\x00").decode(),
        base64.b64encode(ROOT).decode().rstrip("="),
        base64.urlsafe_b64encode(b"\xff" * 32).decode(),
        "",
    ],
)
def test_bad_checkpoint_root(root: str) -> None:
    with raises("checkpoint (root hash is not 32 bytes of base64|line 3 is empty)"):
        Checkpoint.parse(f"{ORIGIN}\n1\n{root}\n")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (f"{ORIGIN}\n1\n{base64.b64encode(ROOT).decode()}", "does not end with a newline"),
        (f"\n1\n{base64.b64encode(ROOT).decode()}\n", "line 1 is empty"),
        (f"{ORIGIN}\n1\n{base64.b64encode(ROOT).decode()}\n\nx\n", "line 4 is empty"),
        (f"{ORIGIN}\n1\n", "it needs an origin, a tree size and a root hash"),
    ],
)
def test_bad_checkpoint_lines(text: str, match: str) -> None:
    with raises(match):
        Checkpoint.parse(text)


def test_checkpoint_constructor_validates() -> None:
    with raises("checkpoint root hash is 31 bytes, not 32"):
        Checkpoint(ORIGIN, 1, ROOT[:31])
    with raises("checkpoint size -1 is not between 0 and 2\\*\\*64 - 1"):
        Checkpoint(ORIGIN, -1, ROOT)
    with raises("is not an integer"):
        Checkpoint(ORIGIN, True, ROOT)
    with raises("checkpoint origin is empty"):
        Checkpoint("", 1, ROOT)
    with raises("checkpoint origin contains a newline"):
        Checkpoint("a\nb", 1, ROOT)
    with raises("checkpoint extension line 1 is empty"):
        Checkpoint(ORIGIN, 1, ROOT, ("",))


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("a+b", "contains '\\+'"),
        ("a b", "contains whitespace U\\+0020"),
        ("a\u00a0b", "contains whitespace U\\+00A0"),
        ("a\u3000b", "contains whitespace U\\+3000"),
        ("a\tb", "contains whitespace U\\+0009"),
        ("a\x01b", "contains control character U\\+0001"),
        ("", "is empty"),
    ],
)
def test_invalid_key_names(name: str, match: str) -> None:
    with raises(match):
        generate_key(name)
    with raises(match):
        Verifier(name, 0, ALG_ED25519, bytes(32))


def test_invalid_name_in_signature_line() -> None:
    sig = PETER_SIG.split(" ")[2]
    with raises("signature line 1: key name 'Peter\\\\xa0Neumann' contains whitespace"):
        parse_note(TEXT + "\n— Peter\u00a0Neumann " + sig)


def test_verifier_and_signer_consistency() -> None:
    v = peter()
    with raises("has the wrong key hash"):
        Verifier(v.name, v.key_hash ^ 1, v.alg, v.public_key)
    with raises("unsupported signature type 0x02"):
        Verifier(v.name, v.key_hash, 0x02, v.public_key)
    s = Signer.parse(PETER_SKEY)
    with raises("has the wrong key hash"):
        Signer(s.name, s.key_hash, s.private_key, ALG_COSIGNATURE_V1)
    with raises("unsupported signature type"):
        generate_key("x", alg=0x05)


def test_ambiguous_verifiers() -> None:
    v = peter()
    assert open_note(PETER_NOTE, [v, peter()])[1] == (v,)  # the same key twice is fine
    impostor = object.__new__(Verifier)  # bypasses validation, as a tampered config might
    for name, value in [("name", v.name), ("key_hash", v.key_hash), ("alg", 1)]:
        object.__setattr__(impostor, name, value)
    object.__setattr__(impostor, "public_key", bytes(32))
    with raises("two different verifier keys are both named PeterNeumann\\+c74f20a3"):
        open_note(PETER_NOTE, [v, impostor])


# ----------------------------------------------------------------------- cosignatures


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


# ------------------------------------------------------------------------- properties


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_bit_flip_in_text_fails(data: st.DataObject) -> None:
    raw = bytearray(PETER_NOTE.encode())
    text_len = len(TEXT.encode())
    index = data.draw(st.integers(0, text_len - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    raw[index] ^= 1 << bit
    # Invalid UTF-8 becomes lone surrogates, which open_note must reject too.
    mutated = raw.decode("utf-8", errors="surrogateescape")
    with pytest.raises(NoteError):
        open_note(mutated, [peter()])
