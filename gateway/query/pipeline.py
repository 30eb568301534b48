"""The consumer query path as data: :data:`STEPS`, in the order they run.

    authenticate → check_request → decide → plan (parse, validate, resolve, describe,
    rewrite) → quota → execute → charge_rows → respond → audit

Each step is a small object in the module named after it; it takes a
:class:`~gateway.query.state.QueryState` and returns a new one with what it adds
(``step(state) -> state``), and can be tested alone. :class:`QueryService` runs them in
order. Nothing leaves without its audit record: the audit step commits the record
(durable, signed) before the receipt is attached to the body; a step that refuses stops
the run, and the service hands the refusal — with everything known so far — to the
audit trail, whose receipt goes back with the refusal. The service never raises for a
refusal: it returns a :class:`~gateway.query.state.QueryOutcome`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import ClassVar, Protocol

from gateway.admin.quotas import QuotaMeter
from gateway.audit.receipt import attach_receipt
from gateway.audit.trail import AuditTrail
from gateway.auth.tokens import TokenService
from gateway.backends.base import Backend
from gateway.domain import Principal
from gateway.errors import AuditUnavailableError, GatewayError
from gateway.i18n import msg
from gateway.logs import log_unexpected
from gateway.policy.grants import GrantSource
from gateway.policy.runtime import ActivePolicy, PolicyRuntime
from gateway.query.audit import Audit
from gateway.query.authenticate import Authenticate
from gateway.query.check_request import CheckRequest
from gateway.query.decide import Decide
from gateway.query.execute import Execute
from gateway.query.plan import PlanQuery
from gateway.query.quota import ChargeRows, CheckQuota
from gateway.query.respond import Respond
from gateway.query.state import QueryOutcome, QueryRequest, QueryState, RequestContext
from gateway.telemetry import Telemetry

__all__ = ["STEPS", "QueryDeps", "QueryService", "Step"]

_log = logging.getLogger("gateway.query")


class Step(Protocol):
    """One step of the query path."""

    #: The step's name: its module's name, its telemetry stage.
    name: ClassVar[str]
    #: Whether the service opens a telemetry stage around it (steps that record their
    #: own spans, such as the backend call, say False).
    span: ClassVar[bool]

    def __call__(self, state: QueryState, /) -> QueryState: ...


@dataclass(frozen=True, slots=True)
class QueryDeps:
    """What the steps are built from (gateway/wiring.py provides it)."""

    tokens: TokenService
    #: The active policy version, taken once per request.
    policies: PolicyRuntime
    backends: Mapping[str, Backend]
    trail: AuditTrail
    telemetry: Telemetry
    row_key: bytes
    max_sql_chars: int
    statement_timeout_s: float
    #: The shared quota meter (the administration store) and the grants whose quotas it
    #: enforces.
    quota_meter: QuotaMeter
    grants: GrantSource


def _steps(deps: QueryDeps) -> tuple[Step, ...]:
    return (
        Authenticate(deps.tokens),
        CheckRequest(max_sql_chars=deps.max_sql_chars),
        Decide(),
        PlanQuery(deps.telemetry.stage),
        CheckQuota(deps.quota_meter, deps.grants),
        Execute(deps.backends, deps.telemetry, timeout_s=deps.statement_timeout_s),
        ChargeRows(deps.quota_meter),
        Respond(deps.row_key),
        Audit(deps.trail),
    )


#: The steps of a query, in the order they run.
STEPS: tuple[str, ...] = (
    Authenticate.name,
    CheckRequest.name,
    Decide.name,
    PlanQuery.name,
    CheckQuota.name,
    Execute.name,
    ChargeRows.name,
    Respond.name,
    Audit.name,
)


class QueryService:
    """Runs the steps; see the module docstring."""

    def __init__(
        self,
        steps: tuple[Step, ...],
        trail: AuditTrail,
        telemetry: Telemetry,
        policies: Callable[[], ActivePolicy],
    ) -> None:
        self._steps = steps
        self._trail = trail
        self._telemetry = telemetry
        self._policies = policies

    @classmethod
    def build(cls, deps: QueryDeps) -> QueryService:
        return cls(_steps(deps), deps.trail, deps.telemetry, deps.policies.current)

    @property
    def steps(self) -> tuple[Step, ...]:
        return self._steps

    def run(
        self,
        request: QueryRequest,
        context: RequestContext,
        authorization: str | None,
        authenticator: Callable[[], Principal] | None = None,
    ) -> QueryOutcome:
        """Serve one query request. Never raises for a refusal: the outcome carries the
        error and the receipt of its audit record (no receipt only when the record could
        not be written; the error is then AuditUnavailableError)."""
        state = QueryState(
            request=request,
            context=context,
            authorization=authorization,
            authenticator=authenticator,
        )
        try:
            state = state.evolve(policy=self._policies())
            for step in self._steps:
                with self._telemetry.stage(step.name) if step.span else nullcontext():
                    state = step(state)
        except GatewayError as exc:
            return self._refused(exc, state)
        except Exception as exc:  # a bug: audit it as failed, serve nothing
            log_unexpected(_log, "unexpected error in the query path", exc)
            wrapped = GatewayError(
                msg("The gateway failed to answer; no data was served."),
                internal_detail=f"{type(exc).__name__}: {exc}",
            )
            return self._refused(wrapped, state)
        if state.body is None or state.receipt is None:  # the audit step must have run
            return self._refused(
                GatewayError(
                    msg("The gateway failed to answer; no data was served."),
                    internal_detail="the pipeline ended without an audited body",
                ),
                state,
            )
        return QueryOutcome(
            audit_id=context.audit_id,
            receipt=state.receipt,
            body=attach_receipt(state.body, state.receipt),
            plan_cache_hit=state.plan_cache_hit,
            row_count=len(state.rows or ()),
            truncated=state.truncated,
            principal=state.principal,
            tables=state.plan.tables if state.plan else (),
        )

    def _refused(self, error: GatewayError, state: QueryState) -> QueryOutcome:
        if isinstance(error, AuditUnavailableError):
            # The served record itself could not be written: nothing more can be.
            return QueryOutcome(audit_id=None, receipt=None, error=error, principal=state.principal)
        try:
            receipt = self._trail.refused(
                error,
                state.context,
                principal=state.principal,
                request=state.request,
                plan=state.plan,
            )
        except AuditUnavailableError as audit_exc:
            # No record, no answer: whatever the refusal was, the client gets 503.
            return QueryOutcome(
                audit_id=None, receipt=None, error=audit_exc, principal=state.principal
            )
        return QueryOutcome(
            audit_id=state.context.audit_id,
            receipt=receipt,
            error=error,
            plan_cache_hit=state.plan_cache_hit,
            principal=state.principal,
            tables=state.plan.tables if state.plan else (),
        )
