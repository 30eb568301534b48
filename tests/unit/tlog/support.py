"""Vectors and helpers shared by the tests of gateway.tlog's signed notes, checkpoints and
cosignatures."""

from __future__ import annotations

import hashlib

import pytest

from gateway.tlog.errors import NoteError
from gateway.tlog.note import ALG_ED25519, Signer, Verifier, generate_key

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
