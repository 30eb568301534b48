"""Replay protection for client assertions (RFC 7523 §3 item 7).

The token endpoint remembers every accepted assertion's ``(iss, jti)`` until the assertion
could no longer be accepted anyway (its ``exp`` plus the clock skew). A second use inside
that window is refused. Several server workers must share one cache, hence the SQLite
(one file, many processes) and PostgreSQL (many hosts) implementations; the in-memory
one is for tests and single-process demos.

Every implementation makes the check-and-insert a single atomic statement (an upsert that
only overwrites an *expired* entry), so two workers racing with the same ``jti`` cannot
both win.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg import sql

from gateway.clock import Clock, utc_now
from gateway.dsn import parse_dsn
from gateway.errors import AuthenticationError, BackendUnavailableError, ConfigurationError

__all__ = [
    "MemoryReplayCache",
    "PostgresReplayCache",
    "ReplayCache",
    "SqliteReplayCache",
    "open_replay_cache",
]

#: Purge expired rows once every this many ``remember`` calls (per instance).
DEFAULT_PURGE_EVERY = 256
_UNAVAILABLE = "The token service is temporarily unavailable; retry shortly."


def _epoch(moment: datetime, what: str) -> float:
    # A naive datetime would be read as local time by .timestamp(): refuse it rather than
    # silently shift every expiry by the server's UTC offset.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ConfigurationError(f"{what} must be a timezone-aware datetime")
    return moment.timestamp()


def _check_ids(jti: str, issuer: str) -> None:
    if not jti or not issuer:
        raise AuthenticationError("empty jti or issuer given to the replay cache")


class ReplayCache(Protocol):
    """Remembers ``(issuer, jti)`` pairs until they expire."""

    def remember(self, jti: str, issuer: str, expires_at: datetime) -> None:
        """Record ``(issuer, jti)`` until ``expires_at``.

        Raises AuthenticationError("replayed assertion jti") if the pair was recorded
        before and has not expired yet. Implementations backed by a store raise
        BackendUnavailableError when the store cannot be reached (fail closed: without the
        check no token is issued).
        """
        ...

    def close(self) -> None:
        """Release connections. The cache must not be used afterwards."""
        ...


class MemoryReplayCache:
    """In-process cache for tests and single-worker demos. Thread-safe.

    Bounded: when ``max_entries`` unexpired entries are held, new assertions are refused
    (fail closed) rather than forgetting entries that could still be replayed.
    """

    def __init__(self, *, clock: Clock = utc_now, max_entries: int = 100_000) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def remember(self, jti: str, issuer: str, expires_at: datetime) -> None:
        """See :meth:`ReplayCache.remember`. Also raises AuthenticationError when full."""
        _check_ids(jti, issuer)
        expires = _epoch(expires_at, "expires_at")
        now = _epoch(self._clock(), "clock()")
        key = (issuer, jti)
        with self._lock:
            seen = self._entries.get(key)
            if seen is not None and seen > now:
                raise AuthenticationError("replayed assertion jti")
            if len(self._entries) >= self._max_entries:
                self._entries = {k: v for k, v in self._entries.items() if v > now}
                if len(self._entries) >= self._max_entries:
                    raise AuthenticationError("replay cache full")
            self._entries[key] = expires

    def close(self) -> None:
        with self._lock:
            self._entries.clear()


class SqliteReplayCache:
    """Replay cache in one SQLite file, shared by every worker process on the host.

    WAL mode lets readers and the single writer proceed concurrently; ``busy_timeout``
    makes a writer wait for the lock instead of failing. Thread-safe within a process.
    """

    # Fixed SQL text (no interpolation): the table lives in its own file, no name clash.
    _CREATE = (
        "CREATE TABLE IF NOT EXISTS replay_jti ("
        " issuer TEXT NOT NULL, jti TEXT NOT NULL, expires_at REAL NOT NULL,"
        " PRIMARY KEY (issuer, jti)) WITHOUT ROWID"
    )
    _INDEX = "CREATE INDEX IF NOT EXISTS replay_jti_expires ON replay_jti(expires_at)"
    # One statement: insert, or take over the row only if it has expired. changes() is 0
    # exactly when an unexpired row exists, i.e. a replay (SQLite "UPSERT", 3.24+).
    _UPSERT = (
        "INSERT INTO replay_jti (issuer, jti, expires_at) VALUES (?, ?, ?) "
        "ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = excluded.expires_at "
        "WHERE replay_jti.expires_at <= ?"
    )
    _PURGE = "DELETE FROM replay_jti WHERE expires_at <= ?"

    def __init__(
        self,
        path: Path | str,
        *,
        clock: Clock = utc_now,
        purge_every: int = DEFAULT_PURGE_EVERY,
        timeout_s: float = 5.0,
    ) -> None:
        """Open (creating if needed) the cache file. Raises ConfigurationError if the file
        cannot be opened or initialised."""
        self._clock = clock
        self._purge_every = max(1, purge_every)
        self._calls = 0
        self._lock = threading.Lock()
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: autocommit, each statement is its own transaction.
            self._conn = sqlite3.connect(
                self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute(self._CREATE)
            self._conn.execute(self._INDEX)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"cannot open replay cache {self.path}: {exc}") from None

    def remember(self, jti: str, issuer: str, expires_at: datetime) -> None:
        """See :meth:`ReplayCache.remember`."""
        _check_ids(jti, issuer)
        expires = _epoch(expires_at, "expires_at")
        now = _epoch(self._clock(), "clock()")
        with self._lock:
            try:
                inserted = self._conn.execute(self._UPSERT, (issuer, jti, expires, now)).rowcount
                self._calls += 1
                if self._calls % self._purge_every == 0:
                    self._conn.execute(self._PURGE, (now,))
            except sqlite3.Error as exc:
                raise BackendUnavailableError(
                    _UNAVAILABLE, internal_detail=f"replay cache {self.path}: {exc}"
                ) from None
        if inserted == 0:
            raise AuthenticationError("replayed assertion jti")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


_PG_DEFAULT_TABLE = "gateway_replay_jti"
_PG_TABLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$")


class PostgresReplayCache:
    """Replay cache in a PostgreSQL table, shared by every gateway instance.

    One autocommit connection per instance, guarded by a lock and re-opened once if the
    server dropped it.
    """

    def __init__(
        self,
        dsn: str,
        *,
        table: str = _PG_DEFAULT_TABLE,
        clock: Clock = utc_now,
        purge_every: int = DEFAULT_PURGE_EVERY,
        timeout_s: float = 5.0,
    ) -> None:
        """Connect and create ``table`` (``name`` or ``schema.name``) if missing.

        Raises ConfigurationError for a bad table name and BackendUnavailableError if the
        server cannot be reached.
        """
        if not _PG_TABLE.match(table):
            raise ConfigurationError(f"replay cache table {table!r} is not a plain identifier")
        self._dsn = dsn
        self._clock = clock
        self._purge_every = max(1, purge_every)
        self._timeout_s = timeout_s
        self._calls = 0
        self._lock = threading.Lock()
        ident = sql.Identifier(*table.split("."))
        self._insert = sql.SQL(
            "INSERT INTO {t} AS r (issuer, jti, expires_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = EXCLUDED.expires_at "
            "WHERE r.expires_at <= %s"
        ).format(t=ident)
        self._purge = sql.SQL("DELETE FROM {t} WHERE expires_at <= %s").format(t=ident)
        creates = [
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {t} (issuer text NOT NULL, jti text NOT NULL, "
                "expires_at timestamptz NOT NULL, PRIMARY KEY (issuer, jti))"
            ).format(t=ident)
        ]
        if "." in table:
            schema = sql.Identifier(table.split(".", 1)[0])
            creates.insert(0, sql.SQL("CREATE SCHEMA IF NOT EXISTS {s}").format(s=schema))
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        with self._lock:
            conn = self._connection()
            for create in creates:
                try:
                    conn.execute(create)
                except (
                    psycopg.errors.UniqueViolation,
                    psycopg.errors.DuplicateTable,
                    psycopg.errors.DuplicateSchema,
                ):
                    # Two workers starting together both ran CREATE ... IF NOT EXISTS;
                    # the loser trips over the winner's catalog row. It exists: fine.
                    pass
                except psycopg.Error as exc:
                    raise BackendUnavailableError(
                        _UNAVAILABLE, internal_detail=f"replay cache table {table}: {exc}"
                    ) from None

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(
                    self._dsn,
                    autocommit=True,
                    connect_timeout=max(1, int(self._timeout_s)),
                    options=f"-c statement_timeout={int(self._timeout_s * 1000)}",
                )
            except psycopg.Error as exc:
                raise BackendUnavailableError(
                    _UNAVAILABLE, internal_detail=f"replay cache connect: {exc}"
                ) from None
        return self._conn

    def remember(self, jti: str, issuer: str, expires_at: datetime) -> None:
        """See :meth:`ReplayCache.remember`."""
        _check_ids(jti, issuer)
        _epoch(expires_at, "expires_at")
        now = self._clock()
        _epoch(now, "clock()")
        with self._lock:
            inserted: int | None = None
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    inserted = conn.execute(self._insert, (issuer, jti, expires_at, now)).rowcount
                    self._calls += 1
                    if self._calls % self._purge_every == 0:
                        conn.execute(self._purge, (now,))
                    break
                except psycopg.OperationalError as exc:
                    # A dropped connection is retried once on a fresh one; the upsert is
                    # idempotent for a first use, so a retry cannot turn it into a replay
                    # unless the first attempt really committed (then refusing is safe).
                    self._conn = None
                    if attempt == 2:
                        raise BackendUnavailableError(
                            _UNAVAILABLE, internal_detail=f"replay cache: {exc}"
                        ) from None
                except psycopg.Error as exc:
                    raise BackendUnavailableError(
                        _UNAVAILABLE, internal_detail=f"replay cache: {exc}"
                    ) from None
        if inserted == 0:
            raise AuthenticationError("replayed assertion jti")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def open_replay_cache(location: str, *, clock: Clock = utc_now) -> ReplayCache:
    """Open the replay cache named by ``location`` (``Settings.replay_location``, a
    :mod:`gateway.dsn` DSN).

    ``memory:`` → :class:`MemoryReplayCache`; ``sqlite:<path>`` → :class:`SqliteReplayCache`;
    ``postgresql://…`` or ``postgres://…`` → :class:`PostgresReplayCache`, whose table goes
    into the DSN's ``?schema=`` (created if missing) when one is given. Raises
    ConfigurationError for anything else, without echoing the location.
    """
    dsn = parse_dsn(location, kinds=("memory", "sqlite", "postgres"), what="replay cache location")
    if dsn.kind == "memory":
        return MemoryReplayCache(clock=clock)
    if dsn.kind == "sqlite":
        return SqliteReplayCache(dsn.path, clock=clock)
    conninfo, schema = dsn.postgres_conninfo()
    table = _PG_DEFAULT_TABLE if schema is None else f"{schema}.{_PG_DEFAULT_TABLE}"
    return PostgresReplayCache(conninfo, table=table, clock=clock)
