"""Explain: what a query would do, without running it.

The same steps as ``POST /v1/query`` up to the plan — check the request (purpose
entitlement), decide, plan (parse, validate, resolve, rewrite) — and nothing after: no
backend is called, no row is read. Because the steps are the query path's own, an
explanation cannot disagree with what the query then does (tests check it over the attack
corpus and the legitimate queries).

An explanation names, per column of every table the query reads, the decision and the
policy line that made it, the row filters bound to the requester, the row limit and where
it comes from, the grants relied upon, and the protected SQL as the backend would receive
it (pseudonym key material redacted). A refused query explains the refusal, and also
every other reason a table it names would be refused for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from gateway.domain import DecisionSnapshot, Principal
from gateway.errors import GatewayError
from gateway.policy.runtime import ActivePolicy
from gateway.query.check_request import CheckRequest
from gateway.query.decide import Decide
from gateway.query.parse import parse_sql
from gateway.query.plan import Plan, PlanQuery, StageFactory
from gateway.query.state import QueryRequest, QueryState, RequestContext

__all__ = ["Explainer", "Explanation"]


@dataclass(frozen=True, slots=True)
class Explanation:
    """The verdict and everything that made it; :meth:`to_json` is the API's body."""

    policy_version: str
    system: str
    purpose: str
    plan: Plan | None
    snapshot: DecisionSnapshot | None
    error: GatewayError | None
    #: ``dataset.table`` names the SQL mentions (also when it was refused).
    mentioned: tuple[str, ...]

    @property
    def served(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "verdict": "served" if self.served else "refused",
            "policy_version": self.policy_version,
            "system": self.system,
            "purpose": self.purpose,
            "executed": False,
        }
        if self.plan is not None:
            plan = self.plan
            out |= {
                "backend": plan.backend,
                "rewritten_sql": plan.audit_sql,
                "columns": [c.to_json() for c in plan.columns],
                "row_limit": plan.cap.allowed,
                "row_filters": list(plan.row_filters),
                "grants": list(plan.grants),
            }
        out["tables"] = self._tables()
        if self.error is not None:
            out["refusal"] = {
                "status": self.error.status,
                "code": self.error.code,
                "detail": self.error.detail,
                **({"extra": dict(self.error.extra)} if self.error.extra else {}),
            }
        out["refusal_reasons"] = self._reasons()
        return out

    def _tables(self) -> dict[str, Any]:
        if self.snapshot is None:
            return {}
        names = self.plan.tables if self.plan is not None else self.mentioned
        tables: dict[str, Any] = {}
        for name in names:
            decision = self.snapshot.table(name)
            if decision is None:
                tables[name] = {"visible": False}
                continue
            tables[name] = {
                "visible": decision.is_accessible(),
                "refusal": decision.refusal,
                "row_filters": list(decision.row_filters),
                "max_rows": decision.max_rows,
                "grants": list(decision.grants),
                "columns": {
                    column: {
                        "decision": d.action.value,
                        **({"mask": str(d.mask)} if d.mask is not None else {}),
                        "rule": ", ".join(d.rule) if d.rule else None,
                    }
                    for column, d in decision.columns.items()
                },
            }
        return tables

    def _reasons(self) -> list[str]:
        reasons = [self.error.detail] if self.error is not None else []
        if self.snapshot is not None:
            for name in self.mentioned:
                decision = self.snapshot.table(name)
                if decision is not None and decision.refusal and decision.refusal not in reasons:
                    reasons.append(f"{name}: {decision.refusal}")
        return reasons


def _mentioned(sql: str) -> tuple[str, ...]:
    """``dataset.table`` names in the SQL, best effort (explanations of refusals only)."""
    try:
        query = parse_sql(sql)
        names = {f"{t.db}.{t.name}" for t in query.find_all(exp.Table) if t.db and t.name}
    except (GatewayError, RecursionError):  # the plan step has refused it already
        return ()
    return tuple(sorted(names))


class Explainer:
    """Runs the planning steps of the query path for one principal under one version."""

    def __init__(self, *, max_sql_chars: int, stage: StageFactory) -> None:
        self._steps: tuple[Callable[[QueryState], QueryState], ...] = (
            CheckRequest(max_sql_chars=max_sql_chars),
            Decide(),
            PlanQuery(stage),
        )

    def explain(
        self,
        request: QueryRequest,
        principal: Principal,
        policy: ActivePolicy,
        context: RequestContext,
    ) -> Explanation:
        state = QueryState(
            request=request, context=context, authorization=None, policy=policy
        ).evolve(principal=principal)
        error: GatewayError | None = None
        try:
            for step in self._steps:
                state = step(state)
        except GatewayError as exc:
            error = exc
        return Explanation(
            policy_version=policy.version,
            system=principal.system or "",
            purpose=request.purpose,
            plan=state.plan if error is None else None,
            snapshot=state.snapshot,
            error=error,
            mentioned=_mentioned(request.sql),
        )
