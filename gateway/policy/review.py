"""Reviewing a proposed policy version before it can be activated: does it load, does it
leave a catalogued column without a rule, does it loosen a 不予共享 dataset, does it serve
a personal column unmasked that was masked or denied before (only with an explicit
acknowledgement), and whose is it to decide (officers: their own department's datasets;
administrators: configuration — systems, model, departments, purposes)?

Every refusal says precisely what is wrong and where, so the officer can fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from gateway.backends import BackendConfig
from gateway.catalog import Catalog, Sensitivity, SharingClass
from gateway.clock import Clock
from gateway.domain import ColumnAction, Principal
from gateway.errors import AccessDeniedError, ConfigurationError, InvalidRequestError
from gateway.policy.bundle import PolicyBundle, bundle_from_source
from gateway.policy.check import check_policy
from gateway.policy.roles import Role
from gateway.policy.versions import PolicySource, Review, structured_diff

__all__ = ["PolicyReviewer", "newly_unmasked"]

_PERSONAL = (Sensitivity.PERSONAL, Sensitivity.SENSITIVE_PERSONAL)


def newly_unmasked(old: PolicyBundle, new: PolicyBundle, now: datetime) -> set[str]:
    """Personal columns some system would receive in clear under ``new`` but not under
    ``old`` (for its purposes, by the policy alone)."""
    found: set[str] = set()
    for system in new.registry.all():
        principal = Principal(
            system.system_id, system.department, system.attributes, system.purposes
        )
        for purpose in sorted(system.purposes):
            after = new.engine.policy_snapshot(principal, purpose, now)
            before = old.engine.policy_snapshot(principal, purpose, now)
            for table in new.catalog.tables():
                for column in table.columns.values():
                    if column.sensitivity not in _PERSONAL:
                        continue
                    name = table.qualified_name
                    now_d = after.tables[name].columns[column.name]
                    if now_d.action is not ColumnAction.ALLOW:
                        continue
                    old_table = before.tables.get(name)
                    was = old_table.columns.get(column.name) if old_table else None
                    if was is None or was.action is not ColumnAction.ALLOW:
                        found.add(f"{name}.{column.name}")
    return found


def _not_shared(catalog: Catalog) -> set[str]:
    """Datasets and tables (``dataset.table``) marked 不予共享."""
    datasets = {
        n for n, d in catalog.datasets.items() if d.sharing_class is SharingClass.NOT_SHARED
    }
    tables = {
        t.qualified_name for t in catalog.tables() if t.sharing_class is SharingClass.NOT_SHARED
    }
    return datasets | tables


def _still_not_shared(catalog: Catalog, name: str) -> bool:
    """Whether ``name`` (a dataset, or ``dataset.table``) is still 不予共享 in ``catalog``
    (a removed one is not loosened: it is gone)."""
    if "." in name:
        table = catalog.table(name)
        return table is None or catalog.sharing_class_of(table) is SharingClass.NOT_SHARED
    dataset = catalog.datasets.get(name)
    return dataset is None or dataset.sharing_class is SharingClass.NOT_SHARED


class PolicyReviewer:
    """The store's reviewer (gateway.admin.policies.Reviewer)."""

    def __init__(self, backends: Mapping[str, BackendConfig], *, clock: Clock) -> None:
        self._backends = backends
        self._clock = clock

    def load(self, source: PolicySource) -> PolicyBundle:
        """The version loaded, or InvalidRequestError saying why it does not load."""
        try:
            return bundle_from_source(source, backends=self._backends)
        except ConfigurationError as exc:
            raise InvalidRequestError(
                f"The proposed policy does not load: {exc.detail}",
                extra={"problems": [exc.detail]},
            ) from None

    def __call__(
        self,
        old: PolicySource,
        new: PolicySource,
        actor: Principal,
        acknowledged: frozenset[str],
    ) -> Review:
        now = self._clock()
        new_bundle = self.load(new)
        old_bundle = bundle_from_source(old, backends=self._backends)
        problems = [
            str(f)
            for f in check_policy(new_bundle.catalog, new_bundle.engine, new_bundle.registry, now)
            if f.severity == "error"
        ]
        for name in sorted(_not_shared(old_bundle.catalog)):
            if not _still_not_shared(new_bundle.catalog, name):
                what = "table" if "." in name else "dataset"
                problems.append(
                    f"ERROR   {name}: {what} {name} is not shared (不予共享); a change may not "
                    "loosen that (the owning department and the data bureau decide it outside "
                    "the gateway)"
                )
        unmasked = newly_unmasked(old_bundle, new_bundle, now) - acknowledged
        if unmasked:
            problems.append(
                "ERROR   personal columns served unmasked that were not before: "
                + ", ".join(sorted(unmasked))
                + " — acknowledge each in 'acknowledged_unmasked' if this is intended"
            )
        if problems:
            raise InvalidRequestError(
                f"The proposed policy has {len(problems)} problem(s): " + "; ".join(problems),
                extra={"problems": problems},
            )
        return self._scope(old_bundle, new_bundle, old, new, actor)

    @staticmethod
    def _scope(
        old_bundle: PolicyBundle,
        new_bundle: PolicyBundle,
        old: PolicySource,
        new: PolicySource,
        actor: Principal,
    ) -> Review:
        owners = {n: d.owner for n, d in old_bundle.catalog.datasets.items()}
        owners |= {n: d.owner for n, d in new_bundle.catalog.datasets.items()}
        departments: set[str] = set()
        configuration = False
        for change in structured_diff(old, new):
            if not change.datasets:
                configuration = True
                continue
            for dataset in change.datasets:
                owner = owners.get(dataset)
                if owner is None:
                    configuration = True
                else:
                    departments.add(owner)
        if Role.ADMINISTRATOR in actor.roles:
            if departments:
                raise AccessDeniedError(
                    "Administrators change configuration (systems, model, departments, "
                    "purposes), not the rules of datasets: "
                    + ", ".join(sorted(departments))
                    + " decide(s) those."
                )
            return Review(frozenset(), True)
        if Role.PROVIDER_OFFICER not in actor.roles:
            raise AccessDeniedError("Only provider officers and administrators change policies.")
        foreign = sorted(departments - {actor.department})
        if configuration or foreign:
            raise AccessDeniedError(
                "You may change only the rules and catalog entries of your department's "
                "datasets"
                + (f"; this touches {', '.join(foreign)}'s" if foreign else "")
                + ("; it also changes configuration (an administrator's)" if configuration else "")
                + "."
            )
        return Review(frozenset(departments), False)
