"""The values the steps of a query pass on (gateway/query/pipeline.py).

A step receives a :class:`QueryState` and returns a new one with what it adds; nothing
is mutated, so a step can be tested alone by building the state it expects.
:class:`QueryOutcome` is what the service hands the HTTP layer: a served body with its
receipt, or a refusal with its receipt — never an exception carrying audit results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.domain import DecisionSnapshot, Principal
from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.admin.quotas import QuotaLimit
    from gateway.audit.receipt import Receipt
    from gateway.policy.runtime import ActivePolicy
    from gateway.query.plan import Plan

__all__ = ["QueryOutcome", "QueryRequest", "QueryState", "RequestContext", "StepError"]


@dataclass(frozen=True, slots=True)
class QueryRequest:
    """What the consumer asked, as decoded from the request body."""

    sql: str
    purpose: str
    #: The consumer may lower the row limit, never raise it.
    max_rows: int | None = None
    #: The consumer may lower the time limit, never raise it.
    timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RequestContext:
    """One request as the gateway sees it, whatever the route: the ids every log line and
    audit record of the request share, and when it arrived."""

    #: The client's ``X-Request-Id`` (sanitised) or a fresh UUID; echoed in the response.
    request_id: str
    #: The id of the request's one audit record (UUIDv7, time-ordered).
    audit_id: str
    #: When the request arrived (the audit record's time).
    received: datetime
    #: ``time.perf_counter()`` at arrival, for durations.
    started: float
    client_ip: str | None = None
    #: ``METHOD /path?query`` as received, for records of requests without SQL.
    request_line: str = ""


class StepError(GatewayError):
    """A step ran before the step that provides what it needs: a bug in the pipeline's
    order. Fails the request closed (500)."""


@dataclass(frozen=True, slots=True)
class QueryState:
    """What the steps know so far. Each step fills its own fields."""

    request: QueryRequest
    context: RequestContext
    #: The ``Authorization`` header as received.
    authorization: str | None
    #: Set for a person querying through one of their department's systems (the
    #: console): authenticates them instead of the header, inside the pipeline so that a
    #: refusal is audited like any other.
    authenticator: Callable[[], Principal] | None = None
    #: The policy version the whole request is decided under (taken once, at the start).
    policy: ActivePolicy | None = None
    principal: Principal | None = None
    snapshot: DecisionSnapshot | None = None
    plan: Plan | None = None
    plan_cache_hit: bool = False
    #: The quotas the query draws on (charged a query; rows are charged when known).
    quotas: tuple[QuotaLimit, ...] = ()
    #: Rows as JSON values, at most the allowed number.
    rows: list[list[Any]] | None = None
    truncated: bool = False
    #: The result object's exact bytes (without the receipt) and what the record says of it.
    body: bytes | None = None
    response_sha256: str | None = None
    rows_root: str | None = None
    receipt: Receipt | None = None

    def evolve(self, **changes: Any) -> QueryState:
        return replace(self, **changes)

    def need_policy(self) -> ActivePolicy:
        if self.policy is None:
            raise StepError("internal: no policy", internal_detail="no policy version taken")
        return self.policy

    def need_principal(self) -> Principal:
        if self.principal is None:
            raise StepError("internal: no principal", internal_detail="authenticate did not run")
        return self.principal

    def need_snapshot(self) -> DecisionSnapshot:
        if self.snapshot is None:
            raise StepError("internal: no decision", internal_detail="decide did not run")
        return self.snapshot

    def need_plan(self) -> Plan:
        if self.plan is None:
            raise StepError("internal: no plan", internal_detail="plan did not run")
        return self.plan

    def need_rows(self) -> list[list[Any]]:
        if self.rows is None:
            raise StepError("internal: no rows", internal_detail="execute did not run")
        return self.rows

    def need_body(self) -> bytes:
        if self.body is None:
            raise StepError("internal: no body", internal_detail="respond did not run")
        return self.body


@dataclass(frozen=True, slots=True)
class QueryOutcome:
    """The answer to one query request. ``error`` is None when served.

    ``receipt`` proves the request's audit record is in the log; it is None only when the
    record could not be written (``error`` is then AuditUnavailableError and nothing
    else may leave).
    """

    audit_id: str | None
    receipt: Receipt | None
    body: bytes | None = None
    error: GatewayError | None = None
    plan_cache_hit: bool = False
    row_count: int = 0
    truncated: bool = False
    #: Who asked (None when authentication failed) and the ``dataset.table`` names the
    #: query read (empty before planning): for the request metrics, not the client.
    principal: Principal | None = None
    tables: tuple[str, ...] = ()
