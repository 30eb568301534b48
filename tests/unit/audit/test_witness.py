"""The witness cosigns only checkpoints that extend what it saw (C2SP tlog-witness)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.audit.signing import CheckpointSigner
from gateway.audit.store.memory import MemoryAuditStore
from gateway.audit.verify import verify_checkpoint, verify_cosignatures
from gateway.audit.witness import (
    MemoryWitnessState,
    SqliteWitnessState,
    Witness,
    add_checkpoint_body,
    load_witness,
    parse_size_answer,
)
from gateway.errors import ConfigurationError
from gateway.tlog.cosignature import ALG_COSIGNATURE_V1
from gateway.tlog.note import Signer, Verifier, generate_key
from tests.unit.audit.support import make_record

ORIGIN = "audit.log.test/1"


@pytest.fixture
def log_signer() -> CheckpointSigner:
    return CheckpointSigner(Signer.parse(generate_key(ORIGIN)[0]))


@pytest.fixture
def witness_key() -> Signer:
    return Signer.parse(generate_key("witness.ybj.test", alg=ALG_COSIGNATURE_V1)[0])


def _witness(log: CheckpointSigner, key: Signer) -> Witness:
    return Witness(key, {log.origin: log.verifier}, MemoryWitnessState(), lambda: 1_790_000_000)


def _store(signer: CheckpointSigner, n: int, start: int = 0) -> MemoryAuditStore:
    store = MemoryAuditStore(signer)
    store.append_batch([make_record(start + i) for i in range(n)])
    return store


def test_cosigns_a_first_checkpoint_and_then_only_consistent_growth(
    log_signer: CheckpointSigner, witness_key: Signer
) -> None:
    witness = _witness(log_signer, witness_key)
    store = _store(log_signer, 5)
    head = store.head()
    answer = witness.add_checkpoint(add_checkpoint_body(0, [], head.checkpoint))
    assert answer.status == 200 and answer.text.startswith("— witness.ybj.test ")
    cosigned = head.checkpoint + answer.text
    assert verify_checkpoint(cosigned, [log_signer.verifier]).ok
    assert verify_cosignatures(cosigned, [witness_key.verifier()], 1).ok
    assert not verify_cosignatures(cosigned, [witness_key.verifier()], 2).ok

    store.append_batch([make_record(10 + i) for i in range(4)])
    grown = store.head()
    # The client guessed the wrong old size: told the witness's size, it retries.
    stale = witness.add_checkpoint(add_checkpoint_body(0, [], grown.checkpoint))
    assert stale.status == 409 and stale.media_type == "text/x.tlog.size"
    old = parse_size_answer(stale.text)
    assert old == 5
    proof = store.consistency_proof(old, grown.size)
    assert witness.add_checkpoint(add_checkpoint_body(old, proof, grown.checkpoint)).status == 200


def test_refuses_a_fork_and_a_rollback(log_signer: CheckpointSigner, witness_key: Signer) -> None:
    witness = _witness(log_signer, witness_key)
    honest = _store(log_signer, 6)
    assert (
        witness.add_checkpoint(add_checkpoint_body(0, [], honest.head().checkpoint)).status == 200
    )
    # Same key, other history (the operator rewrote the log): the proof cannot match.
    forked = _store(log_signer, 9, start=100)
    proof = forked.consistency_proof(6, 9)
    answer = witness.add_checkpoint(add_checkpoint_body(6, proof, forked.head().checkpoint))
    assert answer.status == 422 and "not consistent" in answer.text
    # A smaller tree than the witness saw (a restored backup).
    small = _store(log_signer, 3)
    assert witness.add_checkpoint(add_checkpoint_body(6, [], small.head().checkpoint)).status == 400


def test_refuses_unknown_logs_bad_signatures_and_garbage(
    log_signer: CheckpointSigner, witness_key: Signer
) -> None:
    witness = _witness(log_signer, witness_key)
    stranger = CheckpointSigner(Signer.parse(generate_key("audit.other.test/1")[0]))
    assert (
        witness.add_checkpoint(
            add_checkpoint_body(0, [], _store(stranger, 2).head().checkpoint)
        ).status
        == 404
    )
    impostor = CheckpointSigner(Signer.parse(generate_key(ORIGIN)[0]))  # same name, other key
    answer = witness.add_checkpoint(
        add_checkpoint_body(0, [], _store(impostor, 2).head().checkpoint)
    )
    assert answer.status == 403
    for body in (
        "",
        "old x\n\nnote",
        "old 0\nnot-base64!\n\n" + _store(log_signer, 1).head().checkpoint,
    ):
        assert witness.add_checkpoint(body).status == 400


def test_sqlite_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "witness.sqlite"
    state = SqliteWitnessState(path)
    assert state.get(ORIGIN) is None
    assert state.advance(ORIGIN, 0, 5, b"\x01" * 32)
    assert not state.advance(ORIGIN, 0, 7, b"\x02" * 32)  # lost the race: stays at 5
    assert SqliteWitnessState(path).get(ORIGIN) == (5, b"\x01" * 32)


def test_load_witness_from_a_key_directory(tmp_path: Path, log_signer: CheckpointSigner) -> None:
    assert load_witness(tmp_path, MemoryWitnessState, lambda: 0) is None
    skey, vkey = generate_key("witness.test", alg=ALG_COSIGNATURE_V1)
    (tmp_path / "witness.key").write_text(skey + "\n")
    (tmp_path / "witnessed-logs.vkeys").write_text(log_signer.verifier.encode() + "\n")
    witness = load_witness(tmp_path, MemoryWitnessState, lambda: 0)
    assert witness is not None and witness.verifier == Verifier.parse(vkey)
    (tmp_path / "witnessed-logs.vkeys").write_text("not a key\n")
    with pytest.raises(ConfigurationError):
        load_witness(tmp_path, MemoryWitnessState, lambda: 0)
