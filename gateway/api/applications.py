"""Sharing applications, grants and notifications over HTTP (people only).

Applicants (申请人) apply, edit, submit, withdraw and renew; providers' security officers
review, return, approve (possibly narrower), refuse and revoke; coordinators (数据局) see
everything, comment and arbitrate escalated applications; auditors read and comment.
The store enforces who may do what on which application; the guard only lets people
with one of these roles in. Every change is an audit record with its ``event``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, Literal

from litestar import Response, get, post, put
from litestar.params import JSONBody, PathParameter, QueryParameter

from gateway.admin.applications import Application, ApplicationInput, Narrowing
from gateway.admin.lifecycle import Action, State
from gateway.api.call import Call
from gateway.api.deps import Injected
from gateway.api.guards import PEOPLE_OPT, ROLES_OPT
from gateway.audit.trail import AccessKind
from gateway.clock import Clock
from gateway.errors import InvalidRequestError
from gateway.policy.roles import Role
from gateway.wiring import AdminServices

__all__ = ["APPLICATION_ROUTES"]

_WORKFLOW = frozenset({Role.APPLICANT, Role.PROVIDER_OFFICER, Role.COORDINATOR, Role.AUDITOR})
_SEE = {ROLES_OPT: _WORKFLOW, PEOPLE_OPT: True}
_APPLY = {ROLES_OPT: frozenset({Role.APPLICANT}), PEOPLE_OPT: True}
_ANY_PERSON = {PEOPLE_OPT: True}

#: Actions taken through POST /v1/applications/{id}/{action}.
_ACTIONS = {a.value: a for a in Action if a is not Action.EDIT}


@dataclass
class ApplicationBody:
    """申请内容: what an applicant asks for."""

    systems: list[str]
    """The department's registered systems that will query under the grant."""
    dataset: str
    columns: dict[str, list[str]]
    """Tables (dataset.table) and the columns needed of each."""
    purpose: str
    legal_basis: str = ""
    """依据: the law or regulation that makes the use lawful."""
    scenario: str = ""
    """使用场景."""
    period_from: date | None = None
    """First day of use (default: today)."""
    period_until: date | None = None
    justification: str = ""
    contact: str = ""
    row_cap: int | None = None
    quotas: dict[str, int] = field(default_factory=dict)
    """Quotas asked for: queries_per_day, queries_per_month, rows_per_day, rows_per_month."""


@dataclass
class NarrowingBody:
    drop_columns: list[str] = field(default_factory=list)
    """dataset.table.column entries not granted."""
    masks: dict[str, str] = field(default_factory=dict)
    """dataset.table.column -> mask (e.g. "name", "constant:已脱敏")."""
    row_filters: dict[str, str] = field(default_factory=dict)
    """dataset.table -> row filter, e.g. "district = {principal.district}"."""
    row_cap: int | None = None
    period_until: date | None = None
    quotas: dict[str, int] = field(default_factory=dict)
    """Quotas lowered (or added); never raised above what was asked."""


@dataclass
class ActionBody:
    reason: str | None = None
    """Mandatory to refuse, return, revoke or arbitrate; the text of a comment."""
    narrowing: NarrowingBody | None = None
    """Only for approve / arbitrate_approve: a narrower approval."""
    expected_version: int | None = None
    """The version you looked at: refused (409) if the application changed meanwhile."""


@dataclass
class RenewBody:
    period_until: date | None = None


@dataclass
class ReadBody:
    ids: list[int]


def _input(body: ApplicationBody, today: date) -> ApplicationInput:
    return ApplicationInput(
        systems=tuple(body.systems),
        dataset=body.dataset,
        columns={t: tuple(c) for t, c in body.columns.items()},
        purpose=body.purpose,
        legal_basis=body.legal_basis,
        scenario=body.scenario,
        period_from=body.period_from or today,
        period_until=body.period_until,
        justification=body.justification,
        contact=body.contact,
        row_cap=body.row_cap,
        quotas=dict(body.quotas),
    )


def _view(admin: AdminServices, app: Application, clock: Clock, *, full: bool) -> dict[str, Any]:
    view = app.to_json(admin.calendar, clock())
    if full:
        view["history"] = admin.applications.history(app.id)
        grant = admin.applications.grant_of(app.id)
        view["grant"] = _grant_json(grant) if grant else None
    return view


def _grant_json(grant: Any, state: str | None = None) -> dict[str, Any]:
    out = {
        "id": grant.id,
        "application": grant.application_id,
        "department": grant.department,
        "systems": sorted(grant.systems),
        "dataset": grant.dataset,
        "columns": {t: sorted(c) for t, c in grant.columns.items()},
        "purpose": grant.purpose,
        "masks": {c: str(m) for c, m in grant.masks.items()},
        "row_filters": dict(grant.row_filters),
        "row_cap": grant.row_cap,
        "quotas": dict(grant.quotas),
        "valid_from": grant.valid_from.isoformat() if grant.valid_from else None,
        "valid_until": grant.valid_until.isoformat() if grant.valid_until else None,
    }
    if state is not None:
        out["state"] = state
    return out


@post(
    "/v1/applications",
    status_code=201,
    sync_to_thread=True,
    tags=["sharing"],
    opt=_APPLY,
    summary="Apply for a conditional dataset: a draft, submitted with POST …/{id}/submit",
)
def create_application(
    data: JSONBody[ApplicationBody],
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    now = call.clock()
    app = call.admin.applications.create(
        call.principal,
        _input(data, call.admin.calendar.local_date(now)),
        now=now,
        record=call.record,
    )
    return call.answer(_view(call.admin, app, call.clock, full=True), status_code=201)


@get(
    "/v1/applications",
    sync_to_thread=True,
    tags=["sharing"],
    opt=_SEE,
    summary="Applications you may see; view=pending|due_soon|overdue|escalated",
)
def list_applications(
    call: Injected[Call],
    states: Annotated[list[str] | None, QueryParameter(name="state")] = None,
    dataset: Annotated[str | None, QueryParameter()] = None,
    view: Annotated[
        Literal["all", "pending", "due_soon", "overdue", "escalated"], QueryParameter()
    ] = "all",
) -> Response[dict[str, Any]]:
    try:
        wanted = [State(s) for s in states or []]
    except ValueError:
        raise InvalidRequestError(
            "state must be one of " + ", ".join(s.value for s in State)
        ) from None
    now = call.clock()
    found = call.admin.applications.visible(call.principal, states=wanted, dataset=dataset)
    items = [_view(call.admin, a, call.clock, full=False) for a in found]
    if view != "all":
        items = [i for i in items if i["deadline"] is not None]
        if view == "due_soon":
            items = [i for i in items if 0 <= i["deadline"]["working_days_left"] <= 2]
        elif view == "overdue":
            items = [i for i in items if i["deadline"]["overdue"]]
        elif view == "escalated":
            items = [i for i in items if i["deadline"]["escalated"]]
    # Escalated first, then overdue, then by reply date: what needs an answer first.
    items.sort(
        key=lambda i: (
            not (i["deadline"] or {}).get("escalated", False),
            not (i["deadline"] or {}).get("overdue", False),
            (i["deadline"] or {}).get("reply_due") or "9999",
        )
    )
    return call.read({"items": items, "count": len(items), "as_of": now.isoformat()})


@get(
    "/v1/applications/{app_id:str}",
    sync_to_thread=True,
    tags=["sharing"],
    opt=_SEE,
    summary="One application with its history, grant and reply clock",
)
def get_application(
    app_id: Annotated[str, PathParameter()],
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    app = call.admin.applications.get(app_id, call.principal)
    return call.read(_view(call.admin, app, call.clock, full=True))


@put(
    "/v1/applications/{app_id:str}",
    sync_to_thread=True,
    tags=["sharing"],
    opt=_APPLY,
    summary="Edit a draft or an application returned for information",
)
def edit_application(
    app_id: Annotated[str, PathParameter()],
    data: JSONBody[ApplicationBody],
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    now = call.clock()
    app = call.admin.applications.edit(
        app_id,
        call.principal,
        _input(data, call.admin.calendar.local_date(now)),
        now=now,
        record=call.record,
    )
    return call.answer(_view(call.admin, app, call.clock, full=True))


@post(
    "/v1/applications/{app_id:str}/{action:str}",
    status_code=200,
    sync_to_thread=True,
    tags=["sharing"],
    opt=_SEE,
    summary="submit | review | return | approve | refuse | withdraw | arbitrate_approve | "
    "arbitrate_refuse | revoke | comment",
)
def act_on_application(
    app_id: Annotated[str, PathParameter()],
    action: Annotated[str, PathParameter()],
    call: Injected[Call],
    data: JSONBody[ActionBody | None] = None,
) -> Response[dict[str, Any]]:
    chosen = _ACTIONS.get(action)
    if chosen is None:
        raise InvalidRequestError(
            f"Unknown action {action!r}; one of: " + ", ".join(sorted(_ACTIONS))
        )
    body = data or ActionBody()
    narrowing = None
    if body.narrowing is not None:
        if chosen not in (Action.APPROVE, Action.ARBITRATE_APPROVE):
            raise InvalidRequestError("A narrowing goes only with approve or arbitrate_approve.")
        n = body.narrowing
        narrowing = Narrowing(
            drop_columns=tuple(n.drop_columns),
            masks=dict(n.masks),
            row_filters=dict(n.row_filters),
            row_cap=n.row_cap,
            period_until=n.period_until,
            quotas=dict(n.quotas),
        )
    app = call.admin.applications.act(
        app_id,
        chosen,
        call.principal,
        now=call.clock(),
        reason=body.reason,
        narrowing=narrowing,
        expected_version=body.expected_version,
        record=call.record,
    )
    if chosen in (Action.APPROVE, Action.ARBITRATE_APPROVE, Action.REVOKE):
        call.admin.grants.refresh()  # decisions in this process change at the next request
    return call.answer(_view(call.admin, app, call.clock, full=True))


@post(
    "/v1/applications/{app_id:str}/renewal",
    status_code=201,
    sync_to_thread=True,
    tags=["sharing"],
    opt=_APPLY,
    summary="Renew before expiry: a new draft continuing the grant",
)
def renew_application(
    app_id: Annotated[str, PathParameter()],
    call: Injected[Call],
    data: JSONBody[RenewBody | None] = None,
) -> Response[dict[str, Any]]:
    app = call.admin.applications.renew(
        app_id,
        call.principal,
        now=call.clock(),
        period_until=data.period_until if data else None,
        record=call.record,
    )
    return call.answer(_view(call.admin, app, call.clock, full=True), status_code=201)


@get(
    "/v1/grants",
    sync_to_thread=True,
    tags=["sharing"],
    opt=_SEE,
    summary="Grants of your department (consumer side) and on its datasets (provider side)",
)
def list_grants(
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    found = call.admin.applications.grants_visible(call.principal)
    items = [_grant_json(g, state) for g, state in found]
    return call.read({"items": items, "count": len(items)})


@get(
    "/v1/notifications",
    sync_to_thread=True,
    tags=["sharing"],
    opt=_ANY_PERSON,
    summary="Your notifications (outbox), newest first",
)
def list_notifications(
    call: Injected[Call],
    unread: Annotated[bool, QueryParameter()] = False,
) -> Response[dict[str, Any]]:
    who = call.principal
    found = call.admin.outbox.for_person(
        who.officer or "", who.roles, who.department, unread_only=unread
    )
    items = [n.to_json() for n in found]
    return call.read({"items": items, "count": len(items)})


@post(
    "/v1/notifications/read",
    status_code=200,
    sync_to_thread=True,
    tags=["sharing"],
    opt=_ANY_PERSON,
    summary="Mark notifications as read",
)
def read_notifications(
    data: JSONBody[ReadBody],
    call: Injected[Call],
) -> Response[dict[str, Any]]:
    visible = [
        n.id
        for n in call.admin.outbox.for_person(
            call.principal.officer or "", call.principal.roles, call.principal.department
        )
    ]
    call.trail.accessed(call.context, call.principal, kind=AccessKind.ADMINISTRATION_READ)
    marked = call.admin.outbox.mark_read(data.ids, visible, now=call.clock())
    return call.answer({"marked": marked})


APPLICATION_ROUTES = [
    create_application,
    list_applications,
    get_application,
    edit_application,
    renew_application,
    act_on_application,
    list_grants,
    list_notifications,
    read_notifications,
]
