"""GET /v1/catalog: datasets, tables and fields, with what the caller may see of each.

The catalog as consumers see it (不懂共享 → a catalog of what exists).

Every dataset is listed — including those not shared — so a consumer knows what exists
and whom to ask; for each column it shows what *this* system would get for each of its
purposes: allow, the mask, or deny, and the row limit that applies to it. No values are
ever included.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from litestar import Response, get
from litestar.params import QueryParameter

from gateway.api.deps import Injected
from gateway.audit.trail import AccessKind, AuditTrail
from gateway.catalog import Catalog
from gateway.domain import ColumnAction, DecisionSnapshot, MaskSpec, Principal
from gateway.errors import PurposeNotAllowedError
from gateway.policy.engine import PolicyEngine
from gateway.query.plan import row_limit
from gateway.query.rewrite.mask_docs import describe_mask
from gateway.query.state import RequestContext
from gateway.settings import Settings

__all__ = ["catalog_document", "read_catalog"]


@get(
    "/v1/catalog",
    sync_to_thread=True,
    summary="Datasets, tables and fields, with what the calling system may see of each",
    tags=["catalog"],
)
def read_catalog(
    principal: Injected[Principal],
    context: Injected[RequestContext],
    trail: Injected[AuditTrail],
    engine: Injected[PolicyEngine],
    catalog: Injected[Catalog],
    settings: Injected[Settings],
    purpose: Annotated[str | None, QueryParameter(name="purpose")] = None,
) -> Response[dict[str, Any]]:
    if purpose is not None and purpose not in principal.purposes:
        raise PurposeNotAllowedError(
            f"Purpose {purpose!r} is not one your system is entitled to.",
            extra={"allowed_purposes": sorted(principal.purposes)},
        )
    purposes = [purpose] if purpose else sorted(principal.purposes)
    snapshots = {p: engine.snapshot(principal, p, context.received) for p in purposes}
    document = catalog_document(
        catalog, principal, snapshots, max_rows_ceiling=settings.max_rows_ceiling
    )
    trail.accessed(context, principal, kind=AccessKind.CATALOG_READ)
    return Response(
        document,
        headers={"Gateway-Audit-Id": context.audit_id, "X-Request-Id": context.request_id},
    )


def catalog_document(
    catalog: Catalog,
    principal: Principal,
    snapshots: Mapping[str, DecisionSnapshot],
    *,
    max_rows_ceiling: int,
) -> dict[str, Any]:
    """The catalog for ``principal``. ``your_max_rows`` of a table is, per purpose, the
    number of rows a response over that table may return to this system (its ``p3``
    limit or the catalog default, under the gateway's ceiling), or null when the table
    is not shared with it for that purpose; a query returns at most the smallest
    ``your_max_rows`` of the tables it reads."""
    datasets = []
    for ds in catalog.datasets.values():
        owner = catalog.departments[ds.owner]
        tables = []
        for table in ds.tables.values():
            columns = []
            for col in table.columns.values():
                access: dict[str, str] = {}
                masks: dict[str, MaskSpec] = {}
                for purpose, snap in snapshots.items():
                    decision = snap.table(table.qualified_name)
                    d = decision.columns.get(col.name) if decision else None
                    if d is None or d.action is ColumnAction.DENY:
                        access[purpose] = "deny"
                    elif d.action is ColumnAction.MASK:
                        access[purpose] = f"mask:{d.mask}"
                        if d.mask is not None:
                            masks[str(d.mask)] = d.mask
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
                        # What each mask in your_access leaves of a value, in words.
                        "mask_descriptions": {k: describe_mask(m) for k, m in masks.items()},
                    }
                )
            row_limits = {
                p: _effective_limit(catalog, snap, table.qualified_name, max_rows_ceiling)
                for p, snap in snapshots.items()
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
                "default_max_rows": catalog.default_max_rows_of(ds.name),
                "tables": tables,
            }
        )
    return {
        "system": principal.system,
        "department": principal.department,
        "default_max_rows": catalog.default_max_rows,
        "max_rows_ceiling": max_rows_ceiling,
        "purposes": {
            p: catalog.purposes[p].name.to_json() for p in snapshots if p in catalog.purposes
        },
        "datasets": datasets,
    }


def _effective_limit(
    catalog: Catalog, snapshot: DecisionSnapshot, table: str, ceiling: int
) -> int | None:
    decision = snapshot.table(table)
    if decision is None or not decision.is_accessible():
        return None
    return min(row_limit(catalog, snapshot, table), ceiling)
