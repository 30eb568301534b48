"""The floor of section 3: a bare litestar endpoint that runs the SQL it is sent on the
demo SQLite file (``POST /query``) or PostgreSQL (``POST /query-pg``) and answers with the
rows as JSON — the same framework, server, worker count, threading model (sync handler in
the thread pool), connection-pool bound (4 per worker) and JSON work as the gateway's
``POST /v1/query``, and nothing else: no token, policy, rewrite, guard or audit.

Benchmark use only: it executes whatever SQL it receives, so it binds to 127.0.0.1 (the
harness starts it that way) and opens the SQLite file read-only (``mode=ro`` +
``query_only``) and PostgreSQL sessions read-only (``default_transaction_read_only``).

    BENCH_SQLITE_PATH=/tmp/demo.sqlite [BENCH_PG_DSN=postgresql://...] \\
        uvicorn benchmarks.bare_app:create_app --factory \\
        --host 127.0.0.1 --port 8001 --workers 2 --no-access-log
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import psycopg
from litestar import Litestar, Response, get, post
from litestar.datastructures import State
from litestar.enums import MediaType

from gateway.query.rewrite.masks import sqlite_functions

#: More rows than any benchmark query returns; bounds a stray query.
MAX_ROWS = 10_000


@dataclass
class Body:
    sql: str
    purpose: str | None = None


#: Connections per worker and database, as the gateway's backends have (open_backend's
#: pool_size): at most this many queries of one worker run at once. Without the bound,
#: 16 handler threads per worker calling the Python HMAC function of the rewritten SQL
#: fight over the GIL and throughput collapses (measured: 124 → 28 req/s).
POOL_SIZE = 4

C = TypeVar("C")


class Pool(Generic[C]):
    """A blocking LIFO pool of at most POOL_SIZE connections, created on demand."""

    def __init__(self, factory: Callable[[], C]) -> None:
        self._factory = factory
        self._idle: queue.LifoQueue[C] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(POOL_SIZE)

    @contextmanager
    def connection(self) -> Iterator[C]:
        self._slots.acquire()
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._factory()
            yield conn
            self._idle.put(conn)
        finally:
            self._slots.release()


def sqlite_pool(path: Path) -> Pool[sqlite3.Connection]:
    """Read-only connections with the gateway's SQL functions registered, so the gateway's
    rewritten SQL runs too."""
    uri = f"{path.absolute().as_uri()}?mode=ro"

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        conn.execute("PRAGMA query_only = ON")
        for name, nargs, func in sqlite_functions():
            conn.create_function(name, nargs, func, deterministic=True)
        return conn

    return Pool(connect)


def pg_pool(dsn: str) -> Pool[psycopg.Connection[tuple[Any, ...]]]:
    """Autocommit psycopg connections, read-only sessions, no server-side prepare."""

    def connect() -> psycopg.Connection[tuple[Any, ...]]:
        conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=None)
        conn.execute("SET default_transaction_read_only = on")
        return conn

    return Pool(connect)


def _respond(columns: list[str], rows: list[Any]) -> Response[bytes]:
    body = json.dumps(
        {"columns": columns, "rows": rows, "row_count": len(rows)},
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    ).encode("utf-8")
    return Response(content=body, media_type=MediaType.JSON)


@post("/query", status_code=200, sync_to_thread=True)
def query(state: State, data: Body) -> Response[bytes]:
    pool: Pool[sqlite3.Connection] = state.sqlite
    with pool.connection() as conn:
        cursor = conn.execute(data.sql)
        try:
            columns = [d[0] for d in cursor.description or ()]
            rows = cursor.fetchmany(MAX_ROWS)
        finally:
            cursor.close()
    return _respond(columns, rows)


@post("/query-pg", status_code=200, sync_to_thread=True)
def query_pg(state: State, data: Body) -> Response[bytes]:
    pool: Pool[psycopg.Connection[tuple[Any, ...]]] | None = state.pg
    if pool is None:
        return Response(
            content=b'{"error":"BENCH_PG_DSN not set"}', status_code=404, media_type=MediaType.JSON
        )
    with pool.connection() as conn:
        cursor = conn.execute(data.sql)
        columns = [d.name for d in cursor.description or ()]
        rows = cursor.fetchmany(MAX_ROWS)
    return _respond(columns, rows)


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def create_app() -> Litestar:
    path = Path(os.environ["BENCH_SQLITE_PATH"])
    if not path.is_file():
        raise SystemExit(f"BENCH_SQLITE_PATH={path} is not a file")
    pg_dsn = os.environ.get("BENCH_PG_DSN")
    return Litestar(
        route_handlers=[query, query_pg, healthz],
        state=State(
            {
                "sqlite": sqlite_pool(path),
                "pg": pg_pool(pg_dsn) if pg_dsn else None,
            }
        ),
        debug=False,
    )
