"""GET /v1/catalog: datasets, tables and fields, with what the caller may see of each.

The catalog as consumers see it (不懂共享 → a catalog of what exists).

Every dataset is listed — including those not shared — so a consumer knows what exists
and whom to ask; for each column it shows what *this* system would get for each of its
purposes: allow, the mask, or deny, and the row limit that applies to it. No values are
ever included.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from litestar import Request, Response, get
from litestar.params import QueryParameter

from gateway.api.call import Call
from gateway.api.deps import Injected
from gateway.audit.trail import AccessKind
from gateway.auth.callers import Callers
from gateway.catalog import Catalog
from gateway.domain import ColumnAction, DecisionSnapshot, MaskSpec, Principal
from gateway.errors import PurposeNotAllowedError, UnknownDatasetError
from gateway.policy.engine import PolicyEngine
from gateway.query.check_request import check_purpose
from gateway.query.plan import row_limit
from gateway.query.rewrite.mask_docs import describe_mask
from gateway.query.samples import Samples
from gateway.settings import Settings

__all__ = ["catalog_csv", "catalog_document", "read_catalog", "read_samples", "search_datasets"]


@get(
    "/v1/catalog",
    sync_to_thread=True,
    summary="Datasets, tables and fields, with what the calling system may see of each",
    tags=["catalog"],
)
def read_catalog(
    request: Request[Any, Any, Any],
    call: Injected[Call],
    callers: Injected[Callers],
    engine: Injected[PolicyEngine],
    catalog: Injected[Catalog],
    settings: Injected[Settings],
    purpose: Annotated[str | None, QueryParameter(name="purpose")] = None,
    q: Annotated[
        str | None,
        QueryParameter(description="Search words (中文 or English): datasets, tables or fields"),
    ] = None,
    format: Annotated[
        Literal["json", "csv"], QueryParameter(description="json (default) or csv")
    ] = "json",
    system: Annotated[
        str | None,
        QueryParameter(
            description="For a person: see the catalog as one of their department's systems"
        ),
    ] = None,
) -> Response[Any]:
    principal = call.principal
    if system is not None and principal.is_person:
        # What the person would see querying through that system (the console's
        # catalog); the same membership checks as POST /v1/query.
        principal = callers.acting_through(system, "GET", request.headers, request.cookies)
    if purpose is not None and purpose not in principal.purposes:
        raise PurposeNotAllowedError(
            f"Purpose {purpose!r} is not one your system is entitled to.",
            extra={"allowed_purposes": sorted(principal.purposes)},
        )
    purposes = [purpose] if purpose else sorted(principal.purposes)
    received = call.context.received
    snapshots = {p: engine.snapshot(principal, p, received) for p in purposes}
    document = catalog_document(
        catalog, principal, snapshots, max_rows_ceiling=settings.max_rows_ceiling
    )
    if q:
        document["datasets"] = search_datasets(document["datasets"], q)
        document["query"] = q
    if format == "csv":
        return call.read(
            catalog_csv(document),
            kind=AccessKind.CATALOG_READ,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="catalog.csv"'},
            no_store=False,
        )
    return call.read(document, kind=AccessKind.CATALOG_READ, no_store=False)


def _words(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(_words(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_words(v) for v in value)
    return str(value) if value is not None else ""


def search_datasets(datasets: list[dict[str, Any]], q: str) -> list[dict[str, Any]]:
    """The datasets with every word of ``q`` (case-insensitive, 中文 or English) in their
    own text or in one table's or field's; a dataset found by a table or field keeps only
    the matching tables (and a table found by a field only the matching fields)."""
    words = [w.casefold() for w in q.split() if w]

    def hit(text: str) -> bool:
        folded = text.casefold()
        return all(w in folded for w in words)

    found = []
    for ds in datasets:
        own = _words({k: v for k, v in ds.items() if k != "tables"})
        if hit(own):
            found.append(ds)
            continue
        tables = []
        for table in ds["tables"]:
            table_text = own + " " + _words({k: v for k, v in table.items() if k != "columns"})
            if hit(table_text):
                tables.append(table)
                continue
            columns = [c for c in table["columns"] if hit(table_text + " " + _words(c))]
            if columns:
                tables.append(table | {"columns": columns})
        if tables:
            found.append(ds | {"tables": tables})
    return found


#: The columns of the CSV export, in the guideline's order (信息资源目录编制指南).
CSV_HEADER = (
    "信息资源代码 resource_code",
    "信息资源名称 title",
    "提供方 provider",
    "数据集 dataset",
    "表 table",
    "信息项 field",
    "类型 type",
    "长度 length",
    "描述 description",
    "敏感程度 sensitivity",
    "共享属性 sharing_class",
    "共享条件 share_condition",
    "开放属性 open_class",
    "更新周期 update_cycle",
    "发布日期 published",
    "关联类目 categories",
    "分级 grade",
    "本系统可见 your_access",
)


def catalog_csv(document: Mapping[str, Any]) -> str:
    """One line per field (信息项), with what the calling system would get of it."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for ds in document["datasets"]:
        condition = ds["share_condition"]["zh"] if ds["share_condition"] else ""
        for table in ds["tables"]:
            for col in table["columns"]:
                writer.writerow(
                    [
                        ds["resource_code"],
                        ds["title"]["zh"],
                        ds["owner"]["name"]["zh"],
                        ds["name"],
                        table["name"],
                        col["name"],
                        col["type"],
                        col["length"] or "",
                        col["description"]["zh"],
                        col["sensitivity"],
                        ds["sharing_class_zh"],
                        condition,
                        ds["open_class_zh"],
                        ds["update_cycle"],
                        ds["published"] or "",
                        "; ".join(ds["categories"]),
                        ds["grade_zh"],
                        "; ".join(f"{p}={a}" for p, a in col["your_access"].items()),
                    ]
                )
    return out.getvalue()


@get(
    "/v1/catalog/samples",
    sync_to_thread=True,
    summary="Synthetic rows of a table as the calling system would receive them (masked)",
    tags=["catalog"],
)
def read_samples(
    call: Injected[Call],
    engine: Injected[PolicyEngine],
    catalog: Injected[Catalog],
    settings: Injected[Settings],
    table: Annotated[str, QueryParameter(description="dataset.table")],
    purpose: Annotated[str, QueryParameter()],
) -> Response[dict[str, Any]]:
    check_purpose(call.principal, purpose, catalog.purposes)
    found = catalog.table(table)
    if found is None:
        raise UnknownDatasetError(f"No table {table!r} in the catalog (GET /v1/catalog).")
    snapshot = engine.snapshot(call.principal, purpose, call.context.received)
    preview = Samples(catalog, settings.max_rows_ceiling).preview(found, call.principal, snapshot)
    return call.read(preview | {"purpose": purpose}, kind=AccessKind.CATALOG_READ, no_store=False)


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
                        "length": col.length,
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
                    # Inherited from the dataset unless the table is stricter (不予共享).
                    "sharing_class": catalog.sharing_class_of(table).value,
                    "sharing_class_zh": catalog.sharing_class_of(table).label_zh,
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
                "resource_code": ds.resource_code,
                "share_condition": ds.share_condition.to_json() if ds.share_condition else None,
                "open_class": ds.open_class.value,
                "open_class_zh": ds.open_class.label_zh,
                "published": ds.published or None,
                "categories": list(ds.categories),
                "default_max_rows": catalog.default_max_rows_of(ds.name),
                "tables": tables,
            }
        )
    return {
        "system": principal.system,
        "department": principal.department,
        "default_max_rows": catalog.default_max_rows,
        "max_rows_ceiling": max_rows_ceiling,
        # Datasets whose tables this system may name without ``dataset.``.
        "search_path": list(principal.search_path or catalog.search_path or catalog.datasets),
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
