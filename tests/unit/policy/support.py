"""Helpers shared by the policy and rewriter tests."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from gateway.auth.systems import SystemRegistry
from gateway.catalog import Catalog, SharingClass
from gateway.policy.grants import Grant

ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class StaticGrants:
    """A fixed set of grants (a GrantSource that never changes)."""

    grants: tuple[Grant, ...] = ()
    _by_department: dict[str, tuple[Grant, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        found: dict[str, list[Grant]] = defaultdict(list)
        for grant in self.grants:
            found[grant.department].append(grant)
        self._by_department.update({d: tuple(g) for d, g in found.items()})

    def epoch(self) -> int:
        return 0

    def grants_of(self, department: str) -> tuple[Grant, ...]:
        return self._by_department.get(department, ())


def full_grants(catalog: Catalog, registry: SystemRegistry) -> StaticGrants:
    """Every registered system holds a grant for every conditional dataset, for each of
    its purposes, of every column: the policy files alone then decide (what the policy
    tests check)."""
    grants = []
    for system in registry.all():
        for purpose in sorted(system.purposes):
            for dataset in catalog.datasets.values():
                if dataset.sharing_class is not SharingClass.CONDITIONAL:
                    continue
                grants.append(
                    Grant(
                        id=f"GR-{system.system_id}-{purpose}-{dataset.name}",
                        application_id="test",
                        department=system.department,
                        systems=frozenset({system.system_id}),
                        dataset=dataset.name,
                        columns={
                            t.qualified_name: frozenset(t.columns) for t in dataset.tables.values()
                        },
                        purpose=purpose,
                    )
                )
    return StaticGrants(tuple(grants))


def demo_full_grants(catalog: Catalog) -> StaticGrants:
    registry = SystemRegistry.load(
        ROOT / "policies" / "systems.toml",
        base_dir=ROOT,
        known_departments=catalog.departments.keys(),
        known_purposes=catalog.purposes.keys(),
    )
    return full_grants(catalog, registry)
