"""Step 7, audit: commit the served query's record (durable, signed) through the audit
trail; the receipt it returns is attached to the body. Nothing leaves before this."""

from __future__ import annotations

from typing import ClassVar

from gateway.audit.trail import AuditTrail
from gateway.query.state import QueryState

__all__ = ["Audit"]


class Audit:
    """Raises AuditUnavailableError: no record, no data."""

    name: ClassVar[str] = "audit"
    #: The trail times the commit itself (it is shared with every other kind of record).
    span: ClassVar[bool] = False

    def __init__(self, trail: AuditTrail) -> None:
        self._trail = trail

    def __call__(self, state: QueryState) -> QueryState:
        return state.evolve(receipt=self._trail.served(state))
