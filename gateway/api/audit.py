"""The auditors' API: search the log, read records with receipts, proofs, checkpoints and
evidence bundles.

Who sees what (:func:`scope_of`):

* ``auditor`` role - every record; may export any record or range;
* ``provider_officer`` role - the records of every access to datasets its department
  owns (the provider's side of the evidence), with receipts; may export those records;
* any other authenticated system - its own system's records and receipts (without the
  diagnostic ``internal_reason``, which is never shown to consumers).

Checkpoints and the log's public keys are public: publishing tree heads widely is what
makes a later rewrite of the log detectable.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Response, get
from litestar.enums import MediaType
from litestar.params import PathParameter, QueryParameter

from gateway.api.call import Call
from gateway.api.deps import Injected
from gateway.api.guards import ROLES_OPT
from gateway.audit.bundle import build_bundle, checkpoint_size, keys_json
from gateway.audit.commit import disclosable, receipt_for
from gateway.audit.record import AuditRecord, Outcome, leaf_hash_of
from gateway.audit.store.protocol import MAX_EXPORT_ENTRIES, AuditReader, SearchQuery, TreeHead
from gateway.audit.trail import AccessKind
from gateway.catalog import Catalog
from gateway.domain import Principal
from gateway.errors import (
    AccessDeniedError,
    InvalidRequestError,
    NotFoundError,
    UnknownDatasetError,
)
from gateway.policy.roles import Role

__all__ = ["AUDIT_ROUTES", "AuditScope", "scope_of"]


@dataclass(frozen=True, slots=True)
class AuditScope:
    """What one principal may read of the audit log."""

    everything: bool
    #: Datasets whose access records are visible (provider officers).
    datasets: frozenset[str]
    #: The system whose own records are visible (plain consumers).
    system: str | None
    #: Whether diagnostic fields and full record bytes may be shown.
    full_records: bool
    can_export: bool
    #: The department whose systems' records are visible (applicants: their department).
    department: str | None = None

    def allows(self, record: AuditRecord) -> bool:
        if self.everything:
            return True
        if self.system is not None and record.system == self.system:
            return True
        if self.department is not None and record.department == self.department:
            return True
        touched = {t.split(".", 1)[0] for t in record.tables}
        return bool(touched & self.datasets)


def scope_of(principal: Principal, catalog: Catalog) -> AuditScope:
    if Role.AUDITOR in principal.roles:
        return AuditScope(True, frozenset(), None, True, True)
    if Role.PROVIDER_OFFICER in principal.roles:
        owned = frozenset(
            name for name, ds in catalog.datasets.items() if ds.owner == principal.department
        )
        return AuditScope(False, owned, None, True, True)
    if principal.is_person:
        # Applicants: what their department's systems did (without diagnostics).
        return AuditScope(False, frozenset(), None, False, False, principal.department)
    return AuditScope(False, frozenset(), principal.system, False, False)


#: Who may read audit records (each sees the scope above); who may export bundles.
_READERS = {
    ROLES_OPT: frozenset({Role.CONSUMER, Role.APPLICANT, Role.PROVIDER_OFFICER, Role.AUDITOR})
}
_EXPORTERS = {ROLES_OPT: frozenset({Role.PROVIDER_OFFICER, Role.AUDITOR})}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _record_view(
    store: AuditReader, head: TreeHead, scope: AuditScope, index: int, record: AuditRecord
) -> Any:
    """One record as a reader in ``scope`` may see it, with a fresh receipt: its audit
    path to ``head`` (read once per request, not once per record)."""
    data = record.canonical_bytes()
    shown = record.to_json_object()
    view: dict[str, Any] = {"index": index}
    if scope.full_records:
        # The exact canonical text: its UTF-8 bytes are the leaf the receipt proves.
        view["record_text"] = data.decode("utf-8")
    else:
        shown["internal_reason"] = None if record.internal_reason is None else "(withheld)"
    view["record"] = shown
    shown_text = data if scope.full_records or disclosable(record) else None
    view["receipt"] = receipt_for(
        store, head, index, record.audit_id, leaf_hash_of(data), record=shown_text
    ).to_json()
    return view


def _parse_outcome(outcome: str | None) -> Outcome | None:
    if outcome is None:
        return None
    try:
        return Outcome(outcome)
    except ValueError:
        raise InvalidRequestError(
            f"outcome must be one of {', '.join(o.value for o in Outcome)}"
        ) from None


@get(
    "/v1/audit/records",
    opt=_READERS,
    sync_to_thread=True,
    summary="Search audit records (auditors; providers: their datasets; others: own)",
    description=(
        "Newest first. Filters: department, system, dataset, purpose, outcome, since/until "
        "(RFC 3339 UTC with microseconds), q (substring of the consumer's SQL as stored; "
        "identifiers appear as ⟦id:…⟧ tokens, see `gateway audit lookup-id`), before (page "
        "below this index), limit. Each item has the record and a receipt proving it is in "
        "the log. 审计记录检索。"
    ),
    tags=["audit"],
)
def search_records(
    call: Injected[Call],
    audit_store: Injected[AuditReader],
    catalog: Injected[Catalog],
    department: Annotated[str | None, QueryParameter()] = None,
    system: Annotated[str | None, QueryParameter()] = None,
    dataset: Annotated[str | None, QueryParameter()] = None,
    purpose: Annotated[str | None, QueryParameter()] = None,
    outcome: Annotated[str | None, QueryParameter()] = None,
    since: Annotated[str | None, QueryParameter()] = None,
    until: Annotated[str | None, QueryParameter()] = None,
    q: Annotated[str | None, QueryParameter()] = None,
    before: Annotated[int | None, QueryParameter(ge=0)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> Response[dict[str, Any]]:
    scope = scope_of(call.principal, catalog)
    store = audit_store
    if dataset is not None and dataset not in catalog.datasets:
        raise UnknownDatasetError(f"No dataset {dataset!r} in the catalog.")
    if not scope.everything:
        if scope.system is not None:
            if system not in (None, scope.system):
                raise AccessDeniedError("You may read only your own system's audit records.")
            system = scope.system
        elif scope.department is not None:
            if department not in (None, scope.department):
                raise AccessDeniedError("You may read only your department's audit records.")
            department = scope.department
        else:
            if dataset is None or dataset not in scope.datasets:
                raise AccessDeniedError(
                    "Name one of your department's datasets: dataset="
                    + " | ".join(sorted(scope.datasets) or ["(none)"]),
                    extra={"datasets": sorted(scope.datasets)},
                )
    try:
        found = store.search(
            SearchQuery(
                department=department,
                system=system,
                dataset=dataset,
                purpose=purpose,
                outcome=_parse_outcome(outcome),
                since=since,
                until=until,
                text=q,
                before=before,
                limit=limit,
            )
        )
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(str(exc)) from exc
    head = store.head()
    items = [_record_view(store, head, scope, i, r) for i, r in found if scope.allows(r)]
    page: dict[str, Any] = {"items": items, "count": len(items)}
    if len(found) == limit and found:
        page["next_before"] = found[-1][0]
    return call.read(page, kind=AccessKind.AUDIT_LOG_READ)


@get(
    "/v1/audit/records/{audit_id:str}",
    opt=_READERS,
    sync_to_thread=True,
    summary="One audit record with a fresh receipt",
    tags=["audit"],
)
def get_record(
    audit_id: Annotated[str, PathParameter()],
    call: Injected[Call],
    audit_store: Injected[AuditReader],
    catalog: Injected[Catalog],
) -> Response[dict[str, Any]]:
    scope = scope_of(call.principal, catalog)
    found = audit_store.get(audit_id)
    # Not found and not yours look the same: ids of others' records are not confirmed.
    if found is None or not scope.allows(found[1]):
        raise NotFoundError(f"No audit record {audit_id!r} that you may read.")
    view = _record_view(audit_store, audit_store.head(), scope, *found)
    return call.read(view, kind=AccessKind.AUDIT_LOG_READ)


@get(
    "/v1/audit/checkpoint",
    sync_to_thread=True,
    summary="The latest signed tree head (C2SP tlog-checkpoint signed note), public",
    tags=["audit"],
    media_type=MediaType.TEXT,
)
def latest_checkpoint(audit_store: Injected[AuditReader]) -> Response[str]:
    note = audit_store.head().checkpoint
    return Response(note, media_type="text/plain; charset=utf-8")


@get(
    "/v1/audit/cosigned",
    sync_to_thread=True,
    summary="The latest checkpoint with its witnesses' cosignatures (signed note), public",
    description=(
        "What the witnesses this gateway pushes to have cosigned (gateway/audit/"
        "witnessing.py); monitors compare it with the heads they are shown. 404 when no "
        "witness has cosigned yet. 见证方联署的最新检查点。"
    ),
    tags=["audit"],
    media_type=MediaType.TEXT,
    opt={"problems": (404,)},
)
def latest_cosigned(audit_store: Injected[AuditReader]) -> Response[str]:
    note = audit_store.cosigned()
    if note is None:
        raise NotFoundError("No checkpoint of this log has been cosigned by a witness yet.")
    return Response(note, media_type="text/plain; charset=utf-8")


@get(
    "/v1/audit/checkpoints",
    sync_to_thread=True,
    summary="Stored signed checkpoints from a tree size on, oldest first, public",
    tags=["audit"],
)
def list_checkpoints(
    audit_store: Injected[AuditReader],
    from_size: Annotated[int, QueryParameter(ge=0)] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    return {"checkpoints": audit_store.checkpoints(from_size, limit)}


@get(
    "/v1/audit/keys",
    sync_to_thread=True,
    summary="The log's signing keys (origins, verifier keys, signed hand-overs), public",
    tags=["audit"],
)
def log_keys(audit_store: Injected[AuditReader]) -> dict[str, Any]:
    return {"origin": audit_store.origin, "keys": keys_json(audit_store.key_history())}


@get(
    "/v1/audit/proof/inclusion",
    opt=_READERS,
    sync_to_thread=True,
    summary="RFC 6962 inclusion proof of entry `index` in the tree of `size` entries",
    tags=["audit"],
)
def inclusion_proof(
    index: Annotated[int, QueryParameter(ge=0)],
    size: Annotated[int, QueryParameter(ge=1)],
    audit_store: Injected[AuditReader],
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    try:
        proof = audit_store.inclusion_proof(index, size)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from exc
    content = {
        "index": index,
        "size": size,
        "checkpoint": audit_store.checkpoint(size),
        "inclusion_proof": [_b64(h) for h in proof],
    }
    return call.read(content, kind=AccessKind.AUDIT_LOG_READ)


@get(
    "/v1/audit/proof/consistency",
    opt=_READERS,
    sync_to_thread=True,
    summary="RFC 6962 consistency proof between tree sizes `first` and `second`",
    tags=["audit"],
)
def consistency_proof(
    first: Annotated[int, QueryParameter(ge=0)],
    second: Annotated[int, QueryParameter(ge=0)],
    audit_store: Injected[AuditReader],
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    try:
        proof = audit_store.consistency_proof(first, second)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from exc
    content = {"first": first, "second": second, "consistency_proof": [_b64(h) for h in proof]}
    return call.read(content, kind=AccessKind.AUDIT_LOG_READ)


@get(
    "/v1/audit/export",
    opt=_EXPORTERS,
    sync_to_thread=True,
    summary="Evidence bundle: records + proofs + checkpoints + public keys, offline-verifiable",
    description=(
        "Either audit_id (repeatable) or start/end (an index range, auditors only). "
        "earlier_size (repeatable): also prove consistency from the stored checkpoint of that "
        "size (e.g. one a consumer holds in a receipt) to the latest head. Verify with "
        "`gateway audit verify bundle.json --key <log key>`. 导出可离线核验的证据包。"
    ),
    tags=["audit"],
)
def export_bundle(
    call: Injected[Call],
    audit_store: Injected[AuditReader],
    catalog: Injected[Catalog],
    audit_id: Annotated[list[str] | None, QueryParameter(name="audit_id")] = None,
    start: Annotated[int | None, QueryParameter(ge=0)] = None,
    end: Annotated[int | None, QueryParameter(ge=0)] = None,
    earlier_size: Annotated[list[int] | None, QueryParameter(name="earlier_size")] = None,
) -> Response[dict[str, Any]]:
    scope = scope_of(call.principal, catalog)
    store = audit_store
    if not scope.can_export:
        raise AccessDeniedError(
            "Exporting evidence needs the auditor or provider_officer role; consumers keep "
            "their receipts and response bodies."
        )
    if audit_id:
        if start is not None or end is not None:
            raise InvalidRequestError("Give either audit_id or start/end, not both.")
        entries = []
        for one in audit_id[:1000]:
            found = store.get(one)
            if found is None or not scope.allows(found[1]):
                raise NotFoundError(f"No audit record {one!r} that you may read.")
            entries.extend(store.entries(found[0], found[0] + 1))
    elif start is not None and end is not None:
        if not scope.everything:
            raise AccessDeniedError("Exporting an index range needs the auditor role.")
        if end <= start or end - start > MAX_EXPORT_ENTRIES:
            raise InvalidRequestError(
                f"Need start < end and at most {MAX_EXPORT_ENTRIES} entries per bundle."
            )
        if end > store.size():
            raise InvalidRequestError(f"The log has {store.size()} entries; end is beyond it.")
        entries = store.entries(start, end)
    else:
        raise InvalidRequestError("Give audit_id=... or start=...&end=...")
    earlier: list[str] = []
    for size in earlier_size or []:
        note = store.checkpoint(size)
        if note is None:
            raise InvalidRequestError(f"No stored checkpoint of size {size}.")
        earlier.append(note)
    bundle = build_bundle(store, entries, earlier=earlier)
    head_size = checkpoint_size(bundle["checkpoint"])
    disposition = f'attachment; filename="audit-evidence-{head_size}.json"'
    return call.read(
        bundle, kind=AccessKind.AUDIT_LOG_READ, headers={"Content-Disposition": disposition}
    )


AUDIT_ROUTES = [
    search_records,
    get_record,
    latest_checkpoint,
    latest_cosigned,
    list_checkpoints,
    log_keys,
    inclusion_proof,
    consistency_proof,
    export_bundle,
]
