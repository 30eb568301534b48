"""The audit trail: the one way any request leaves its evidence in the log.

Every path of the gateway ends here exactly once: a served query, a refused or failed one
(whatever step refused it), a request the framework rejected before any handler ran
(unknown route, wrong method, body too large, malformed body), a token exchange, a
catalog read, a read of the audit log itself. :meth:`AuditTrail.begin` gives each
request its ids (request id, audit id) and arrival time once; the other methods build
the one :class:`~gateway.audit.record.AuditRecord` of the request from what is known and
commit it durably through the group committer (``AuditWriter``), returning the receipt.

If the record cannot be written they raise AuditUnavailableError, and then nothing but a
503 may leave (fail closed). Identifier-shaped literals in any stored text are replaced
by keyed tokens (gateway/audit/identifiers.py). The trail also counts each request once
in the request metrics, since every request passes here once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from gateway.audit.commit import AuditWriter
from gateway.audit.evidence import EvidenceKeys
from gateway.audit.receipt import Receipt
from gateway.audit.record import AuditRecord, Outcome, format_time, new_audit_id
from gateway.clock import Clock
from gateway.domain import Principal
from gateway.errors import AuditUnavailableError, ClientError, GatewayError
from gateway.query.state import QueryRequest, QueryState, RequestContext
from gateway.telemetry import Telemetry

if TYPE_CHECKING:
    from gateway.query.plan import Plan

__all__ = ["AccessKind", "AuditTrail"]

#: Longest request id kept from the client's ``X-Request-Id`` header.
_MAX_REQUEST_ID = 128


class AccessKind:
    """The purposes recorded for requests that read no shared dataset (they are not
    consumer purposes, so no consumer can declare one)."""

    AUDIT_LOG_READ = "audit_log_read"
    CATALOG_READ = "catalog_read"
    TOKEN_EXCHANGE = "token_exchange"  # noqa: S105 - a purpose code
    WITNESS_COSIGN = "witness_cosign"
    #: A person's session (login, logout) and administrative reads.
    SESSION = "session"
    ADMINISTRATION_READ = "administration_read"
    #: A query explained (planned under a policy version, never executed).
    EXPLAIN = "explain"
    #: A change on the administration plane (the record's ``event`` says what changed).
    ADMINISTRATION = "administration"


def clean_request_id(raw: str | None) -> str | None:
    """The client's request id if it is printable ASCII (at most 128 characters), else
    None: it goes into logs and records verbatim, so control characters are refused."""
    if not raw:
        return None
    text = raw.strip()[:_MAX_REQUEST_ID]
    if not text or not all(32 < ord(ch) < 127 for ch in text):
        return None
    return text


class AuditTrail:
    """Builds and commits the audit record of every request (see the module docstring)."""

    def __init__(
        self,
        writer: AuditWriter,
        evidence: EvidenceKeys,
        telemetry: Telemetry,
        *,
        clock: Clock,
        policy_version: Callable[[], str],
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._writer = writer
        self._redact = evidence.redactor().redact_optional
        self._telemetry = telemetry
        self._clock = clock
        self._policy_version = policy_version
        self._new_id = new_id

    def begin(
        self, *, request_id: str | None, client_ip: str | None, request_line: str = ""
    ) -> RequestContext:
        """The context of a new request: its ids and arrival time, fixed once."""
        now = self._clock()
        return RequestContext(
            request_id=clean_request_id(request_id) or self._new_id(),
            audit_id=new_audit_id(now),
            received=now,
            started=time.perf_counter(),
            client_ip=client_ip,
            request_line=request_line,
        )

    def served(self, state: QueryState) -> Receipt:
        """Commit the record of a served query (``state`` after the respond step)."""
        plan = state.need_plan()
        principal = state.need_principal()
        rows = state.need_rows()
        record = self._record(
            state.context,
            principal=principal,
            purpose=state.request.purpose,
            sql=state.request.sql,
            plan=plan,
            outcome=Outcome.SERVED,
            status=200,
            row_count=len(rows),
            truncated=state.truncated,
            response_sha256=state.response_sha256,
            rows_root=state.rows_root,
        )
        return self._commit(record, principal, Outcome.SERVED, 200, state.context)

    def refused(
        self,
        error: GatewayError,
        context: RequestContext,
        *,
        principal: Principal | None = None,
        request: QueryRequest | None = None,
        plan: Plan | None = None,
    ) -> Receipt:
        """Commit the record of a refused (4xx) or failed (5xx) request, with whatever
        was known when it stopped. Raises AuditUnavailableError."""
        outcome = Outcome.REFUSED if isinstance(error, ClientError) else Outcome.FAILED
        record = self._record(
            context,
            principal=principal,
            purpose=request.purpose if request else None,
            sql=request.sql if request else (context.request_line or None),
            plan=plan,
            outcome=outcome,
            status=error.status,
            error=error,
        )
        return self._commit(record, principal, outcome, error.status, context)

    def accessed(
        self, context: RequestContext, principal: Principal | None, *, kind: str
    ) -> Receipt:
        """Commit the record of a served request that read no shared dataset (catalog,
        audit log, token exchange: ``kind`` is an :class:`AccessKind`). The request line
        is stored like a consumer's SQL. Raises AuditUnavailableError; then the caller
        must return nothing."""
        return self._served_without_plan(context, principal, kind, None)

    def acted(
        self,
        context: RequestContext,
        principal: Principal | None,
        event: Mapping[str, Any],
        *,
        kind: str = AccessKind.ADMINISTRATION,
    ) -> Receipt:
        """Commit the record of an administrative action; ``event`` (a JSON object with a
        ``type``) says what changed and becomes the record's ``event`` member, so the
        change itself is evidence in the log.

        Call it inside the change's database transaction, after every check passed and
        just before the transaction commits: if the record cannot be written the change
        is rolled back (AuditUnavailableError, 503). At worst a record names a change
        whose commit then failed — the caller records that failure too — never a change
        without its record (docs/design.md "Administrative changes")."""
        return self._served_without_plan(context, principal, kind, event)

    def _served_without_plan(
        self,
        context: RequestContext,
        principal: Principal | None,
        kind: str,
        event: Mapping[str, Any] | None,
    ) -> Receipt:
        # What accessed and acted record alike: the request line stands for the SQL.
        record = self._record(
            context,
            principal=principal,
            purpose=kind,
            sql=context.request_line or None,
            plan=None,
            outcome=Outcome.SERVED,
            status=200,
            event=event,
        )
        return self._commit(record, principal, Outcome.SERVED, 200, context)

    # -- helpers -----------------------------------------------------------------------

    def _commit(
        self,
        record: AuditRecord,
        principal: Principal | None,
        outcome: Outcome,
        status: int,
        context: RequestContext,
    ) -> Receipt:
        department = principal.department if principal else None
        try:
            with self._telemetry.stage("audit"):
                receipt = self._writer.append(record)
        except AuditUnavailableError as exc:
            self._telemetry.record_request(
                department, Outcome.FAILED.value, exc.status, _elapsed(context)
            )
            raise
        self._telemetry.record_request(department, outcome.value, status, _elapsed(context))
        return receipt

    def _record(
        self,
        context: RequestContext,
        *,
        principal: Principal | None,
        purpose: str | None,
        sql: str | None,
        plan: Plan | None,
        outcome: Outcome,
        status: int,
        row_count: int | None = None,
        truncated: bool = False,
        response_sha256: str | None = None,
        rows_root: str | None = None,
        error: GatewayError | None = None,
        event: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        redact = self._redact
        return AuditRecord(
            audit_id=context.audit_id,
            time=format_time(context.received),
            request_id=context.request_id,
            trace_id=self._telemetry.current_trace_id(),
            department=principal.department if principal else None,
            system=(principal.system or None) if principal else None,
            officer=principal.officer if principal else None,
            purpose=purpose,
            client_ip=context.client_ip,
            sql=redact(sql),
            rewritten_sql=redact(plan.audit_sql) if plan else None,
            backend=plan.backend if plan else None,
            policy_version=plan.policy_version if plan else self._policy_version(),
            tables=plan.tables if plan else (),
            decisions=plan.decisions if plan else {},
            rules=plan.rules if plan else {},
            row_filters=plan.row_filters if plan else (),
            max_rows=plan.cap.allowed if plan else None,
            row_count=row_count,
            truncated=truncated,
            response_sha256=response_sha256,
            rows_root=rows_root,
            grants=plan.grants if plan else (),
            outcome=outcome,
            status=status,
            error_code=error.code if error else None,
            # Error texts may quote the SQL (a parse error near a literal).
            reason=redact(error.detail) if error else None,
            internal_reason=redact(error.internal_detail) if error else None,
            duration_us=int(_elapsed(context) * 1_000_000),
            event=event,
        )


def _elapsed(context: RequestContext) -> float:
    return time.perf_counter() - context.started
