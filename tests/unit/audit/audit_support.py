"""Helpers shared by the audit tests, importable by name so that ``spawn``-ed worker
processes (which re-import what they run) can use them too."""

from __future__ import annotations

import multiprocessing
import queue
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from gateway.audit import AuditRecord, Outcome, format_time, new_audit_id, open_audit_store

FIXED_NOW = datetime(2026, 11, 23, 19, 0, 0, 123456, tzinfo=UTC)


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
        "outcome": Outcome.SERVED,
        "status": 200,
        "error_code": None,
        "reason": None,
        "internal_reason": None,
        "duration_us": 1834,
    }
    fields.update(changes)
    return AuditRecord(**fields)


def new_pg_schema() -> str:
    """A fresh schema name no concurrent test run can share."""
    return f"t_audit_{secrets.token_hex(6)}"


def drop_pg_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def append_worker(
    location: str, count: int, tag: str, barrier: Any, results: Any
) -> None:  # pragma: no cover - runs in a child process
    """Child-process body: open the store, wait for the sibling, append ``count``."""
    indices: list[int] = []
    error: str | None = None
    try:
        store = open_audit_store(location)
        try:
            barrier.wait(timeout=60)
            for i in range(count):
                indices.append(store.append(make_record(i, system=tag)))
        finally:
            store.close()
    except BaseException as exc:
        error = repr(exc)
    results.put((tag, indices, error))


def run_two_processes(location: str, count: int) -> dict[str, list[int]]:
    """Append ``count`` records from each of two spawned processes that start together;
    returns the indices each got. Fails the test if a child failed."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=append_worker, args=(location, count, tag, barrier, results))
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


def interleaved(indices: list[int]) -> bool:
    """True when ``indices`` (ascending) is not one contiguous block."""
    return bool(indices) and indices[-1] - indices[0] + 1 != len(indices)
