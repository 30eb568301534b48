"""Grants (授权): what an approved application lets one consumer department's systems
read of a conditional dataset (有条件共享), for which purpose, until when — and how
narrowly (fewer columns, stricter masks, an extra row filter, a lower row cap).

The policy engine consults grants for every table of a conditional dataset: without a
grant covering the caller, the purpose and the moment, the table is refused (with how to
apply); with one, the provider's policy applies *narrowed* by the grant. Grants live in
the administration store; the engine sees them through :class:`GrantSource`, whose
``epoch`` changes whenever a grant does, so cached decisions are dropped at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from gateway.domain import MaskSpec

__all__ = ["Grant", "GrantSource", "NoGrants"]


@dataclass(frozen=True, slots=True)
class Grant:
    id: str
    application_id: str
    #: The consumer department and the systems of it the grant covers.
    department: str
    systems: frozenset[str]
    dataset: str
    #: ``dataset.table`` -> the columns granted.
    columns: Mapping[str, frozenset[str]]
    purpose: str
    #: ``dataset.table.column`` -> a mask imposed by the approval.
    masks: Mapping[str, MaskSpec] = field(default_factory=dict)
    #: ``dataset.table`` -> a row-filter template ANDed to the policy's.
    row_filters: Mapping[str, str] = field(default_factory=dict)
    row_cap: int | None = None
    #: ``queries_per_day`` etc. (gateway/admin/quotas.py): enforced on every query served
    #: under the grant.
    quotas: Mapping[str, int] = field(default_factory=dict)
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def is_valid_at(self, now: datetime) -> bool:
        if self.valid_from is not None and now < self.valid_from:
            return False
        return self.valid_until is None or now < self.valid_until

    def covers(
        self, *, department: str, system: str, purpose: str, table: str, now: datetime
    ) -> bool:
        return (
            self.department == department
            and system in self.systems
            and self.purpose == purpose
            and table in self.columns
            and self.is_valid_at(now)
        )


class GrantSource(Protocol):
    """The grants the engine decides with."""

    def epoch(self) -> int:
        """A number that changes whenever a grant is created, revoked or changed; cheap
        enough to call on every request."""
        ...

    def grants_of(self, department: str) -> tuple[Grant, ...]:
        """The department's grants that are not revoked (validity in time is checked by
        the engine against the request's time)."""
        ...


@dataclass(frozen=True, slots=True)
class NoGrants:
    """No grants at all (a deployment without conditional datasets, unit tests)."""

    def epoch(self) -> int:
        return 0

    def grants_of(self, department: str) -> tuple[Grant, ...]:
        return ()
