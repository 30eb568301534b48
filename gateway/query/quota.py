"""Quotas on the query path (gateway/admin/quotas.py): two steps around the backend call.

``quota`` (before execute) finds the quotas the query draws on — its system's
(systems.toml) and those of every grant the decision relied on — refuses (429) when a
rows quota is used up, and charges one query to every queries quota (all or none). It
runs before the backend so that a system over its quota costs the backend nothing.

``charge_rows`` (after execute, before respond) charges the rows about to be delivered to
every rows quota, all or none: a query that would pass a rows quota is refused whole
(ask for fewer rows with ``max_rows``) rather than cut short, so a delivered answer is
always the complete answer to what was asked.

The meter is the administration store, shared by every replica; when it is unreachable
the query is refused (503): a quota that cannot be counted is not enforced by guessing.
"""

from __future__ import annotations

from typing import ClassVar

from gateway.admin.quotas import Metric, QuotaLimit, QuotaMeter, limits_of
from gateway.policy.grants import GrantSource
from gateway.query.state import QueryState

__all__ = ["ChargeRows", "CheckQuota", "quota_limits"]


def quota_limits(state: QueryState, grants: GrantSource) -> tuple[QuotaLimit, ...]:
    """The quotas this query draws on (the system's, then each grant's)."""
    principal = state.need_principal()
    limits: list[QuotaLimit] = []
    if principal.system is not None:
        system = state.need_policy().registry.get(principal.system)
        if system is not None:
            limits.extend(limits_of("system", system.system_id, system.quotas))
    used = set(state.need_plan().grants)
    if used:
        for grant in grants.grants_of(principal.department):
            if grant.id in used:
                limits.extend(limits_of("grant", grant.id, grant.quotas))
    return tuple(limits)


class CheckQuota:
    """Raises QuotaExceededError (429) or BackendUnavailableError (the meter is down)."""

    name: ClassVar[str] = "quota"
    span: ClassVar[bool] = True

    def __init__(self, meter: QuotaMeter, grants: GrantSource) -> None:
        self._meter = meter
        self._grants = grants

    def __call__(self, state: QueryState) -> QueryState:
        limits = quota_limits(state, self._grants)
        if not limits:
            return state
        now = state.context.received
        self._meter.check_left(limits, Metric.ROWS, now=now)
        self._meter.charge(limits, Metric.QUERIES, 1, now=now)
        return state.evolve(quotas=limits)


class ChargeRows:
    """Raises QuotaExceededError (429) or BackendUnavailableError."""

    name: ClassVar[str] = "charge_rows"
    span: ClassVar[bool] = True

    def __init__(self, meter: QuotaMeter) -> None:
        self._meter = meter

    def __call__(self, state: QueryState) -> QueryState:
        if state.quotas:
            rows = len(state.need_rows())
            self._meter.charge(state.quotas, Metric.ROWS, rows, now=state.context.received)
        return state
