"""C2SP checkpoints (gateway.tlog.checkpoint): the spec's example, round trips (also as a
property), signing and opening, and every malformed text refused with its reason."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.tlog.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from gateway.tlog.note import (
    Signer,
    sign_note,
)
from tests.unit.tlog.support import (
    ORIGIN,
    ROOT,
    raises,
)


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
