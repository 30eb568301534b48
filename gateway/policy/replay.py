"""Replay: "what would change if version V were active?"

The consumer queries recorded in the audit log are explained again (gateway/query/explain.py:
nothing executes) under the active version and under a proposed one, and compared: served ↔
refused, columns gained or lost, masks changed, row filters and limits changed. The stored
SQL has personal identifiers replaced by tokens (gateway/audit/identifiers.py); decisions
never depend on a literal's value, so the tokens change nothing in a replay.

Only queries that touch datasets the officer may see the rules of are replayed (an officer:
their department's datasets; a coordinator: all).

Optionally (:class:`RowCounter`) each plan is also executed, read-only, to count the rows the
consumer would receive under each version, within a total time budget and a per-query row
budget; only counts are reported, never rows. The recorded SQL has identifiers tokenised,
so a query that compares against an ID number counts what the tokenised text matches:
compare the two versions' counts with each other, not with what was once delivered.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.audit.record import AuditRecord
from gateway.audit.trail import AccessKind
from gateway.backends.base import Backend
from gateway.domain import Principal
from gateway.errors import GatewayError
from gateway.policy.runtime import ActivePolicy
from gateway.query.explain import Explainer, Explanation
from gateway.query.state import QueryRequest, RequestContext

__all__ = ["Replay", "ReplayedQuery", "RowCounter", "replay_csv", "system_principal"]

#: Purposes recorded for requests that are not consumer queries.
_NOT_QUERIES = frozenset(v for k, v in vars(AccessKind).items() if k.isupper())


def system_principal(policy: ActivePolicy, system_id: str) -> Principal | None:
    """The principal a registered system would be under ``policy`` (None if it is not
    registered there, or not active)."""
    system = policy.registry.get(system_id)
    if system is None or not system.is_active:
        return None
    return system.principal()


def _summary(explanation: Explanation | None) -> dict[str, Any]:
    if explanation is None:
        return {"verdict": "refused", "reason": "the system is not registered in this version"}
    plan = explanation.plan
    if plan is None:
        return {
            "verdict": "refused",
            "reason": explanation.error.detail if explanation.error else "",
        }
    return {
        "verdict": "served",
        # What the consumer receives: result columns and the masks that shaped each
        # (table-wide decisions on columns the query does not read change nothing for it).
        "columns": {c.name: "+".join(c.masks) or "as stored" for c in plan.columns},
        "row_filters": sorted(plan.row_filters),
        "row_limit": plan.cap.allowed,
    }


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    if before["verdict"] != after["verdict"]:
        return [f"{before['verdict']} → {after['verdict']}"]
    if before["verdict"] == "refused":
        return []
    changes: list[str] = []
    old, new = before["columns"], after["columns"]
    gained = sorted(c for c in new if c not in old)
    lost = sorted(c for c in old if c not in new)
    if gained:
        changes.append("columns gained: " + ", ".join(gained))
    if lost:
        changes.append("columns lost: " + ", ".join(lost))
    masks = sorted(f"{c}: {old[c]} → {new[c]}" for c in old.keys() & new.keys() if old[c] != new[c])
    if masks:
        changes.append("masks changed: " + "; ".join(masks))
    if before["row_filters"] != after["row_filters"]:
        changes.append(
            "row filters: "
            + (" AND ".join(before["row_filters"]) or "none")
            + " → "
            + (" AND ".join(after["row_filters"]) or "none")
        )
    if before["row_limit"] != after["row_limit"]:
        changes.append(f"row limit: {before['row_limit']} → {after['row_limit']}")
    if "rows" in before and "rows" in after and before["rows"] != after["rows"]:
        changes.append(f"rows: {_rows_text(before['rows'])} → {_rows_text(after['rows'])}")
    return changes


def _rows_text(rows: object) -> str:
    return "not counted" if rows is None else str(rows)


@dataclass
class RowCounter:
    """Counts, by executing a plan read-only, the rows it would deliver: at most
    ``max_rows`` per query (more shows as ``"> max_rows"``), and only while the total
    ``time_budget_s`` lasts (then ``None``: not counted)."""

    backends: Mapping[str, Backend]
    time_budget_s: float
    max_rows: int
    clock: Callable[[], float] = time.monotonic
    _deadline: float | None = field(default=None, init=False)

    def count(self, explanation: Explanation | None) -> int | str | None:
        plan = explanation.plan if explanation is not None else None
        if plan is None:
            return None
        now = self.clock()
        if self._deadline is None:
            self._deadline = now + self.time_budget_s
        left = self._deadline - now
        if left <= 0:
            return None
        want = min(self.max_rows, plan.cap.allowed)
        try:
            result = self.backends[plan.backend].execute(
                plan.sql, max_rows=want + 1, timeout_s=left
            )
        except GatewayError as exc:
            return f"error: {exc.code}"
        if len(result.rows) <= want:
            return len(result.rows)
        # More rows matched: the consumer gets the limit (truncated), unless the budget
        # stopped the count below it.
        return want if want == plan.cap.allowed else f"> {want}"


@dataclass(frozen=True, slots=True)
class ReplayedQuery:
    audit_id: str
    time: str
    system: str
    purpose: str
    before: dict[str, Any]
    after: dict[str, Any]
    changes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "audit_id": self.audit_id,
            "time": self.time,
            "system": self.system,
            "purpose": self.purpose,
            "before": self.before,
            "after": self.after,
            "changes": list(self.changes),
        }


class Replay:
    """Explains recorded queries under two versions and compares them."""

    def __init__(
        self,
        explainer: Explainer,
        context: RequestContext,
        counter: RowCounter | None = None,
    ) -> None:
        self._explainer = explainer
        self._context = context
        self._counter = counter

    def is_query(self, record: AuditRecord) -> bool:
        return bool(
            record.sql and record.system and record.purpose and record.purpose not in _NOT_QUERIES
        )

    def _explain(self, record: AuditRecord, policy: ActivePolicy) -> Explanation | None:
        principal = system_principal(policy, record.system or "")
        if principal is None:
            return None
        request = QueryRequest(sql=record.sql or "", purpose=record.purpose or "")
        return self._explainer.explain(request, principal, policy, self._context)

    def run(
        self,
        records: Iterable[AuditRecord],
        before: ActivePolicy,
        after: ActivePolicy,
        *,
        touches: Callable[[Explanation | None, Explanation | None], bool],
    ) -> Iterator[ReplayedQuery]:
        """One result per replayed query that ``touches`` (given both explanations)
        accepts, in the order of ``records``."""
        for record in records:
            if not self.is_query(record):
                continue
            old = self._explain(record, before)
            new = self._explain(record, after)
            if not touches(old, new):
                continue
            b, a = _summary(old), _summary(new)
            if self._counter is not None:
                b["rows"], a["rows"] = self._counter.count(old), self._counter.count(new)
            yield ReplayedQuery(
                audit_id=record.audit_id,
                time=record.time,
                system=record.system or "",
                purpose=record.purpose or "",
                before=b,
                after=a,
                changes=tuple(_changes(b, a)),
            )


def replay_csv(results: Iterable[ReplayedQuery]) -> str:
    """One line per replayed query: what it was and what changes."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "audit_id",
            "time",
            "system",
            "purpose",
            "before",
            "after",
            "rows_before",
            "rows_after",
            "changed",
            "changes",
        ]
    )
    for r in results:
        writer.writerow(
            [
                r.audit_id,
                r.time,
                r.system,
                r.purpose,
                r.before["verdict"],
                r.after["verdict"],
                r.before.get("rows", ""),
                r.after.get("rows", ""),
                "yes" if r.changes else "no",
                " | ".join(r.changes),
            ]
        )
    return out.getvalue()
