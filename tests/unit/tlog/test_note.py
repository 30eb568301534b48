"""C2SP signed notes (gateway.tlog.note): published Go vectors, keys, round trips, attacks
(each must fail with a NoteError a human understands) and bit-flip properties."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.tlog.cosignature import ALG_COSIGNATURE_V1
from gateway.tlog.errors import NoteError
from gateway.tlog.note import (
    ALG_ED25519,
    MAX_SIGNATURES,
    Signer,
    Verifier,
    add_signatures,
    generate_key,
    key_hash,
    open_note,
    parse_note,
    sign_note,
    split_signed,
)
from tests.unit.tlog.support import (
    ENOCH_SIG,
    ENOCH_VKEY,
    PETER_NOTE,
    PETER_SIG,
    PETER_SKEY,
    PETER_VKEY,
    TEXT,
    new_signer,
    peter,
    raises,
)


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


def test_modified_text_fails() -> None:
    forged = PETER_NOTE.replace("problem,", "problem;", 1)
    with raises("signature by PeterNeumann\\+c74f20a3 does not verify"):
        open_note(forged, [peter()])


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
