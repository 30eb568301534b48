"""``gateway applications``: the sharing workflow from the command line, through the
gateway's API — apply, submit, decide, revoke, renew; grants, quotas, statistics.

Every command signs in as a person (``--user``) and goes through the same API, role
checks and audit records as the web console. Who may take which action is in
docs/roles.md and ``gateway/admin/lifecycle.py``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from gateway.cli.common import (
    CONTEXT_SETTINGS,
    http,
    person_command,
    person_session,
    url_option,
    user_option,
)

__all__ = ["applications"]


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key or not rest:
            raise click.BadParameter(f"{value!r}: expected NAME=VALUE", param_hint=what)
        out[key] = rest
    return out


def _quotas(values: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in _pairs(values, "--quota").items():
        if not value.isdigit():
            raise click.BadParameter(f"{key}={value}: a whole number", param_hint="--quota")
        out[key] = int(value)
    return out


def _columns(values: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for value in values:
        table, sep, columns = value.partition(":")
        if not sep or not table or not columns:
            raise click.BadParameter(
                f"{value!r}: expected dataset.table:col1,col2", param_hint="--columns"
            )
        out.setdefault(table, []).extend(c.strip() for c in columns.split(",") if c.strip())
    return out


def _line(app: dict[str, Any]) -> str:
    clock = app.get("deadline") or {}
    due = ""
    if clock:
        due = f"  reply by {clock['reply_due']} ({clock['working_days_left']} working days)"
        if clock.get("escalated"):
            due += " ESCALATED"
        elif clock.get("overdue"):
            due += " OVERDUE"
    return (
        f"{app['id']}  {app['state']:<12} {app['consumer_department']} → {app['dataset']} "
        f"({app['provider_department']})  {app['purpose']}{due}"
    )


def _show(app: dict[str, Any]) -> None:
    click.echo(_line(app))
    if app.get("reason"):
        click.echo(f"  reason: {app['reason']}")
    grant = app.get("grant")
    if grant:
        click.echo(
            f"  grant {grant['id']}: {json.dumps(grant['columns'], ensure_ascii=False)} "
            f"until {grant['valid_until'] or '-'}  quotas {grant['quotas'] or '-'}"
        )
    for event in app.get("history", []):
        comment = f"  {event['comment']}" if event.get("comment") else ""
        click.echo(
            f"  {event['at'][:19]}  {event['actor']:<12} {event['action']:<18} "
            f"{event['from'] or '-'} → {event['to'] or '-'}{comment}"
        )


def _act(url: str, user: str, app_id: str, action: str, body: dict[str, Any]) -> None:
    headers = person_session(url, user)
    _show(http("post", f"{url}/v1/applications/{app_id}/{action}", json=body, headers=headers))


reason_option = click.option(
    "--reason", required=True, help="Why (recorded, shown to the other side)."
)


@click.group(context_settings=CONTEXT_SETTINGS)
def applications() -> None:
    """Sharing applications (共享申请): apply, decide, revoke, renew; grants, quotas, statistics.

    \b
    The life cycle:
      draft → submitted → under_review → approved (possibly narrower) → active
                                       → returned (for information) → submitted again
                                       → refused (reason mandatory)
      active → expired (period over) | revoked (reason mandatory); renew before expiry
    A provider answers within the reply deadline in working days (default 10; holidays and
    调休 weekends count correctly); an overdue application is escalated to the
    coordinators (数据局), who may arbitrate.

    \b
    Example:
      gateway applications apply --user zhang.wei --dataset population \\
          --system rsj-subsidy --columns population.people:person_id,name,district \\
          --purpose employment_subsidy_review --legal-basis "《就业促进法》" \\
          --scenario "补贴申领人身份核验" --justification "防止冒领" --contact "0531-…" \\
          --quota queries_per_day=1000 --submit
      gateway applications review SQ… --user li.qiang
      gateway applications approve SQ… --user li.qiang --drop population.people.phone \\
          --quota queries_per_day=500
      gateway applications statistics --user zhao.min --from 2026-01-01 --csv
    """


@person_command(applications, "list")
@click.option(
    "--view",
    type=click.Choice(["all", "pending", "due_soon", "overdue", "escalated"]),
    default="all",
    show_default=True,
    help="pending: awaiting an answer; due_soon: 2 working days or less; overdue; escalated.",
)
@click.option("--state", "states", multiple=True, help="Only these states (repeat).")
@click.option("--dataset", default=None)
def list_applications(
    url: str, user: str, view: str, states: tuple[str, ...], dataset: str | None
) -> None:
    """Applications you may see, most urgent first."""
    params: dict[str, Any] = {"view": view, "state": list(states)}
    if dataset:
        params["dataset"] = dataset
    body = http("get", f"{url}/v1/applications", params=params, headers=person_session(url, user))
    for app in body["items"]:
        click.echo(_line(app))


@person_command(applications)
@click.argument("app_id")
def show(url: str, user: str, app_id: str) -> None:
    """One application with its grant and history."""
    _show(http("get", f"{url}/v1/applications/{app_id}", headers=person_session(url, user)))


@person_command(applications)
@click.option("--dataset", required=True)
@click.option("--system", "systems", multiple=True, required=True, help="Repeat.")
@click.option(
    "--columns",
    "columns",
    multiple=True,
    required=True,
    help="dataset.table:col1,col2 (repeat per table).",
)
@click.option("--purpose", required=True)
@click.option("--legal-basis", default="", help="依据: the law that makes the use lawful.")
@click.option("--scenario", default="", help="使用场景.")
@click.option("--justification", default="", help="理由.")
@click.option("--contact", default="")
@click.option("--from", "period_from", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--until", "period_until", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--row-cap", type=int, default=None, help="Most rows one answer may return.")
@click.option("--quota", "quotas", multiple=True, help="e.g. queries_per_day=1000 (repeat).")
@click.option("--submit", is_flag=True, help="Submit at once (else it stays a draft).")
def apply(
    url: str,
    user: str,
    dataset: str,
    systems: tuple[str, ...],
    columns: tuple[str, ...],
    purpose: str,
    legal_basis: str,
    scenario: str,
    justification: str,
    contact: str,
    period_from: Any,
    period_until: Any,
    row_cap: int | None,
    quotas: tuple[str, ...],
    submit: bool,
) -> None:
    """Apply for a conditional dataset (有条件共享) for your department's systems."""
    body: dict[str, Any] = {
        "systems": list(systems),
        "dataset": dataset,
        "columns": _columns(columns),
        "purpose": purpose,
        "legal_basis": legal_basis,
        "scenario": scenario,
        "justification": justification,
        "contact": contact,
        "period_from": _day(period_from),
        "period_until": _day(period_until),
        "row_cap": row_cap,
        "quotas": _quotas(quotas),
    }
    headers = person_session(url, user)
    app = http("post", f"{url}/v1/applications", json=body, headers=headers)
    if submit:
        app = http("post", f"{url}/v1/applications/{app['id']}/submit", headers=headers)
    _show(app)


def _day(value: Any) -> str | None:
    return value.date().isoformat() if value is not None else None


def _step(action: str, help_text: str, *, with_reason: bool) -> None:
    """Register ``applications ACTION APP_ID`` (with ``--reason`` where the step needs
    one): the workflow steps that take nothing but the application."""

    def step(url: str, user: str, app_id: str, reason: str | None = None) -> None:
        _act(url, user, app_id, action, {} if reason is None else {"reason": reason})

    options = reason_option(step) if with_reason else step
    applications.command(action, help=help_text)(
        url_option(user_option(click.argument("app_id")(options)))
    )


for _action, _help, _with_reason in (
    (
        "submit",
        "Submit a draft or a returned application: the provider's reply clock starts.",
        False,
    ),
    ("withdraw", "Withdraw your department's application (before a decision).", False),
    ("review", "Provider officer: take a submitted application under review.", False),
    (
        "return",
        "Provider officer: return for information (the applicant edits and resubmits).",
        True,
    ),
    ("revoke", "Provider officer: revoke the grant; the next query under it is refused.", True),
):
    _step(_action, _help, with_reason=_with_reason)


@person_command(applications)
@click.argument("app_id")
@click.option("--drop", "drops", multiple=True, help="dataset.table.column not granted.")
@click.option("--mask", "masks", multiple=True, help="dataset.table.column=mask (stricter).")
@click.option("--filter", "filters", multiple=True, help="dataset.table=row filter template.")
@click.option("--row-cap", type=int, default=None, help="A lower row cap.")
@click.option("--until", "period_until", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--quota", "quotas", multiple=True, help="A lower (or added) quota, NAME=N.")
@click.option("--reason", default=None, help="Optional note.")
@click.option("--arbitrate", is_flag=True, help="Coordinator: arbitrate an escalated one.")
def approve(
    url: str,
    user: str,
    app_id: str,
    drops: tuple[str, ...],
    masks: tuple[str, ...],
    filters: tuple[str, ...],
    row_cap: int | None,
    period_until: Any,
    quotas: tuple[str, ...],
    reason: str | None,
    arbitrate: bool,
) -> None:
    """Approve, possibly narrower: drop columns, stricter masks, a row filter, a lower cap
    or quota, a shorter period. The grant takes effect at once in every gateway."""
    narrowing = {
        "drop_columns": list(drops),
        "masks": _pairs(masks, "--mask"),
        "row_filters": _pairs(filters, "--filter"),
        "row_cap": row_cap,
        "period_until": _day(period_until),
        "quotas": _quotas(quotas),
    }
    action = "arbitrate_approve" if arbitrate else "approve"
    _act(url, user, app_id, action, {"reason": reason, "narrowing": narrowing})


@person_command(applications)
@click.argument("app_id")
@reason_option
@click.option("--arbitrate", is_flag=True, help="Coordinator: arbitrate an escalated one.")
def refuse(url: str, user: str, app_id: str, reason: str, arbitrate: bool) -> None:
    """Refuse, with the reason the applicant is told."""
    _act(url, user, app_id, "arbitrate_refuse" if arbitrate else "refuse", {"reason": reason})


@person_command(applications)
@click.argument("app_id")
@click.argument("text")
def comment(url: str, user: str, app_id: str, text: str) -> None:
    """Add a comment to the application's history."""
    _act(url, user, app_id, "comment", {"reason": text})


@person_command(applications)
@click.argument("app_id")
@click.option("--until", "period_until", type=click.DateTime(["%Y-%m-%d"]), default=None)
def renew(url: str, user: str, app_id: str, period_until: Any) -> None:
    """Renew an active application before it expires: a new draft continuing it."""
    headers = person_session(url, user)
    body = {"period_until": _day(period_until)}
    _show(http("post", f"{url}/v1/applications/{app_id}/renewal", json=body, headers=headers))


@person_command(applications)
def grants(url: str, user: str) -> None:
    """Grants of your department and on its datasets."""
    body = http("get", f"{url}/v1/grants", headers=person_session(url, user))
    for g in body["items"]:
        click.echo(
            f"{g['id']}  {g.get('state', ''):<8} {g['department']} → {g['dataset']}  "
            f"systems {','.join(g['systems'])}  until {g['valid_until'] or '-'}  "
            f"quotas {g['quotas'] or '-'}"
        )


@person_command(applications)
def quotas(url: str, user: str) -> None:
    """Quotas you may see and what is used of them this period."""
    body = http("get", f"{url}/v1/quotas", headers=person_session(url, user))
    for q in body["items"]:
        click.echo(
            f"{q['scope']:<6} {q['subject']:<28} {q['name']:<18} "
            f"{q['used']}/{q['limit']} used  resets {q['resets_at'][:19]}"
        )


@person_command(applications)
@click.option("--from", "since", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--department", default=None, help="Coordinators: one department only.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV (one row per dataset) instead of JSON.")
def statistics(
    url: str, user: str, since: Any, until: Any, department: str | None, as_csv: bool
) -> None:
    """Sharing statistics (共享绩效考核) per department and dataset; default: this month."""
    params: dict[str, Any] = {"format": "csv" if as_csv else "json"}
    for name, value in (("from", _day(since)), ("until", _day(until))):
        if value:
            params[name] = value
    if department:
        params["department"] = department
    text = http(
        "get",
        f"{url}/v1/statistics",
        params=params,
        headers=person_session(url, user),
        raw=True,
    )
    click.echo(text if as_csv else json.dumps(json.loads(text), ensure_ascii=False, indent=2))
