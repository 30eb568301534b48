"""The ``Backend`` seam: run the already rewritten SQL on a provider's database.

Every implementation guarantees, whatever the SQL says (the SQL was validated upstream;
these are the second line of defence):

- **Read-only.** The database session cannot write: SQLite ``mode=ro`` + ``query_only`` +
  an authorizer, PostgreSQL read-only transactions, MariaDB/MySQL read-only sessions,
  DuckDB ``read_only`` with external access disabled.
- **Raw text.** The SQL is sent exactly as given, with no driver parameters, so a ``%``
  in ``LIKE 'a%'`` is never taken for a placeholder.
- **Bounded.** At most ``max_rows`` rows come back; a query still running at
  ``timeout_s`` is stopped and raises :class:`QueryTimeoutError`; data that arrives after
  the deadline is discarded rather than returned (no partial or late results).
- **Quiet errors.** A database's own error text can echo protected values, so it only
  ever goes to ``internal_detail``; ``detail`` names the error class at most.

Failures raise :class:`QueryTimeoutError` (504), :class:`BackendUnavailableError` (503,
retry) or :class:`BackendQueryError` (502) and nothing else. Invalid arguments
(``max_rows < 0``, ``timeout_s <= 0``) are programming errors and raise ``ValueError``.

This module also holds the pieces the implementations share: error constructors, the
SQLSTATE vocabulary and a deadline watchdog (the connection pool of the SQLite, DuckDB and
MariaDB backends is :mod:`gateway.backends.pool`; PostgreSQL uses ``psycopg_pool``).
"""

from __future__ import annotations

import heapq
import itertools
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from gateway.errors import (
    BackendQueryError,
    BackendUnavailableError,
    GatewayError,
    QueryTimeoutError,
    TypeMismatchError,
)
from gateway.i18n import msg

__all__ = [
    "VALUE_SQLSTATES",
    "Backend",
    "BackendResult",
    "PoolStats",
    "ReportsPool",
    "Watchdog",
    "check_limits",
    "query_error",
    "result_in_time",
    "retry_on_fresh_connection",
    "sqlstate_category",
    "timeout_error",
    "unavailable_error",
    "value_error",
]


@dataclass(frozen=True, slots=True)
class BackendResult:
    """Rows as the driver returned them (int, str, Decimal, date, ...), never more than
    the ``max_rows`` asked for, and the column names from the cursor description."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    #: Wall-clock seconds spent in ``execute``, waiting for a connection included.
    elapsed_s: float


@runtime_checkable
class Backend(Protocol):
    """A provider database. Implementations are thread-safe: ``execute`` may be called
    from many threads at once."""

    name: str
    #: ``sqlite`` | ``postgres`` | ``mysql`` | ``duckdb``
    kind: str
    #: The sqlglot dialect to transpile to: ``sqlite`` | ``postgres`` | ``mysql`` | ``duckdb``
    dialect: str

    def execute(self, sql: str, *, max_rows: int, timeout_s: float) -> BackendResult:
        """Run ``sql`` verbatim, read-only, within ``timeout_s``; return at most
        ``max_rows`` rows. Raises QueryTimeoutError, BackendUnavailableError,
        BackendQueryError."""
        ...

    def ping(self) -> None:
        """Check the database answers. Raises BackendUnavailableError."""
        ...

    def close(self) -> None:
        """Release every connection. Idempotent; later calls to ``execute`` raise
        BackendUnavailableError."""
        ...


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A backend's connection pool right now (for metrics: read at collection time)."""

    #: Connections open (idle or in use).
    size: int
    #: Connections lent to a query at this moment.
    in_use: int
    #: The pool's upper bound.
    max_size: int


@runtime_checkable
class ReportsPool(Protocol):
    """A backend that can say how full its connection pool is. Every backend of the
    gateway does; test doubles need not (metrics then leave them out)."""

    def pool_stats(self) -> PoolStats:
        """The pool as it is now; cheap, never raises, no I/O."""
        ...


# ------------------------------------------------------------------------------ errors


def _describe(exc: BaseException | None) -> str:
    return "" if exc is None else f": {type(exc).__name__}: {exc}"


def query_error(
    backend: str, category: str, exc: BaseException | None, *, engine_code: str = ""
) -> BackendQueryError:
    """A BackendQueryError whose ``detail`` holds only ``category`` (a fixed phrase or a
    SQLSTATE, never database text, never a name or code that identifies the engine); the
    database message and the engine's own error code go to ``internal_detail``."""
    code = f", {engine_code}" if engine_code else ""
    return BackendQueryError(
        msg("The backend could not run the rewritten query ({category}).", category=category),
        internal_detail=f"backend {backend!r} ({category}{code}){_describe(exc)}",
    )


#: SQLSTATEs of a value the query's own conversion or comparison refuses: invalid text
#: representation, invalid datetime format, datetime field overflow, an operator or
#: function for other types (text > integer), datatype mismatch.
VALUE_SQLSTATES = frozenset({"22P02", "22007", "22008", "42883", "42804"})

#: The consumer-safe detail of a value the backend could not convert or compare.
VALUE_DETAIL = msg(
    "A value could not be converted or compared as the query asks (for example a CAST of "
    "masked text to a number or a date, or text compared with a number). A masked column "
    "holds its masked value: GET /v1/catalog gives each column's type as you receive it."
)


def value_error(backend: str, category: str, exc: BaseException | None) -> TypeMismatchError:
    """A 422 for a conversion the *values* refuse (the consumer can fix the query); the
    database's message goes to ``internal_detail`` only."""
    return TypeMismatchError(
        VALUE_DETAIL, internal_detail=f"backend {backend!r} ({category}){_describe(exc)}"
    )


def timeout_error(
    backend: str, timeout_s: float, exc: BaseException | None = None
) -> QueryTimeoutError:
    return QueryTimeoutError(
        msg(
            "The query did not finish within its time limit of {limit:g} s. "
            "Narrow it with filters or a smaller LIMIT, or retry later.",
            limit=timeout_s,
        ),
        internal_detail=f"backend {backend!r}: time limit {timeout_s:g} s reached{_describe(exc)}",
    )


def unavailable_error(
    backend: str, reason: str, exc: BaseException | None = None
) -> BackendUnavailableError:
    # The backend's name and address stay internal: a consumer knows datasets, not hosts.
    return BackendUnavailableError(
        msg("The data source is temporarily unavailable. Retry later."),
        internal_detail=f"backend {backend!r}: {reason}{_describe(exc)}",
    )


def result_in_time(
    backend: str,
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    *,
    started: float,
    deadline: float,
    timeout_s: float,
    interrupted: bool = False,
) -> BackendResult:
    """The rows as a BackendResult, or QueryTimeoutError when they came at or after the
    ``deadline`` (``time.monotonic()``) or the query was ``interrupted``: some engines
    return a value from a statement their limit cut short (MariaDB ``SLEEP()``), or only
    check their limit between steps, so a late result is never handed out."""
    finished = time.monotonic()
    if interrupted or finished >= deadline:
        raise timeout_error(backend, timeout_s)
    return BackendResult(columns=columns, rows=rows, elapsed_s=finished - started)


def retry_on_fresh_connection(
    error: GatewayError, *, stale: bool, attempt: int, deadline: float
) -> bool:
    """Whether a failed query should run once more on a fresh connection: only the first
    attempt, only when its pooled connection turned out dead (server restarted, session
    killed) and the error says "unavailable", and only while time is left. The query is
    read-only, so running it again is harmless."""
    return (
        isinstance(error, BackendUnavailableError)
        and stale
        and attempt == 1
        and time.monotonic() < deadline
    )


def check_limits(max_rows: int, timeout_s: float) -> None:
    """Reject arguments no caller should pass. Raises ValueError."""
    if max_rows < 0:
        raise ValueError(f"max_rows must be >= 0, got {max_rows}")
    if not (timeout_s > 0 and math.isfinite(timeout_s)):
        raise ValueError(f"timeout_s must be a positive finite number, got {timeout_s}")


_SQLSTATE_RE = re.compile(r"[0-9A-Z]{5}")

# SQLSTATE classes (ISO/IEC 9075 and PostgreSQL appendix A; MariaDB/MySQL send the same).
_SQLSTATE_CLASSES = MappingProxyType(
    {
        "08": "connection exception",
        "0A": "feature not supported",
        "21": "cardinality violation",
        "22": "data exception",
        "23": "integrity constraint violation",
        "25": "invalid transaction state",
        "28": "invalid authorization",
        "3D": "invalid catalog name",
        "3F": "invalid schema name",
        "40": "transaction rollback",
        "42": "syntax error or access rule violation",
        "53": "insufficient resources",
        "54": "program limit exceeded",
        "55": "object not in prerequisite state",
        "57": "operator intervention",
        "58": "system error",
        "HY": "general error",
        "XX": "internal error",
    }
)
_SQLSTATE_CODES = MappingProxyType(
    {
        "22003": "numeric value out of range",
        "22007": "invalid datetime format",
        "22008": "datetime field overflow",
        "22012": "division by zero",
        "22P02": "invalid text representation",
        "25006": "read-only transaction",
        "42501": "insufficient privilege",
        "42601": "syntax error",
        "42703": "undefined column",
        "42883": "undefined function",
        "42P01": "undefined table",
        "42S02": "undefined table",
        "42S22": "undefined column",
    }
)


def sqlstate_category(sqlstate: str | None) -> str:
    """A consumer-safe phrase for a SQLSTATE, e.g. ``data exception, SQLSTATE 22P02``.

    Only well-formed codes are echoed, so nothing a server sends can smuggle text into
    ``detail`` through this function."""
    if sqlstate is None or not _SQLSTATE_RE.fullmatch(sqlstate):
        return "unclassified error"
    name = _SQLSTATE_CODES.get(sqlstate) or _SQLSTATE_CLASSES.get(
        sqlstate[:2], f"SQLSTATE class {sqlstate[:2]}"
    )
    return f"{name}, SQLSTATE {sqlstate}"


# ------------------------------------------------------------------------------ watchdog


@dataclass(eq=False, slots=True)
class Alarm:
    """One scheduled callback. See :meth:`Watchdog.schedule`."""

    deadline: float
    callback: Callable[[], object]
    _watchdog: Watchdog = field(repr=False)
    #: pending -> cancelled, or pending -> firing -> fired
    state: str = "pending"

    def cancel(self) -> bool:
        """Stop the alarm. Returns True if the callback ran (or was running; this waits
        for it to finish, so the caller may safely reuse whatever it interrupts)."""
        return self._watchdog._cancel(self)


class Watchdog:
    """One daemon thread per backend that runs callbacks (``interrupt()``) at deadlines.

    Cheaper than a ``threading.Timer`` (a new thread) per query. Callbacks must be quick
    and must not raise; an exception is swallowed so one bad callback cannot stop the
    thread that enforces every other deadline.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Alarm]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def schedule(self, deadline: float, callback: Callable[[], object]) -> Alarm:
        """Run ``callback`` once ``time.monotonic()`` reaches ``deadline`` unless the
        returned alarm is cancelled first."""
        alarm = Alarm(deadline, callback, self)
        with self._cond:
            if self._closed:
                raise RuntimeError("watchdog closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (deadline, next(self._seq), alarm))
            if self._heap[0][2] is alarm:
                # notify_all: cancel() callers wait on the same condition.
                self._cond.notify_all()
        return alarm

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _cancel(self, alarm: Alarm) -> bool:
        with self._cond:
            if alarm.state == "pending":
                alarm.state = "cancelled"  # left in the heap; skipped when it comes up
                return False
            while alarm.state == "firing":
                self._cond.wait()
            return alarm.state == "fired"

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    # Drop cancelled alarms so the heap does not grow with finished queries.
                    while self._heap and self._heap[0][2].state == "cancelled":
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        alarm = heapq.heappop(self._heap)[2]
                        alarm.state = "firing"
                        break
                    self._cond.wait(wait)
            try:
                alarm.callback()
            except Exception:  # noqa: S110 - see the class docstring
                pass
            finally:
                with self._cond:
                    alarm.state = "fired"
                    self._cond.notify_all()
