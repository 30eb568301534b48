"""The connection pool of the SQLite, MariaDB/MySQL and DuckDB backends.

PostgreSQL backends use ``psycopg_pool`` instead (it also checks and replaces connections
the server closed); the drivers of the other three have no pool of their own, and they
share this one so that saturation, broken connections and ``close`` behave the same on
every backend.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from gateway.backends.base import PoolStats, unavailable_error

__all__ = ["ConnectionPool"]

C = TypeVar("C")


class ConnectionPool(Generic[C]):
    """A small thread-safe pool: at most ``max_size`` connections, created lazily by
    ``factory`` (which raises gateway errors), handed out LIFO so warm connections are
    reused, each to one thread at a time.

    ``acquire`` waits up to its timeout for a free connection and then raises
    BackendUnavailableError (the backend is saturated; the client may retry). Connections
    released as broken, or released after ``close``, are disposed of.
    """

    def __init__(
        self,
        *,
        backend: str,
        factory: Callable[[], C],
        dispose: Callable[[C], None],
        max_size: int,
    ) -> None:
        if max_size < 1:
            raise ValueError(f"pool size must be >= 1, got {max_size}")
        self._backend = backend
        self._factory = factory
        self._dispose = dispose
        self._max_size = max_size
        self._idle: list[C] = []
        self._size = 0  # connections created and not yet disposed of, idle or in use
        self._closed = False
        self._cond = threading.Condition()

    def acquire(self, timeout_s: float) -> C:
        """A connection for the calling thread's exclusive use until ``release``.
        Raises BackendUnavailableError (closed, saturated) or whatever ``factory`` raises."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                if self._closed:
                    raise unavailable_error(self._backend, "backend closed")
                if self._idle:
                    return self._idle.pop()
                if self._size < self._max_size:
                    self._size += 1  # reserve the slot; connect outside the lock
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise unavailable_error(
                        self._backend,
                        f"all {self._max_size} connections busy for {timeout_s:g} s",
                    )
                self._cond.wait(remaining)
        try:
            return self._factory()
        except BaseException:
            with self._cond:
                self._size -= 1
                self._cond.notify()
            raise

    def release(self, conn: C, *, broken: bool = False) -> None:
        """Give ``conn`` back; ``broken`` (or a closed pool) disposes of it instead."""
        with self._cond:
            keep = not (broken or self._closed)
            if keep:
                self._idle.append(conn)
            else:
                self._size -= 1
            self._cond.notify()
        if not keep:
            self._safe_dispose(conn)

    def ping(
        self,
        timeout_s: float,
        probe: Callable[[C], object],
        errors: type[BaseException] | tuple[type[BaseException], ...],
    ) -> None:
        """Run ``probe`` on a pooled connection (the backends' ``ping``). A driver error
        (one of ``errors``) disposes of the connection, which can no longer be trusted, and
        raises BackendUnavailableError."""
        conn = self.acquire(timeout_s)
        broken = False
        try:
            probe(conn)
        except errors as exc:
            broken = True
            raise unavailable_error(self._backend, "ping failed", exc) from exc
        finally:
            self.release(conn, broken=broken)

    def stats(self) -> PoolStats:
        """How many connections are open and how many are lent out, now."""
        with self._cond:
            return PoolStats(
                size=self._size, in_use=self._size - len(self._idle), max_size=self._max_size
            )

    def close(self) -> None:
        """Dispose of idle connections now and of busy ones when they are released."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._size -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            self._safe_dispose(conn)

    def _safe_dispose(self, conn: C) -> None:
        # Closing a connection whose server went away may itself fail; nothing to do then.
        with contextlib.suppress(Exception):
            self._dispose(conn)
