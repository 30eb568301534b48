"""The consumer query path, end to end (after authentication):

    purpose check → decide → plan (parse, validate, resolve, rewrite) → execute
    → respond (serialise) → audit (durable, signed) → attach the receipt → hand back

Nothing leaves without its audit record: the result is serialised first, its SHA-256 and
the root over its salted row hashes go into the record, the record is committed durably
and covered by a signed checkpoint (group commit), and only then is the receipt attached
and the body returned. A refusal or failure is audited too, and its ``audit_id`` and
receipt travel with the error. Identifier-shaped literals in the SQL are stored as keyed
HMAC tokens (gateway/audit/evidence.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from gateway.audit.commit import AuditWriter
from gateway.audit.evidence import EvidenceKeys
from gateway.audit.receipt import Receipt, attach_receipt
from gateway.audit.record import AuditRecord, Outcome, format_time, new_audit_id
from gateway.audit.rows import row_salt, rows_root
from gateway.backends.base import Backend
from gateway.catalog import Catalog
from gateway.domain import Principal
from gateway.errors import (
    AuditUnavailableError,
    ClientError,
    GatewayError,
    InvalidRequestError,
    PurposeNotAllowedError,
)
from gateway.policy.engine import PolicyEngine
from gateway.query.plan import Plan, Planner
from gateway.query.respond import encode_result, json_rows, sha256_hex
from gateway.telemetry import Telemetry

__all__ = ["AUDIT_READ_PURPOSE", "QueryContext", "QueryRequest", "QueryResult", "QueryService"]

#: The purpose recorded for reads of the audit log through the auditors' API.
AUDIT_READ_PURPOSE = "audit_log_read"


@dataclass(frozen=True, slots=True)
class QueryRequest:
    sql: str
    purpose: str
    #: The consumer may lower the row limit, never raise it.
    max_rows: int | None = None
    #: The consumer may lower the time limit, never raise it.
    timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class QueryContext:
    request_id: str
    client_ip: str | None = None


@dataclass(frozen=True, slots=True)
class QueryResult:
    #: The result bytes with the receipt attached (see gateway/audit/receipt.py).
    body: bytes
    audit_id: str
    audit_index: int
    receipt: Receipt
    row_count: int
    truncated: bool
    plan_cache_hit: bool


class QueryService:
    def __init__(
        self,
        *,
        catalog: Catalog,
        engine: PolicyEngine,
        planner: Planner,
        backends: Mapping[str, Backend],
        audit: AuditWriter,
        evidence: EvidenceKeys,
        telemetry: Telemetry,
        clock: Callable[[], datetime],
        statement_timeout_s: float,
    ) -> None:
        self._catalog = catalog
        self._engine = engine
        self._planner = planner
        self._backends = backends
        self._audit = audit
        self._row_key = evidence.row_key
        self._redactor = evidence.redactor()
        self._telemetry = telemetry
        self._clock = clock
        self._timeout_s = statement_timeout_s

    def run(self, principal: Principal, request: QueryRequest, ctx: QueryContext) -> QueryResult:
        """Serve one query. Raises a GatewayError whose ``audit_id`` attribute names the
        audit record of the refusal (or AuditUnavailableError if even that failed)."""
        started = time.perf_counter()
        now = self._clock()
        audit_id = new_audit_id(now)
        plan: Plan | None = None
        try:
            self._check_purpose(principal, request.purpose)
            with self._telemetry.stage("decide"):
                snapshot = self._engine.snapshot(principal, request.purpose, now)
            plan, hit = self._planner.plan(
                request.sql,
                principal,
                snapshot,
                requested_max_rows=request.max_rows,
                stage=self._telemetry.stage,
            )
            backend = self._backends[plan.backend]
            timeout = self._timeout_s
            if request.timeout_ms is not None:
                timeout = min(timeout, request.timeout_ms / 1000)
            with self._telemetry.db_call(
                system=_DB_SYSTEM.get(backend.kind, backend.kind),
                query_text=plan.audit_sql,
                namespace=plan.backend,
            ):
                result = backend.execute(plan.sql, max_rows=plan.cap.fetch, timeout_s=timeout)
            truncated = plan.cap.is_truncated(len(result.rows))
            rows = json_rows(result.rows[: plan.cap.allowed])
            with self._telemetry.stage("respond"):
                salt = row_salt(self._row_key, audit_id)
                body = encode_result(
                    audit_id=audit_id,
                    columns=plan.columns,
                    rows=rows,
                    truncated=truncated,
                    purpose=request.purpose,
                    policy_version=plan.policy_version,
                    row_salt=salt,
                )
                committed_rows = rows_root(salt, rows).hex()
            record = self._record(
                audit_id,
                now,
                principal,
                request,
                ctx,
                plan,
                outcome=Outcome.SERVED,
                status=200,
                row_count=len(rows),
                truncated=truncated,
                response_sha256=sha256_hex(body),
                rows_root=committed_rows,
                started=started,
            )
            with self._telemetry.stage("audit"):
                receipt = self._audit.append(record)
            body = attach_receipt(body, receipt)
        except GatewayError as exc:
            self._audit_error(exc, audit_id, now, principal, request, ctx, plan, started)
            raise
        except Exception as exc:  # an unexpected bug: audit it as failed, serve nothing
            wrapped = GatewayError(
                "The gateway failed to answer; no data was served.",
                internal_detail=f"{type(exc).__name__}: {exc}",
            )
            self._audit_error(wrapped, audit_id, now, principal, request, ctx, plan, started)
            raise wrapped from exc
        self._telemetry.record_request(
            principal.department, Outcome.SERVED.value, 200, time.perf_counter() - started
        )
        return QueryResult(
            body=body,
            audit_id=audit_id,
            audit_index=receipt.index,
            receipt=receipt,
            row_count=len(rows),
            truncated=truncated,
            plan_cache_hit=hit,
        )

    def audit_rejection(
        self,
        exc: GatewayError,
        *,
        principal: Principal | None,
        request: QueryRequest | None,
        ctx: QueryContext,
    ) -> None:
        """Audit a request refused before it reached ``run`` (bad token, malformed body),
        setting ``exc.audit_id``. Raises AuditUnavailableError if the record can't be
        written."""
        now = self._clock()
        self._audit_error(
            exc, new_audit_id(now), now, principal, request, ctx, None, time.perf_counter()
        )

    def audit_read(self, principal: Principal, ctx: QueryContext, what: str) -> str:
        """Audit a read of the audit log itself (who looked at which records: the
        auditors are accountable too) and return its audit id. ``what`` is the request
        line, stored like a consumer's SQL (identifiers tokenised). Raises
        AuditUnavailableError, and then nothing may be returned."""
        started = time.perf_counter()
        now = self._clock()
        audit_id = new_audit_id(now)
        request = QueryRequest(sql=what, purpose=AUDIT_READ_PURPOSE)
        record = self._record(
            audit_id,
            now,
            principal,
            request,
            ctx,
            None,
            outcome=Outcome.SERVED,
            status=200,
            row_count=None,
            truncated=False,
            response_sha256=None,
            rows_root=None,
            started=started,
        )
        self._audit.append(record)
        return audit_id

    # -- helpers -----------------------------------------------------------------------

    def _check_purpose(self, principal: Principal, purpose: str) -> None:
        if not purpose:
            raise InvalidRequestError(
                "'purpose' is required: say why the data is needed, one of "
                + ", ".join(sorted(principal.purposes))
            )
        if purpose not in principal.purposes or purpose not in self._catalog.purposes:
            raise PurposeNotAllowedError(
                f"Purpose {purpose!r} is not one your system is entitled to. Entitled: "
                + (", ".join(sorted(principal.purposes)) or "none"),
                extra={"allowed_purposes": sorted(principal.purposes)},
            )

    def _audit_error(
        self,
        exc: GatewayError,
        audit_id: str,
        now: datetime,
        principal: Principal | None,
        request: QueryRequest | None,
        ctx: QueryContext,
        plan: Plan | None,
        started: float,
    ) -> None:
        outcome = Outcome.REFUSED if isinstance(exc, ClientError) else Outcome.FAILED
        record = self._record(
            audit_id,
            now,
            principal,
            request,
            ctx,
            plan,
            outcome=outcome,
            status=exc.status,
            row_count=None,
            truncated=False,
            response_sha256=None,
            rows_root=None,
            started=started,
            error=exc,
        )
        department = principal.department if principal else None
        try:
            receipt = self._audit.append(record)
        except AuditUnavailableError as audit_exc:
            # No record, no answer: whatever the refusal was, the client gets 503.
            self._telemetry.record_request(
                department, Outcome.FAILED.value, audit_exc.status, time.perf_counter() - started
            )
            raise audit_exc from exc
        exc.audit_id = audit_id
        exc.receipt = receipt.to_json()
        self._telemetry.record_request(
            department, outcome.value, exc.status, time.perf_counter() - started
        )

    def _record(
        self,
        audit_id: str,
        now: datetime,
        principal: Principal | None,
        request: QueryRequest | None,
        ctx: QueryContext,
        plan: Plan | None,
        *,
        outcome: Outcome,
        status: int,
        row_count: int | None,
        truncated: bool,
        response_sha256: str | None,
        rows_root: str | None,
        started: float,
        error: GatewayError | None = None,
    ) -> AuditRecord:
        redact = self._redactor.redact_optional
        return AuditRecord(
            audit_id=audit_id,
            time=format_time(now),
            request_id=ctx.request_id,
            trace_id=self._telemetry.current_trace_id(),
            department=principal.department if principal else None,
            system=principal.system if principal else None,
            officer=principal.officer if principal else None,
            purpose=request.purpose if request else None,
            client_ip=ctx.client_ip,
            sql=redact(request.sql) if request else None,
            rewritten_sql=redact(plan.audit_sql) if plan else None,
            backend=plan.backend if plan else None,
            policy_version=plan.policy_version if plan else self._engine.version,
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
            duration_us=int((time.perf_counter() - started) * 1_000_000),
        )


_DB_SYSTEM = {"postgres": "postgresql", "mysql": "mysql", "sqlite": "sqlite", "duckdb": "duckdb"}
