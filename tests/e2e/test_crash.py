"""Crash consistency: a real gateway server (2 uvicorn workers) is SIGKILLed in the middle
of a concurrent /v1/query load, restarted on the same audit log, and the log is checked.

What must hold after the crash, whatever the kill interrupted:

* every response the client received with a receipt (200 bodies, refusals' problem
  bodies) names a record that is in the log, at the index the receipt states, with the
  leaf hash the receipt proves - an acknowledged record is never lost;
* no index was handed out twice (before and after the restart), and every checkpoint a
  client received before the crash is consistent with the final head;
* the log verifies: ``store.check()``, the offline verifier on a complete export, and
  every stored checkpoint's root is the root of the rebuilt tree at its size;
* the log holds at most one record more than the receipts per request the kill cut off
  (a record may exist for a response that was never sent, never the reverse).

Load is bounded and on 127.0.0.1 only: 8 client threads for at most a few seconds.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from gateway.audit.bundle import checkpoint_size, full_log_bundle
from gateway.audit.receipt import Receipt, split_receipt
from gateway.audit.record import AuditRecord, Outcome
from gateway.audit.store.open import open_audit_store
from gateway.audit.store.protocol import AuditStore
from gateway.audit.verify import verify_bundle
from gateway.auth.keys import jwk_thumbprint, load_private_key
from gateway.auth.tokens import ASSERTION_TYPE, make_client_assertion
from gateway.demo.sharing import ensure_demo_sharing
from gateway.errors import AuditUnavailableError
from gateway.query.respond import sha256_hex
from gateway.settings import Settings
from gateway.tlog.checkpoint import open_checkpoint
from gateway.tlog.errors import NoteError, ProofError
from gateway.tlog.rfc6962 import MerkleTree, verify_consistency, verify_inclusion
from tests.e2e.harness import ROOT, demo_dsn, demo_signer

#: (system, purpose, SQL, expected status): served and refused queries, interleaved.
QUERIES: tuple[tuple[str, str, str, int], ...] = (
    (
        "rsj-subsidy",
        "employment_subsidy_review",
        "SELECT gender, COUNT(*) AS n FROM population.people GROUP BY gender",
        200,
    ),
    ("rsj-subsidy", "employment_subsidy_review", "SELECT bank_card FROM subsidies.grants", 403),
    (
        "swj-tax",
        "tax_administration",
        "SELECT status, COUNT(*) AS n FROM legal_person.enterprises GROUP BY status",
        200,
    ),
    ("swj-tax", "tax_administration", "SELECT * FROM population.people", 403),
)
CLIENT_THREADS = 8
#: The kill comes this long after the load started (or once MIN_BEFORE_KILL answers came).
KILL_AFTER_S = 2.0
MIN_BEFORE_KILL = 40
#: The load never runs longer than this, even if the answers are slow to come.
MAX_LOAD_S = 8.0
AFTER_RESTART = 12
WORKERS = 2
READY_TIMEOUT_S = 40.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class _Server:
    """``python -m gateway.cli serve`` in a process group of its own."""

    env: dict[str, str]
    log_path: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = _free_port()
        env = {
            **self.env,
            "GATEWAY_PORT": str(self.port),
            "GATEWAY_ISSUER": self.base,
        }
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve"],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the kill reaches the workers
        )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gateway not ready after {READY_TIMEOUT_S:g} s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the whole process group: supervisor and workers, mid-whatever."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._close_log()

    def stop(self) -> None:
        """Graceful stop (SIGTERM), SIGKILL if it does not stop in time; idempotent."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _token(base: str, system: str) -> str:
    key = load_private_key(ROOT / "keys" / "demo" / f"{system}.demo.key.pem")
    alg = "EdDSA" if type(key).__name__.startswith("Ed25519") else "ES256"
    assertion = make_client_assertion(
        system, key, alg, jwk_thumbprint(key), f"{base}/v1/token", datetime.now(UTC)
    )
    resp = httpx.post(
        f"{base}/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


@dataclass
class _Answer:
    """One /v1/query response: its status, the receipt it carried, its result bytes."""

    phase: str
    status: int
    expected: int
    receipt: Receipt | None
    result: bytes | None


@dataclass
class _Load:
    answers: list[_Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, answer: _Answer | None, error: str | None = None) -> None:
        with self.lock:
            if answer is not None:
                self.answers.append(answer)
            if error is not None:
                self.errors.append(error)

    def count(self) -> int:
        with self.lock:
            return len(self.answers)


def _parse(phase: str, expected: int, resp: httpx.Response) -> _Answer:
    if resp.status_code == 200:
        result, receipt = split_receipt(resp.content)
        return _Answer(phase, 200, expected, receipt, result)
    body: dict[str, Any] = resp.json()
    raw = body.get("receipt")
    refusal = Receipt.from_json(raw) if raw is not None else None
    return _Answer(phase, resp.status_code, expected, refusal, None)


def _ask(
    client: httpx.Client, base: str, tokens: dict[str, str], n: int
) -> tuple[int, httpx.Response]:
    system, purpose, sql, expected = QUERIES[n % len(QUERIES)]
    resp = client.post(
        f"{base}/v1/query",
        json={"sql": sql, "purpose": purpose},
        headers={"Authorization": f"Bearer {tokens[system]}"},
    )
    return expected, resp


def _client_thread(
    base: str, tokens: dict[str, str], load: _Load, stop: threading.Event, offset: int
) -> None:
    n = offset
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            try:
                expected, resp = _ask(client, base, tokens, n)
                load.add(_parse("before", expected, resp))
            except httpx.HTTPError as exc:
                # The kill: a request in flight (or sent to the dead server) has no answer.
                load.add(None, f"{type(exc).__name__}: {exc}")
                return
            n += 1


def _drop_schema(pg_dsn: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def audit_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'audit.sqlite'}"
        return
    pg_dsn: str = request.getfixturevalue("pg_dsn")
    schema = f"gw_crash_{secrets.token_hex(6)}"
    try:
        yield f"{pg_dsn}?schema={schema}"
    finally:
        _drop_schema(pg_dsn, schema)


def _env(tmp_path: Path, audit_location: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        {
            "GATEWAY_POLICY_DIR": str(ROOT / "policies"),
            "GATEWAY_KEY_DIR": str(ROOT / "keys" / "demo"),
            "GATEWAY_STATE_DIR": str(tmp_path / "state"),
            "GATEWAY_BACKEND_DEMO_DSN": demo_dsn("sqlite", tmp_path),
            "GATEWAY_AUDIT_DSN": audit_location,
            "GATEWAY_WORKERS": str(WORKERS),
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_TRACES_EXPORTER": "none",
            "GATEWAY_METRICS_EXPORTER": "none",
            "GATEWAY_LOG_LEVEL": "WARNING",
        }
    )
    # The demo's approved applications: its conditional datasets are served under them.
    (tmp_path / "state").mkdir(exist_ok=True)
    ensure_demo_sharing(Settings.from_env(env), now=datetime.now(UTC))
    return env


def _run_until_killed(server: _Server) -> tuple[_Load, int, float]:
    """The load, and the kill in its middle: (load, answers before the kill, seconds)."""
    tokens = {system: _token(server.base, system) for system in {q[0] for q in QUERIES}}
    load = _Load()
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_client_thread, args=(server.base, tokens, load, stop, i), daemon=True
        )
        for i in range(CLIENT_THREADS)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while time.monotonic() - started < MAX_LOAD_S:
        elapsed = time.monotonic() - started
        if elapsed >= KILL_AFTER_S and load.count() >= MIN_BEFORE_KILL:
            break
        time.sleep(0.02)
    server.kill()
    killed_at = time.monotonic() - started
    answered = load.count()
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
        assert not thread.is_alive(), "a client thread did not stop"
    return load, answered, killed_at


def _check_log(
    store: AuditStore, answers: list[_Answer], unanswered: int, context: str
) -> dict[str, int]:
    """Every assertion about the log after the crash; returns what it counted."""
    signer = demo_signer()
    verifier = signer.verifier
    receipts = [a.receipt for a in answers if a.receipt is not None]

    # Receipt-bearing answers: 200s (result bytes digested into the record) and refusals.
    by_index: dict[int, tuple[str, bytes]] = {}
    for answer in answers:
        receipt = answer.receipt
        assert receipt is not None, f"{context}: a {answer.status} answer without a receipt"
        if answer.status != answer.expected:
            # Say why: the refusal's own audit record holds the code and the internal reason.
            found = store.get(receipt.audit_id)
            why = "no record" if found is None else (found[1].error_code, found[1].internal_reason)
            raise AssertionError(f"{context}: got {answer.status} ({why})")
        known = by_index.setdefault(receipt.index, (receipt.audit_id, receipt.leaf_hash))
        assert known == (receipt.audit_id, receipt.leaf_hash), (
            f"{context}: index {receipt.index} was given to two records "
            f"({known[0]} and {receipt.audit_id})"
        )
    ids = [r.audit_id for r in receipts]
    assert len(set(ids)) == len(ids), f"{context}: one audit_id in two receipts"

    head = store.head()
    size = store.size()
    assert head.size == size, f"{context}: head {head.size} but {size} entries"
    entries: list[Any] = []
    for start in range(0, size, 50_000):
        entries.extend(store.entries(start, min(size, start + 50_000)))
    assert [e.idx for e in entries] == list(range(size)), f"{context}: entries not contiguous"
    tree = MerkleTree(e.leaf_hash for e in entries)
    assert tree.root() == head.root, f"{context}: the head's root is not the entries' root"

    for answer in answers:
        receipt = answer.receipt
        assert receipt is not None
        where = f"{context}: {answer.phase} receipt of entry {receipt.index}"
        assert receipt.index < size, f"{where}: the log has only {size} entries (record lost)"
        assert entries[receipt.index].leaf_hash == receipt.leaf_hash, f"{where}: other leaf"
        got = store.get(receipt.audit_id)
        assert got is not None, f"{where}: audit_id {receipt.audit_id} is not in the log"
        index, record = got
        assert index == receipt.index, f"{where}: the record is at index {index}"
        assert record.leaf_hash() == receipt.leaf_hash, f"{where}: the record differs"
        if answer.status == 200:
            assert record.outcome is Outcome.SERVED, where
            assert answer.result is not None
            assert record.response_sha256 == sha256_hex(answer.result), (
                f"{where}: the body is not the one the record digests"
            )
        else:
            assert record.outcome is Outcome.REFUSED and record.status == answer.status, where
        checkpoint, _ = open_checkpoint(receipt.checkpoint, [verifier], origin=signer.origin)
        verify_inclusion(
            receipt.leaf_hash,
            receipt.index,
            checkpoint.size,
            receipt.inclusion_proof,
            checkpoint.root_hash,
        )
        assert checkpoint.root_hash == tree.root(checkpoint.size), (
            f"{where}: its checkpoint of size {checkpoint.size} is not a state of the log"
        )

    # The checkpoints clients held before the crash are consistent with the final head.
    held = {a.receipt.checkpoint for a in answers if a.phase == "before" and a.receipt}
    for note in held:
        checkpoint, _ = open_checkpoint(note, [verifier], origin=signer.origin)
        verify_consistency(
            checkpoint.size,
            head.size,
            checkpoint.root_hash,
            head.root,
            store.consistency_proof(checkpoint.size, head.size),
        )

    # Indices were not reused across the restart: everything after comes after.
    before = [a.receipt.index for a in answers if a.phase == "before" and a.receipt]
    after = [a.receipt.index for a in answers if a.phase == "after" and a.receipt]
    assert before and after, f"{context}: no receipts before or after the restart"
    assert min(after) > max(before), (
        f"{context}: an index after the restart ({min(after)}) is not above every index "
        f"acknowledged before the kill ({max(before)})"
    )

    # At most one unacknowledged record per request the kill cut off. The gateway's own
    # changes (the sweeper escalating or activating the demo's applications at start-up)
    # are records of their own, not answers to this load: they carry an event.
    acknowledged = {r.audit_id for r in receipts}
    own = [
        record.event
        for record in (AuditRecord.from_canonical(e.record) for e in entries)
        if record.audit_id not in acknowledged and record.event is not None
    ]
    assert all(
        str(event.get("type", "")).startswith(("application.", "grant.")) for event in own
    ), f"{context}: unexpected records of the gateway's own: {own}"
    extra = size - len(receipts) - len(own)
    assert 0 <= extra <= unanswered, (
        f"{context}: {size} entries for {len(receipts)} receipts and {unanswered} "
        "requests without an answer"
    )

    # Every stored checkpoint is signed and has the rebuilt tree's root at its size.
    notes: list[str] = []
    start_size = 0
    while True:
        page = store.checkpoints(start_size, limit=1000)
        notes.extend(page)
        if len(page) < 1000:
            break
        start_size = checkpoint_size(page[-1]) + 1
    sizes = set()
    for note in notes:
        checkpoint, _ = open_checkpoint(note, [verifier], origin=signer.origin)
        assert checkpoint.size <= size, f"{context}: a checkpoint beyond the log"
        assert checkpoint.root_hash == tree.root(checkpoint.size), (
            f"{context}: stored checkpoint of size {checkpoint.size} has another root"
        )
        sizes.add(checkpoint.size)
    assert head.size in sizes, f"{context}: the head's checkpoint is not stored"

    store.check()
    report = verify_bundle(full_log_bundle(store), [verifier], receipts=receipts)
    assert report.ok, f"{context}: offline verification failed: " + "; ".join(
        f"{c.name}: {c.detail}" for c in report.failures()
    )
    return {"entries": size, "checkpoints": len(notes), "unacknowledged": extra}


def test_sigkill_mid_load_loses_no_acknowledged_record(tmp_path: Path, audit_location: str) -> None:
    server = _Server(_env(tmp_path, audit_location), tmp_path / "gateway.log")
    try:
        server.start()
        load, answered, killed_at = _run_until_killed(server)
        context = (
            f"{answered} answers before the SIGKILL at {killed_at:.1f} s, "
            f"{len(load.errors)} requests cut off"
        )
        assert answered >= 1, f"{context}; server log:\n{server.tail()}"
        assert len(load.errors) <= CLIENT_THREADS, f"{context}: {load.errors}"

        server.start()  # the same audit log, a new port
        tokens = {system: _token(server.base, system) for system in {q[0] for q in QUERIES}}
        with httpx.Client(timeout=10) as client:
            for n in range(AFTER_RESTART):
                expected, resp = _ask(client, server.base, tokens, n)
                assert resp.status_code == expected, f"{context}; after restart: {resp.text}"
                load.add(_parse("after", expected, resp))
        server.stop()
        assert server.proc is not None and server.proc.returncode == 0, server.tail()
    finally:
        server.stop()

    store = open_audit_store(audit_location, demo_signer())
    try:
        counts = _check_log(store, load.answers, len(load.errors), context)
    except (ProofError, NoteError, AuditUnavailableError) as exc:
        pytest.fail(f"{context}: {type(exc).__name__}: {exc}")
    finally:
        store.close()
    # Shown with -s / -rA: what this run exercised.
    print(json.dumps({"before_kill": answered, "killed_at_s": round(killed_at, 2), **counts}))
