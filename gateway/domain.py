"""Value objects shared by every stage of the query path.

All of them are frozen: a stage receives values and returns new ones, so a cached value
(a decision snapshot, a rewritten plan) can be shared between requests without copying.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.i18n import Message
from gateway.policy.roles import Role

__all__ = [
    "ColumnAction",
    "ColumnDecision",
    "DecisionSnapshot",
    "MaskSpec",
    "Principal",
    "ResultColumn",
    "TableDecision",
]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller acting for its department: a consumer system (``system``
    set, ``officer`` the person on whose behalf it says it acts, if any), or a person on
    the administration plane (``system`` empty, ``officer`` the account's username). A
    person querying through one of their department's systems is that system with
    ``officer`` set to them.

    ``attributes`` are the registered attributes (e.g. ``district``) that row-filter
    templates may reference as ``{principal.<name>}``; ``department`` and ``system`` are
    available the same way.
    """

    system: str
    department: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    purposes: frozenset[str] = frozenset()
    #: ``jti`` of the access token, for the audit record.
    token_id: str = ""
    #: Human officer on whose behalf the system acts, if the system said so.
    officer: str | None = None
    #: Roles beyond consuming data (``auditor``, ``provider_officer``); none for a plain
    #: consumer system.
    roles: frozenset[Role] = frozenset()
    #: Datasets whose tables the caller may name without ``dataset.`` (its system's
    #: ``search_path``; empty: the catalog's).
    search_path: tuple[str, ...] = ()

    @property
    def is_person(self) -> bool:
        return not self.system

    def template_values(self) -> dict[str, str]:
        """Values a row-filter template may use, keyed by the name after ``principal.``."""
        values = dict(self.attributes)
        values["department"] = self.department
        values["system"] = self.system
        return values

    def cache_key(
        self,
    ) -> tuple[str, str, tuple[tuple[str, str], ...], tuple[str, ...]]:
        """Everything about the principal that can change a decision or a rewrite."""
        return (
            self.system,
            self.department,
            tuple(sorted(self.attributes.items())),
            self.search_path,
        )


@dataclass(frozen=True, slots=True)
class MaskSpec:
    """A masking kind with its optional argument, written ``kind`` or ``kind:arg``
    in policies and the catalog (e.g. ``bucket:10000``, ``constant:已脱敏``)."""

    kind: str
    arg: str | None = None

    @classmethod
    def parse(cls, text: str) -> MaskSpec:
        kind, sep, arg = text.strip().partition(":")
        return cls(kind=kind.strip(), arg=arg.strip() if sep else None)

    def __str__(self) -> str:
        return self.kind if self.arg is None else f"{self.kind}:{self.arg}"


class ColumnAction(enum.StrEnum):
    ALLOW = "allow"
    MASK = "mask"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class ColumnDecision:
    """What one principal may see of one catalog column, and which rule said so."""

    column: str
    action: ColumnAction
    mask: MaskSpec | None = None
    #: The policy line that decided (casbin ``enforce_ex`` explanation), for the audit log.
    rule: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TableDecision:
    """Compiled decision for one table: per-column decisions, bound row filters, limit."""

    dataset: str
    table: str
    columns: Mapping[str, ColumnDecision]
    #: Row-filter templates that apply (ANDed), as written in the policy.
    row_filters: tuple[str, ...] = ()
    #: Rows a response over this table may return: the smallest matching ``p3`` line,
    #: else the catalog's ``default_max_rows`` (None only for a refused table).
    max_rows: int | None = None
    #: Set when the whole table is refused (不予共享, unbindable row filter, no grant for a
    #: conditional dataset): any reference to it is an AccessDeniedError with this reason.
    refusal: str | Message | None = None
    #: Ids of the grants (approved applications) this decision relies on.
    grants: tuple[str, ...] = ()

    @property
    def qualified_name(self) -> str:
        return f"{self.dataset}.{self.table}"

    def visible_columns(self) -> list[str]:
        return [c for c, d in self.columns.items() if d.action is not ColumnAction.DENY]

    def is_accessible(self) -> bool:
        return self.refusal is None and bool(self.visible_columns())


@dataclass(frozen=True, slots=True)
class DecisionSnapshot:
    """All decisions for one (principal, purpose) under one policy version.

    Compiled once from casbin and cached: pycasbin's ``enforce`` is a linear scan and too
    slow to call per column per request.
    """

    policy_version: str
    principal_key: tuple[Any, ...]
    purpose: str
    tables: Mapping[str, TableDecision]
    #: The snapshot must be recompiled at this instant (earliest expiry of a matched rule).
    valid_until: datetime | None = None
    #: The grants' counter the snapshot was compiled at: plans and visible schemas are
    #: cached per snapshot, and a grant approved, revoked or expired must reach them too
    #: (a grant without an end date changes no ``valid_until``).
    grants_epoch: int = 0

    def table(self, qualified_name: str) -> TableDecision | None:
        return self.tables.get(qualified_name)


@dataclass(frozen=True, slots=True)
class ResultColumn:
    """One column of a query result as described to the consumer."""

    name: str
    type: str
    #: Masks that shaped this column's values (empty when it is served as stored).
    masks: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "masking": list(self.masks)}
