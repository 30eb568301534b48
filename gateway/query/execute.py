"""Step 5, execute: run the plan's SQL on its backend — read-only, within the time limit
(the gateway's, or the consumer's if lower), fetching one row more than allowed so that
truncation is detected rather than guessed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from gateway.backends.base import Backend
from gateway.errors import BackendQueryError, QueryTooExpensiveError
from gateway.i18n import msg
from gateway.query.respond import iso_timestamps, json_rows
from gateway.query.rewrite.recursion import MAX_RECURSION_STEPS
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
            try:
                result = backend.execute(plan.sql, max_rows=plan.cap.fetch, timeout_s=timeout)
            except BackendQueryError as exc:
                if plan.recursive:
                    raise _recursion_stopped(exc) from None
                raise
        return state.evolve(
            rows=iso_timestamps(json_rows(result.rows[: plan.cap.allowed]), plan.columns),
            truncated=plan.cap.is_truncated(len(result.rows)),
        )


def _recursion_stopped(exc: BackendQueryError) -> QueryTooExpensiveError:
    """The backend failed a query with a bounded recursive CTE: almost always the bound
    (rewrite/recursion.py makes reaching it an integer overflow), which the consumer can
    fix; the engine's own message stays in the audit record."""
    return QueryTooExpensiveError(
        msg(
            "The query was stopped: a recursive CTE needed {steps} or more steps, the "
            "gateway's bound (or a value overflowed). End the recursion sooner with a "
            "condition in its recursive part, e.g. WHERE n < 100.",
            steps=MAX_RECURSION_STEPS,
        ),
        extra={"max_recursion_steps": MAX_RECURSION_STEPS},
        internal_detail=exc.internal_detail or exc.detail,
    )
