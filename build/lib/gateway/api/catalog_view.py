"""The catalog as consumers see it (不懂共享 → a catalog of what exists).

Every dataset is listed — including those not shared — so a consumer knows what exists
and whom to ask; for each column it shows what *this* system would get for each of its
purposes: allow, the mask, or deny. No values are ever included.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.catalog import Catalog
from gateway.domain import ColumnAction, DecisionSnapshot, Principal

__all__ = ["catalog_document"]


def catalog_document(
    catalog: Catalog, principal: Principal, snapshots: Mapping[str, DecisionSnapshot]
) -> dict[str, Any]:
    datasets = []
    for ds in catalog.datasets.values():
        owner = catalog.departments[ds.owner]
        tables = []
        for table in ds.tables.values():
            columns = []
            for col in table.columns.values():
                access: dict[str, str] = {}
                for purpose, snap in snapshots.items():
                    decision = snap.table(table.qualified_name)
                    d = decision.columns.get(col.name) if decision else None
                    if d is None or d.action is ColumnAction.DENY:
                        access[purpose] = "deny"
                    elif d.action is ColumnAction.MASK:
                        access[purpose] = f"mask:{d.mask}"
                    else:
                        access[purpose] = "allow"
                columns.append(
                    {
                        "name": col.name,
                        "type": col.type,
                        "sensitivity": col.sensitivity.value,
                        "default_mask": str(col.default_mask) if col.default_mask else None,
                        "description": col.description.to_json(),
                        "your_access": access,
                    }
                )
            row_limits = {
                p: snap.tables[table.qualified_name].max_rows for p, snap in snapshots.items()
            }
            tables.append(
                {
                    "name": table.qualified_name,
                    "description": table.description.to_json(),
                    "columns": columns,
                    "your_max_rows": row_limits,
                }
            )
        datasets.append(
            {
                "name": ds.name,
                "title": ds.title.to_json(),
                "owner": {"code": owner.code, "name": owner.name.to_json()},
                "sharing_class": ds.sharing_class.value,
                "sharing_class_zh": ds.sharing_class.label_zh,
                "grade": ds.grade.value,
                "grade_zh": ds.grade.label_zh,
                "update_cycle": ds.update_cycle,
                "description": ds.description.to_json(),
                "tables": tables,
            }
        )
    return {
        "system": principal.system,
        "department": principal.department,
        "purposes": {
            p: catalog.purposes[p].name.to_json() for p in snapshots if p in catalog.purposes
        },
        "datasets": datasets,
    }
