"""``gateway check``: find what a policy directory gets wrong before it is deployed.

Loading already refuses malformed files, unknown objects and masks (fail closed at
start-up). This goes further and reports what loads but is probably not what the officer
meant — above all a column that no rule covers, which is silently denied to everyone.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from casbin.util import key_match

from gateway.auth.systems import SystemRegistry
from gateway.catalog import Catalog, Sensitivity, SharingClass
from gateway.domain import ColumnAction, Principal
from gateway.policy.engine import CasbinPolicyEngine
from gateway.policy.filters import parse_row_filter

__all__ = ["Finding", "check_policy"]


@dataclass(frozen=True, slots=True)
class Finding:
    severity: str  # "error" | "warning"
    subject: str
    message: str
    #: ``file:line`` (or the file) where the officer fixes it, when known.
    location: str = ""

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{self.severity.upper():7} {where}{self.subject}: {self.message}"


def check_policy(
    catalog: Catalog, engine: CasbinPolicyEngine, registry: SystemRegistry, now: datetime
) -> list[Finding]:
    findings: list[Finding] = []
    p_lines = engine.policy_lines("p")
    members = _members(engine.policy_lines("g"))
    for table in catalog.tables():
        not_shared = catalog.sharing_class_of(table) is SharingClass.NOT_SHARED
        which = (
            f"table {table.qualified_name}"
            if table.sharing_class is SharingClass.NOT_SHARED
            else f"dataset {table.dataset}"
        )
        for col in table.columns.values():
            obj = f"{table.qualified_name}.{col.name}"
            rules = [r for r in p_lines if key_match(obj, r[3])]
            if not_shared:
                # A wildcard over the whole dataset (``ds.*``) next to a 不予共享 table is
                # how officers share the rest of a dataset: only a rule that names this
                # table is a mistake worth an error.
                for r in rules:
                    if r[8] == "allow" and _names_table(r[3], table.qualified_name):
                        findings.append(
                            Finding(
                                "error",
                                obj,
                                (
                                    f"{which} is not shared (不予共享) but a "
                                    f"rule grants {r[6]} to {r[1]}; the gateway refuses it anyway"
                                ),
                            )
                        )
                continue
            if not rules:
                findings.append(
                    Finding(
                        "error",
                        obj,
                        (
                            "no policy rule covers this column: it is denied to every consumer. "
                            "Add an allow/mask/deny line for it (or dataset.table.*)."
                        ),
                    )
                )
    for row in engine.policy_lines("p2"):
        sub, dom, obj, _purpose, template, _expiry = row
        filtered = catalog.table(obj)
        if filtered is None:
            continue
        needed = parse_row_filter(template, filtered).attributes
        for system_id in members.get((sub, dom), {sub}):
            system = registry.get(system_id)
            if system is None:
                continue
            values = {**system.attributes, "department": system.department, "system": system_id}
            missing = sorted(needed - values.keys())
            if missing:
                findings.append(
                    Finding(
                        "warning",
                        obj,
                        (
                            f"row filter {template!r} needs attribute(s) {', '.join(missing)} that "
                            f"system {system_id} lacks: it will be refused this table"
                        ),
                    )
                )
    findings.extend(_unmasked_by_wildcard(catalog, engine, registry, now))
    mentioned = {r[5] for r in p_lines}
    for system in registry.all():
        for purpose in sorted(system.purposes):
            if purpose not in mentioned and "*" not in mentioned:
                findings.append(
                    Finding(
                        "warning",
                        f"system {system.system_id}",
                        (f"entitled to purpose {purpose!r} but no rule names it"),
                    )
                )
    return findings


def _unmasked_by_wildcard(
    catalog: Catalog, engine: CasbinPolicyEngine, registry: SystemRegistry, now: datetime
) -> list[Finding]:
    """Personal columns that some system actually receives in clear because a table
    wildcard (``dataset.table.*``) decided, not a rule naming the column."""
    findings: list[Finding] = []
    for system in registry.all():
        principal = Principal(
            system.system_id, system.department, system.attributes, system.purposes
        )
        for purpose in sorted(system.purposes):
            snapshot = engine.policy_snapshot(principal, purpose, now)
            for table in catalog.tables():
                decision = snapshot.tables[table.qualified_name]
                for col in table.columns.values():
                    d = decision.columns[col.name]
                    if (
                        col.sensitivity in (Sensitivity.PERSONAL, Sensitivity.SENSITIVE_PERSONAL)
                        and d.action is ColumnAction.ALLOW
                        and len(d.rule) > 3
                        and d.rule[3].endswith(".*")
                    ):
                        findings.append(
                            Finding(
                                "warning",
                                f"{table.qualified_name}.{col.name}",
                                (
                                    f"{col.sensitivity.value} column served unmasked to "
                                    f"{system.system_id} (purpose {purpose}) by the wildcard "
                                    f"rule {d.rule[3]}; "
                                    "name the column in a rule if that is intended"
                                ),
                            )
                        )
    return findings


def _names_table(obj: str, table: str) -> bool:
    """Whether a rule's object names ``table`` itself (``t.col`` or ``t.*``), not only a
    wider wildcard that happens to cover it."""
    return obj.startswith(table + ".")


def _members(g_lines: list[list[str]]) -> dict[tuple[str, str], set[str]]:
    """(role, department) -> systems that hold it, following role inheritance."""
    direct: dict[tuple[str, str], set[str]] = defaultdict(set)
    for user, role, dom, *_ in g_lines:
        direct[(role, dom)].add(user)
    resolved: dict[tuple[str, str], set[str]] = {}
    for key in direct:
        seen: set[str] = set()
        stack = list(direct[key])
        while stack:
            user = stack.pop()
            if user in seen:
                continue
            seen.add(user)
            stack.extend(direct.get((user, key[1]), ()))
        resolved[key] = {u for u in seen if (u, key[1]) not in direct}
    return resolved
