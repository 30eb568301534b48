"""Policy administration over HTTP: versions (propose, validate, approve, reject, activate,
roll back, diff), explain and replay.

Officers change the rules of their own department's datasets; administrators change the
configuration (systems, model, purposes); coordinators and auditors read. The version
store enforces who may decide which change (gateway/admin/policies.py) and writes every
proposal, approval, rejection and activation into the audit log inside its transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from litestar import Response, get, post
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.response import Stream

from gateway.api.call import Call
from gateway.api.deps import Injected, audit_headers
from gateway.api.guards import PEOPLE_OPT, ROLES_OPT
from gateway.audit.record import AuditRecord
from gateway.audit.store.protocol import MAX_SEARCH_LIMIT, AuditReader, SearchQuery
from gateway.audit.trail import AccessKind, AuditTrail
from gateway.backends.base import Backend
from gateway.catalog import Catalog
from gateway.domain import Principal
from gateway.errors import AccessDeniedError, GatewayError, InvalidRequestError, NotFoundError
from gateway.policy.replay import Replay, ReplayedQuery, RowCounter, replay_csv, system_principal
from gateway.policy.roles import Role
from gateway.policy.runtime import ActivePolicy, PolicyRuntime
from gateway.policy.versions import POLICY_FILES, PolicySource, structured_diff
from gateway.query.explain import Explainer, Explanation
from gateway.query.samples import Samples
from gateway.query.state import QueryRequest, RequestContext
from gateway.settings import Settings
from gateway.wiring import AdminServices

__all__ = ["POLICY_ROUTES", "explain"]

_CHANGE = frozenset({Role.PROVIDER_OFFICER, Role.ADMINISTRATOR})
_READ = frozenset({Role.PROVIDER_OFFICER, Role.ADMINISTRATOR, Role.COORDINATOR, Role.AUDITOR})
_REPLAY = frozenset({Role.PROVIDER_OFFICER, Role.COORDINATOR})
_READ_OPT = {ROLES_OPT: _READ, PEOPLE_OPT: True}
_CHANGE_OPT = {ROLES_OPT: _CHANGE, PEOPLE_OPT: True}
_REPLAY_OPT = {ROLES_OPT: _REPLAY, PEOPLE_OPT: True}
#: Consumers explain their own queries; officers and coordinators explain as a system.
_EXPLAIN_OPT = {ROLES_OPT: frozenset({Role.CONSUMER, Role.PROVIDER_OFFICER, Role.COORDINATOR})}

_ACTIONS = ("approve", "reject", "activate")


@dataclass
class ProposalBody:
    """A new version: the files that change (the others are the active version's)."""

    files: dict[str, str]
    """File name (catalog.toml, systems.toml, policy.csv, model.conf) -> its whole new text."""
    reason: str = ""
    """Why the rules change (mandatory to propose)."""
    acknowledged_unmasked: list[str] = field(default_factory=list)
    """dataset.table.column entries of personal columns deliberately served unmasked."""


@dataclass
class DecisionBody:
    reason: str = ""
    """Mandatory to reject."""


@dataclass
class RollbackBody:
    to: str
    """The change id or version to return to (proposed again as a new change)."""
    reason: str


@dataclass
class ExplainBody:
    sql: str
    purpose: str
    system: str | None = None
    """Officers and coordinators: the consumer system to explain as (systems: themselves)."""
    version: str | None = None
    """Officers and coordinators: a change id or version (default: the active one)."""
    max_rows: int | None = None
    preview: bool = False
    """Also run the query over three synthetic rows per table (never real data)."""


@dataclass
class ReplayBody:
    version: str
    """The change id or version to compare with the active one."""
    limit: int = 200
    """The most recent recorded queries to look at (at most 1000)."""
    since: str | None = None
    until: str | None = None
    format: Literal["json", "csv", "ndjson"] = "json"
    """``ndjson``: one JSON object per line as the replay goes - ``{"progress": {"done",
    "of"}}`` after each recorded query, ``{"item": ...}`` for each replayed one, and a last
    ``{"summary": ...}`` (for long replays: progress shows while it runs)."""
    execute: bool = False
    """Also run each plan (read-only) to count the rows it would deliver under each
    version; only counts are reported."""
    time_budget_ms: int = 10_000
    """With ``execute``: the total time the executions may take (1 to 60,000 ms); queries
    left when it is spent are not counted (``rows`` null)."""
    row_budget: int = 10_000
    """With ``execute``: the most rows counted per query (1 to 100,000; more shows as
    ``"> N"``)."""


def _sources(admin: AdminServices, files: dict[str, str]) -> tuple[PolicySource, PolicySource]:
    """The active version's files and the proposal (the active files with ``files``)."""
    unknown = sorted(set(files) - set(POLICY_FILES))
    if unknown:
        raise InvalidRequestError(
            f"Unknown policy file(s) {', '.join(unknown)}; the files are " + ", ".join(POLICY_FILES)
        )
    active = admin.versions.active()
    if active is None:
        raise NotFoundError("No policy version is active.")
    return active.source, active.source.with_files(files)


def _diff(admin: AdminServices, version: Any) -> dict[str, Any]:
    if version.parent is None:
        return {"changes": [], "unified": ""}
    parent = admin.versions.get(version.parent).source
    return {
        "changes": [c.to_json() for c in structured_diff(parent, version.source)],
        "unified": parent.unified_diff(version.source),
    }


@get(
    "/v1/policy/versions",
    sync_to_thread=True,
    tags=["policy"],
    opt=_READ_OPT,
    summary="Policy versions, newest first (proposed, approved, active, superseded, rejected)",
)
def list_versions(
    call: Injected[Call],
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 200,
) -> Response[dict[str, Any]]:
    items = [v.to_json() for v in call.admin.versions.history(limit)]
    return call.read({"active": call.admin.versions.active_version(), "items": items})


@get(
    "/v1/policy/versions/{change_id:str}",
    sync_to_thread=True,
    tags=["policy"],
    opt=_READ_OPT,
    summary="One version: its files and its diff from the version it was proposed on",
)
def get_version(
    change_id: Annotated[str, PathParameter()],
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    version = call.admin.versions.get(change_id)
    body = version.to_json(with_files=True) | {"diff": _diff(call.admin, version)}
    return call.read(body)


@post(
    "/v1/policy/validate",
    status_code=200,
    sync_to_thread=True,
    tags=["policy"],
    opt=_CHANGE_OPT,
    summary="Check a proposal without storing it: problems, departments touched, diff",
)
def validate_proposal(
    data: JSONBody[ProposalBody],
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    active, source = _sources(call.admin, data.files)
    changes = [c.to_json() for c in structured_diff(active, source)]
    try:
        review = call.admin.versions.review(source, call.principal, data.acknowledged_unmasked)
        body: dict[str, Any] = {
            "valid": True,
            "problems": [],
            "departments": sorted(review.departments),
        }
    except (InvalidRequestError, AccessDeniedError) as exc:
        problems = exc.extra.get("problems") or [exc.detail]
        body = {"valid": False, "problems": list(problems), "departments": []}
    body |= {"version": source.id, "changes": changes}
    return call.read(body)


@post(
    "/v1/policy/versions",
    status_code=201,
    sync_to_thread=True,
    tags=["policy"],
    opt=_CHANGE_OPT,
    summary="Propose a version on top of the active one (validated; refused with every problem)",
)
def propose_version(
    data: JSONBody[ProposalBody],
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    version = call.admin.versions.propose(
        _sources(call.admin, data.files)[1],
        call.principal,
        reason=data.reason,
        now=call.clock(),
        acknowledged=data.acknowledged_unmasked,
        record=call.record,
    )
    body = version.to_json() | {"diff": _diff(call.admin, version)}
    return call.answer(body, status_code=201)


@post(
    "/v1/policy/versions/{change_id:str}/{action:str}",
    status_code=200,
    sync_to_thread=True,
    tags=["policy"],
    opt=_CHANGE_OPT,
    summary="approve (another officer: the two-person rule) | reject (with reason) | activate",
)
def decide_version(
    change_id: Annotated[str, PathParameter()],
    action: Annotated[str, PathParameter()],
    call: Injected[Call],
    policies: Injected[PolicyRuntime],
    data: JSONBody[DecisionBody | None] = None,
) -> Response[dict[str, Any]]:
    versions, who, now, record = call.admin.versions, call.principal, call.clock(), call.record
    if action == "approve":
        version = versions.approve(change_id, who, now=now, record=record)
    elif action == "reject":
        reason = data.reason if data else ""
        version = versions.reject(change_id, who, reason=reason, now=now, record=record)
    elif action == "activate":
        version = versions.activate(change_id, who, now=now, record=record)
        policies.refresh()  # this process switches at its next request; others poll
    else:
        raise InvalidRequestError(f"Unknown action {action!r}; one of: " + ", ".join(_ACTIONS))
    return call.answer(version.to_json())


@post(
    "/v1/policy/rollback",
    status_code=201,
    sync_to_thread=True,
    tags=["policy"],
    opt=_CHANGE_OPT,
    summary="Propose an earlier version again (a new change, approved and activated as usual)",
)
def rollback_version(
    data: JSONBody[RollbackBody],
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    version = call.admin.versions.rollback(
        data.to,
        call.principal,
        reason=data.reason,
        now=call.clock(),
        record=call.record,
    )
    body = version.to_json() | {"diff": _diff(call.admin, version)}
    return call.answer(body, status_code=201)


# ------------------------------------------------------------------------------ explain


def _owners(catalog: Catalog, names: tuple[str, ...]) -> set[str]:
    owners = set()
    for name in names:
        dataset = catalog.datasets.get(name.split(".", 1)[0])
        owners.add(dataset.owner if dataset is not None else "")
    return owners


def _explain_as(
    data: ExplainBody, principal: Principal, active: ActivePolicy, policies: PolicyRuntime
) -> tuple[Principal, ActivePolicy]:
    """Who is explained under which version, for who asks."""
    if not principal.is_person:
        if data.system not in (None, principal.system) or data.version is not None:
            raise AccessDeniedError(
                "A system explains its own queries under the active version: leave out "
                "'system' and 'version'."
            )
        return principal, active
    if not data.system:
        raise InvalidRequestError("Name the consumer system to explain as ('system').")
    policy = active if data.version is None else policies.version(data.version)
    subject = system_principal(policy, data.system)
    if subject is None:
        raise InvalidRequestError(
            f"System {data.system!r} is not registered (or not active) in version {policy.version}."
        )
    return subject, policy


@post(
    "/v1/explain",
    status_code=200,
    sync_to_thread=True,
    tags=["query"],
    opt=_EXPLAIN_OPT,
    summary="What a query would return and why, under a policy version — without running it",
)
def explain(
    data: JSONBody[ExplainBody],
    principal: Injected[Principal],
    policy: Injected[ActivePolicy],
    policies: Injected[PolicyRuntime],
    explainer: Injected[Explainer],
    trail: Injected[AuditTrail],
    context: Injected[RequestContext],
    settings: Injected[Settings],
) -> Response[dict[str, Any]]:
    subject, version = _explain_as(data, principal, policy, policies)
    request = QueryRequest(sql=data.sql, purpose=data.purpose, max_rows=data.max_rows)
    explanation = explainer.explain(request, subject, version, context)
    if principal.is_person and Role.COORDINATOR not in principal.roles:
        # An officer sees the rules of their own department's datasets only.
        names = explanation.plan.tables if explanation.plan else explanation.mentioned
        foreign = _owners(version.catalog, names) - {principal.department}
        if foreign:
            raise AccessDeniedError(
                "Explaining as a system covers your department's datasets only; this query "
                "reads datasets of " + ", ".join(sorted(o or "unknown" for o in foreign))
            )
    body = explanation.to_json()
    if data.preview and explanation.served and explanation.snapshot is not None:
        samples = Samples(version.catalog, settings.max_rows_ceiling)
        try:
            body["preview"] = samples.run(data.sql, subject, explanation.snapshot)
        except GatewayError as exc:
            body["preview"] = {"synthetic": True, "error": exc.detail}
    trail.accessed(context, principal, kind=AccessKind.EXPLAIN)
    return Response(body, headers=audit_headers(context))


# ------------------------------------------------------------------------------ replay


@post(
    "/v1/policy/replay",
    status_code=200,
    sync_to_thread=True,
    tags=["policy"],
    opt=_REPLAY_OPT,
    summary="Replay recorded queries under the active and another version; what changes",
)
def replay(
    data: JSONBody[ReplayBody],
    call: Injected[Call],
    policy: Injected[ActivePolicy],
    policies: Injected[PolicyRuntime],
    explainer: Injected[Explainer],
    audit_store: Injected[AuditReader],
    backends: Injected[Mapping[str, Backend]],
) -> Response[Any] | Stream:
    if not 1 <= data.limit <= 1000:
        raise InvalidRequestError("'limit' must be between 1 and 1000.")
    if not 1 <= data.time_budget_ms <= 60_000 or not 1 <= data.row_budget <= 100_000:
        raise InvalidRequestError(
            "'time_budget_ms' must be between 1 and 60000 and 'row_budget' between 1 and 100000."
        )
    proposed = policies.version(data.version)
    try:
        found = audit_store.search(
            SearchQuery(
                since=data.since, until=data.until, text="", limit=min(data.limit, MAX_SEARCH_LIMIT)
            )
        )
    except (ValueError, TypeError) as exc:
        raise InvalidRequestError(str(exc)) from None
    everything = Role.COORDINATOR in call.principal.roles

    def touches(old: Explanation | None, new: Explanation | None) -> bool:
        if everything:
            return True
        names = {n for e in (old, new) if e for n in (e.plan.tables if e.plan else e.mentioned)}
        owners = _owners(policy.catalog, tuple(names)) | _owners(proposed.catalog, tuple(names))
        return call.principal.department in owners

    counter = (
        RowCounter(backends, data.time_budget_ms / 1000, data.row_budget) if data.execute else None
    )
    runner = Replay(explainer, call.context, counter)
    records = [r for _, r in found]
    if data.format == "ndjson":
        # The record of the replay is durable before anything about it leaves.
        call.trail.accessed(call.context, call.principal, kind=AccessKind.ADMINISTRATION_READ)
        lines = _ndjson(runner, records, policy, proposed, touches)
        return Stream(lines, media_type="application/x-ndjson", headers=audit_headers(call.context))
    results = list(runner.run(records, policy, proposed, touches=touches))
    if data.format == "csv":
        return call.read(replay_csv(results), media_type="text/csv; charset=utf-8")
    body = {
        "active": policy.version,
        "proposed": proposed.version,
        "replayed": len(results),
        "changed": sum(1 for r in results if r.changes),
        "items": [r.to_json() for r in results],
    }
    return call.read(body)


def _ndjson(
    runner: Replay,
    records: list[AuditRecord],
    active: ActivePolicy,
    proposed: ActivePolicy,
    touches: Callable[[Explanation | None, Explanation | None], bool],
) -> Iterator[bytes]:
    """The replay as it goes: progress after each recorded query, each replayed one as
    an item, then the summary (the same numbers as the JSON form)."""
    replayed: list[ReplayedQuery] = []
    for done, record in enumerate(records, start=1):
        for item in runner.run([record], active, proposed, touches=touches):
            replayed.append(item)
            yield _line({"item": item.to_json()})
        yield _line({"progress": {"done": done, "of": len(records)}})
    summary = {
        "active": active.version,
        "proposed": proposed.version,
        "replayed": len(replayed),
        "changed": sum(1 for r in replayed if r.changes),
    }
    yield _line({"summary": summary})


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n"


POLICY_ROUTES = [
    list_versions,
    get_version,
    validate_proposal,
    propose_version,
    decide_version,
    rollback_version,
    replay,
]
