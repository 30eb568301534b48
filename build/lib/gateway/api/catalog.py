"""GET /v1/catalog: datasets, tables and fields, with what the caller may see of each."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Response, get
from litestar.params import QueryParameter

from gateway.api.catalog_view import catalog_document
from gateway.api.deps import Injected
from gateway.audit.trail import AccessKind, AuditTrail
from gateway.catalog import Catalog
from gateway.domain import Principal
from gateway.errors import PurposeNotAllowedError
from gateway.policy.engine import PolicyEngine
from gateway.query.state import RequestContext

__all__ = ["read_catalog"]


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
    purpose: Annotated[str | None, QueryParameter(name="purpose")] = None,
) -> Response[dict[str, Any]]:
    if purpose is not None and purpose not in principal.purposes:
        raise PurposeNotAllowedError(
            f"Purpose {purpose!r} is not one your system is entitled to.",
            extra={"allowed_purposes": sorted(principal.purposes)},
        )
    purposes = [purpose] if purpose else sorted(principal.purposes)
    snapshots = {p: engine.snapshot(principal, p, context.received) for p in purposes}
    document = catalog_document(catalog, principal, snapshots)
    trail.accessed(context, principal, kind=AccessKind.CATALOG_READ)
    return Response(
        document,
        headers={"Gateway-Audit-Id": context.audit_id, "X-Request-Id": context.request_id},
    )
