"""This gateway's own witnessing: pushes to witnesses, stored cosignatures, the head pin,
refusing to start on a rolled-back or replaced log, and the quorum mode of the committer."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.audit.commit import GroupCommitter
from gateway.audit.signing import CheckpointSigner
from gateway.audit.store.memory import MemoryAuditStore
from gateway.audit.store.protocol import AuditStore
from gateway.audit.store.sqlite import open_sqlite_store
from gateway.audit.verify import verify_checkpoint, verify_cosignatures, verify_receipt
from gateway.audit.witness import MemoryWitnessState, Witness
from gateway.audit.witnessing import (
    PIN_FILE,
    HeadPin,
    Post,
    Witnessing,
    WitnessTarget,
    parse_targets,
)
from gateway.errors import AuditUnavailableError, ConfigurationError
from gateway.tlog.cosignature import ALG_COSIGNATURE_V1
from gateway.tlog.note import Signer, generate_key
from tests.unit.audit.support import make_record, test_signer


class Department:
    """Another department's witness, reached through a transport that can be cut."""

    def __init__(self, name: str, log: CheckpointSigner) -> None:
        self.key = Signer.parse(generate_key(name, alg=ALG_COSIGNATURE_V1)[0])
        self.witness = Witness(
            self.key, {log.origin: log.verifier}, MemoryWitnessState(), lambda: 1_790_000_000
        )
        self.url = f"https://{name}"
        self.down = False
        self.requests = 0

    @property
    def target(self) -> WitnessTarget:
        return WitnessTarget(self.url, self.key.verifier())


def transport(*departments: Department) -> Post:
    by_url = {d.url + "/v1/witness/add-checkpoint": d for d in departments}

    def post(url: str, body: bytes) -> tuple[int, str, str]:
        department = by_url[url]
        department.requests += 1
        if department.down:
            return 503, "text/plain", "down\n"
        answer = department.witness.add_checkpoint(body.decode())
        return answer.status, answer.media_type, answer.text

    return post


def witnessing(
    store: AuditStore, state: Path, *departments: Department, quorum: int = 0
) -> Witnessing:
    return Witnessing(
        store,
        [d.target for d in departments],
        HeadPin(state / PIN_FILE),
        post=transport(*departments),
        quorum=quorum,
    )


def fill(store: AuditStore, n: int, start: int = 0) -> None:
    store.append_batch([make_record(start + i) for i in range(n)])


def test_pushes_store_the_cosigned_checkpoint_and_pin_the_head(tmp_path: Path) -> None:
    signer = test_signer()
    store = MemoryAuditStore(signer)
    a, b = Department("witness.a.test", signer), Department("witness.b.test", signer)
    w = witnessing(store, tmp_path, a, b)
    fill(store, 5)
    w.tick()
    cosigned = store.cosigned()
    assert cosigned is not None and cosigned.startswith(store.head().checkpoint)
    assert verify_checkpoint(cosigned, [signer.verifier]).ok
    assert verify_cosignatures(cosigned, [a.key.verifier(), b.key.verifier()], 2).ok
    assert (tmp_path / PIN_FILE).read_text() == store.head().checkpoint
    # Nothing new: no push. Growth: pushed from the witnesses' size (no 409 round trip).
    w.tick()
    assert a.requests == 1
    fill(store, 3, 5)
    w.tick()
    assert a.requests == 2
    assert store.cosigned() is not None and "\n8\n" in store.cosigned()  # type: ignore[operator]


def test_an_unreachable_witness_is_skipped(tmp_path: Path) -> None:
    signer = test_signer()
    store = MemoryAuditStore(signer)
    a, b = Department("witness.a.test", signer), Department("witness.b.test", signer)
    b.down = True
    w = witnessing(store, tmp_path, a, b)
    fill(store, 2)
    witnessed = w.witness(store.head())
    assert witnessed.cosigners == ("witness.a.test",)


def test_restart_on_a_rolled_back_database_is_refused(tmp_path: Path) -> None:
    """Issue 16 (4): the gateway saw size 9; its database is restored from a backup of
    size 4. Opening it must refuse, not append a fork on top."""
    signer = test_signer()
    db, backup = tmp_path / "audit.sqlite", tmp_path / "backup.sqlite"
    store = open_sqlite_store(db, signer)
    fill(store, 4)
    store.close()
    shutil.copy(db, backup)
    store = open_sqlite_store(db, signer)
    fill(store, 5, 4)
    witnessing(store, tmp_path).check_start()  # pins size 9
    store.close()
    db.unlink()
    shutil.copy(backup, db)
    rolled_back = open_sqlite_store(db, signer)
    try:
        with pytest.raises(ConfigurationError, match="rolled back or cut"):
            witnessing(rolled_back, tmp_path).check_start()
        # Even after as many new records as it lost: a fork, not an extension.
        fill(rolled_back, 5, 100)
        with pytest.raises(ConfigurationError, match="replaced or forked"):
            witnessing(rolled_back, tmp_path).check_start()
    finally:
        rolled_back.close()


def test_the_witness_refuses_the_start_when_the_pin_is_lost_too(tmp_path: Path) -> None:
    signer = test_signer()
    a = Department("witness.a.test", signer)
    store = MemoryAuditStore(signer)
    fill(store, 6)
    (tmp_path / "old").mkdir()
    witnessing(store, tmp_path / "old", a).check_start()
    # A fresh state directory (no pin) and a database holding an older, other history.
    (tmp_path / "new").mkdir()
    other = MemoryAuditStore(signer)
    fill(other, 3, 50)
    with pytest.raises(ConfigurationError, match="refusing to serve"):
        witnessing(other, tmp_path / "new", a).check_start()
    fill(other, 10, 60)  # larger, but not an extension of what the witness cosigned
    with pytest.raises(ConfigurationError, match="refuses the head"):
        witnessing(other, tmp_path / "new", a).check_start()


def test_quorum_mode_receipts_carry_the_cosigned_checkpoint(tmp_path: Path) -> None:
    signer = test_signer()
    store = MemoryAuditStore(signer)
    a = Department("witness.a.test", signer)
    w = witnessing(store, tmp_path, a, quorum=1)
    committer = GroupCommitter(store, cosign=w.cosign_batch, timeout_s=5)
    try:
        receipt = committer.append(make_record(0))
        assert verify_receipt(receipt, [signer.verifier]).ok
        assert verify_cosignatures(receipt.checkpoint, [a.key.verifier()], 1).ok
        a.down = True
        with pytest.raises(AuditUnavailableError):
            committer.append(make_record(1))
    finally:
        committer.close()


def test_quorum_larger_than_the_witnesses_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="QUORUM"):
        witnessing(MemoryAuditStore(test_signer()), tmp_path, quorum=1)


def test_parse_targets() -> None:
    _, vkey = generate_key("witness.a.test", alg=ALG_COSIGNATURE_V1)
    (target,) = parse_targets(f" https://gw.a.example/ {vkey} ; ")
    assert target.url == "https://gw.a.example" and target.key.name == "witness.a.test"
    _, log_key = generate_key("log.test")
    for bad in (f"gw.a.example {vkey}", "https://gw.a.example", f"https://x {log_key}"):
        with pytest.raises(ValueError):
            parse_targets(bad)
