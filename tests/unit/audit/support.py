"""Helpers shared by the audit tests, importable by name so that ``spawn``-ed worker
processes (which re-import what they run) can use them too."""

from __future__ import annotations

import hashlib
import multiprocessing
import queue
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit import AuditRecord, Outcome, format_time, new_audit_id, open_audit_store
from gateway.audit.signing import CheckpointSigner
from gateway.tlog.note import ALG_ED25519, Signer, key_hash

FIXED_NOW = datetime(2026, 11, 23, 19, 0, 0, 123456, tzinfo=UTC)

#: Origin of the default test log key.
TEST_ORIGIN = "audit.test.invalid/1"


def test_signer(origin: str = TEST_ORIGIN) -> CheckpointSigner:
    """A TEST-ONLY log key whose Ed25519 seed is SHA-256(origin): anyone can derive it.

    Deterministic on purpose, so that spawned worker processes (and reopened stores) use
    the same key as the test that created the log. Never use such a key for a real log.
    """
    private_key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(origin.encode()).digest())
    public_key = private_key.public_key().public_bytes_raw()
    signer = Signer(origin, key_hash(origin, ALG_ED25519, public_key), private_key, ALG_ED25519)
    return CheckpointSigner(signer)


test_signer.__test__ = False  # type: ignore[attr-defined]  # a helper, not a pytest test


def make_record(n: int = 0, *, now: datetime = FIXED_NOW, **changes: Any) -> AuditRecord:
    """A plausible served record; ``n`` shifts the time by ``n`` seconds."""
    moment = now + timedelta(seconds=n)
    fields: dict[str, Any] = {
        "audit_id": new_audit_id(moment),
        "time": format_time(moment),
        "request_id": f"req-{n}",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "department": "市公安局",
        "system": "population-portal",
        "officer": "张伟",
        "purpose": "social_assistance",
        "client_ip": "10.0.0.7",
        "sql": "SELECT name, id_number FROM population.people WHERE district = '海淀区'",
        "rewritten_sql": "SELECT mask_name(name) AS name FROM people WHERE district = $1",
        "backend": "demo",
        "policy_version": "sha256:0f1e",
        "tables": ("population.people",),
        "decisions": {
            "population.people.name": "mask:name",
            "population.people.id_number": "deny",
        },
        "rules": {"population.people.name": "p, civil_affairs, population.people.name, mask:name"},
        "row_filters": ("district = '海淀区'",),
        "max_rows": 1000,
        "row_count": 12,
        "truncated": False,
        "response_sha256": "ab" * 32,
        "rows_root": "cd" * 32,
        "grants": (),
        "outcome": Outcome.SERVED,
        "status": 200,
        "error_code": None,
        "reason": None,
        "internal_reason": None,
        "duration_us": 1834,
    }
    fields.update(changes)
    return AuditRecord(**fields)


def drop_pg_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class RawLog:
    """An outsider's (operator's, attacker's) SQL access to the tables of a durable store.

    Statements name tables as ``{t}audit_log`` and take ``%s`` parameters; both are
    translated for SQLite (no prefix, ``?``) and PostgreSQL (the store's schema).
    """

    def __init__(self, location: str) -> None:
        if location.startswith("sqlite:"):
            self.kind = "sqlite"
            self.path = location.removeprefix("sqlite:")
            self.prefix = ""
            return
        self.kind = "postgres"
        parts = urlsplit(location)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        self.schema = next(value for key, value in pairs if key == "schema")
        rest = [(key, value) for key, value in pairs if key != "schema"]
        self.dsn = urlunsplit(parts._replace(query=urlencode(rest)))
        self.prefix = f'"{self.schema}".'

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        text = statement.replace("{t}", self.prefix)
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=5)
            try:
                return conn.execute(text.replace("%s", "?"), tuple(params)).fetchall()
            finally:
                conn.close()
        with psycopg.connect(self.dsn, autocommit=True) as pg:
            cur = pg.execute(text.encode(), tuple(params))
            return cur.fetchall() if cur.description is not None else []

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.query(statement, params)

    def drop_triggers(self) -> None:
        """What an attacker with write access does first: remove the append-only guards."""
        verbs = ("UPDATE", "DELETE") if self.kind == "sqlite" else ("UPDATE", "DELETE", "TRUNCATE")
        for table in ("audit_log", "audit_checkpoints", "audit_keys"):
            for verb in verbs:
                name = f"{table}_no_{verb.lower()}"
                if self.kind == "sqlite":
                    self.execute(f"DROP TRIGGER {name}")
                else:
                    self.execute(f"DROP TRIGGER {name} ON {{t}}{table}")

    def count(self, table: str = "audit_log") -> int:
        return int(self.query(f"SELECT count(*) FROM {{t}}{table}")[0][0])


def append_worker(
    location: str, count: int, tag: str, barrier: Any, results: Any, batch: int = 1
) -> None:  # pragma: no cover - runs in a child process
    """Child-process body: open the store, wait for the sibling, append ``count`` records
    one by one (``batch == 1``) or in batches of ``batch``."""
    indices: list[int] = []
    error: str | None = None
    try:
        store = open_audit_store(location, test_signer())
        try:
            barrier.wait(timeout=60)
            for start in range(0, count, batch):
                records = [
                    make_record(i, system=tag) for i in range(start, min(count, start + batch))
                ]
                if batch == 1:
                    indices.append(store.append(records[0]))
                else:
                    done = store.append_batch(records)
                    indices.extend(range(done.first, done.first + done.count))
        finally:
            store.close()
    except BaseException as exc:
        error = repr(exc)
    results.put((tag, indices, error))


def run_two_processes(location: str, count: int, batch: int = 1) -> dict[str, list[int]]:
    """Append ``count`` records from each of two spawned processes that start together
    (in batches of ``batch``); returns the indices each got. Fails the test if a child
    failed."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=append_worker, args=(location, count, tag, barrier, results, batch))
        for tag in ("proc-a", "proc-b")
    ]
    for p in procs:
        p.start()
    got: dict[str, list[int]] = {}
    try:
        for _ in procs:
            tag, indices, error = results.get(timeout=180)
            assert error is None, f"{tag} failed: {error}"
            got[tag] = indices
    except queue.Empty:  # pragma: no cover - diagnostic only
        raise AssertionError("a worker process did not report") from None
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():  # pragma: no cover
                p.kill()
                p.join()
        results.close()
        results.join_thread()
    return got


def assert_log_consistent(store: Any, signer: CheckpointSigner | None = None) -> None:
    """The store's signed head covers all its entries and its root is the RFC 6962 root
    of their leaf hashes; check() agrees."""
    from gateway.tlog.checkpoint import open_checkpoint
    from gateway.tlog.rfc6962 import root_from_leaves

    size = store.size()
    entries = store.entries(0, size)
    assert [e.idx for e in entries] == list(range(size))
    head = store.head()
    assert head.size == size
    assert head.root == root_from_leaves([e.leaf_hash for e in entries])
    checkpoint, _ = open_checkpoint(head.checkpoint, [(signer or test_signer()).verifier])
    assert (checkpoint.size, checkpoint.root_hash) == (head.size, head.root)
    store.check()


def interleaved(indices: list[int]) -> bool:
    """True when ``indices`` (ascending) is not one contiguous block."""
    return bool(indices) and indices[-1] - indices[0] + 1 != len(indices)
