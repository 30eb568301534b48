"""Step 5, execute: run the plan's SQL on its backend — read-only, within the time limit
(the gateway's, or the consumer's if lower), fetching one row more than allowed so that
truncation is detected rather than guessed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from gateway.backends.base import Backend
from gateway.query.respond import json_rows
from gateway.query.state import QueryState
from gateway.telemetry import Telemetry

__all__ = ["Execute"]

#: Backend kind -> OpenTelemetry ``db.system.name``.
_DB_SYSTEM = {"postgres": "postgresql", "mysql": "mysql", "sqlite": "sqlite", "duckdb": "duckdb"}


class Execute:
    """Raises BackendUnavailableError, BackendQueryError or QueryTimeoutError."""

    name: ClassVar[str] = "execute"
    #: The backend call gets its own CLIENT span (database conventions), not a stage span.
    span: ClassVar[bool] = False

    def __init__(
        self, backends: Mapping[str, Backend], telemetry: Telemetry, *, timeout_s: float
    ) -> None:
        self._backends = backends
        self._telemetry = telemetry
        self._timeout_s = timeout_s

    def __call__(self, state: QueryState) -> QueryState:
        plan = state.need_plan()
        backend = self._backends[plan.backend]
        timeout = self._timeout_s
        if state.request.timeout_ms is not None:
            timeout = min(timeout, state.request.timeout_ms / 1000)
        with self._telemetry.db_call(
            system=_DB_SYSTEM.get(backend.kind, backend.kind),
            query_text=plan.audit_sql,
            namespace=plan.backend,
        ):
            result = backend.execute(plan.sql, max_rows=plan.cap.fetch, timeout_s=timeout)
        return state.evolve(
            rows=json_rows(result.rows[: plan.cap.allowed]),
            truncated=plan.cap.is_truncated(len(result.rows)),
        )
