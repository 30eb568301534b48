"""``gateway accounts``: people's accounts, through the gateway's API.

Every command signs in as an administrator (``--user``) and goes through the same API,
role checks and audit records as the web console.
"""

from __future__ import annotations

import os
from typing import Any

import click

from gateway.cli.common import CONTEXT_SETTINGS, http, person_command, person_session

__all__ = ["accounts"]

_ROLES = ("applicant", "provider_officer", "coordinator", "auditor", "administrator")


def _show(account: dict[str, Any]) -> None:
    flags = [account["status"]]
    if account.get("totp_enabled"):
        flags.append("totp")
    if account.get("locked_until"):
        flags.append(f"locked until {account['locked_until'][:19]}")
    systems = ",".join(account["systems"]) or "-"
    click.echo(
        f"{account['username']:<16} {account['department']:<6} "
        f"{','.join(account['roles']):<28} systems {systems:<24} {' '.join(flags)}  "
        f"{account['display_name']}"
    )


def _new_password(username: str) -> str:
    return os.environ.get("GATEWAY_NEW_PASSWORD") or click.prompt(
        f"New password for {username}", hide_input=True, confirmation_prompt=True
    )


@click.group(context_settings=CONTEXT_SETTINGS)
def accounts() -> None:
    """People's accounts (administrators): list, show, create, change, passwords, TOTP.

    People are not systems: an account signs in with a password (Argon2id) and an
    optional TOTP code, and holds roles — applicant (申请人), provider_officer
    (提供方安全员), coordinator (数据局), auditor (审计员), administrator (管理员).
    An administrator manages accounts but cannot decide applications or touch audit
    records. Every change is an audit record.

    \b
    Examples:
      gateway accounts list --user admin
      gateway accounts create li.qiang --name 李强 --department gaj \\
          --role provider_officer --user admin
      gateway accounts change zhang.wei --system rsj-subsidy --system rsj-portal --user admin
      gateway accounts disable zhang.wei --user admin
    """


@person_command(accounts, "list")
@click.option("--department", default=None, help="Only this department's accounts.")
def list_accounts(url: str, user: str, department: str | None) -> None:
    """Every account: username, department, roles, systems, status."""
    params = {"department": department} if department else {}
    body = http("get", f"{url}/v1/accounts", params=params, headers=person_session(url, user))
    for account in body["accounts"]:
        _show(account)


@person_command(accounts)
@click.argument("username")
def show(url: str, user: str, username: str) -> None:
    """One account."""
    _show(http("get", f"{url}/v1/accounts/{username}", headers=person_session(url, user)))


@person_command(accounts)
@click.argument("username")
@click.option("--name", "display_name", required=True, help="The person's name (显示名).")
@click.option("--department", required=True, help="Department code from catalog.toml.")
@click.option(
    "--role", "roles", multiple=True, required=True, type=click.Choice(_ROLES), help="Repeat."
)
@click.option(
    "--system", "systems", multiple=True, help="A system the person applies for (repeat)."
)
@click.option("--contact", default="", help="Phone or e-mail shown on applications.")
def create(
    url: str,
    user: str,
    username: str,
    display_name: str,
    department: str,
    roles: tuple[str, ...],
    systems: tuple[str, ...],
    contact: str,
) -> None:
    """Create USERNAME. The password is read from GATEWAY_NEW_PASSWORD or asked twice."""
    headers = person_session(url, user)
    body = {
        "username": username,
        "display_name": display_name,
        "department": department,
        "roles": list(roles),
        "systems": list(systems),
        "contact": contact,
        "password": _new_password(username),
    }
    _show(http("post", f"{url}/v1/accounts", json=body, headers=headers))


@person_command(accounts)
@click.argument("username")
@click.option("--role", "roles", multiple=True, type=click.Choice(_ROLES), help="Replaces all.")
@click.option("--system", "systems", multiple=True, help="Replaces all (repeat).")
@click.option("--name", "display_name", default=None)
@click.option("--contact", default=None)
def change(
    url: str,
    user: str,
    username: str,
    roles: tuple[str, ...],
    systems: tuple[str, ...],
    display_name: str | None,
    contact: str | None,
) -> None:
    """Change USERNAME's roles, systems, name or contact (what is given replaces)."""
    body: dict[str, Any] = {"display_name": display_name, "contact": contact}
    if roles:
        body["roles"] = list(roles)
    if systems:
        body["systems"] = list(systems)
    headers = person_session(url, user)
    _show(http("patch", f"{url}/v1/accounts/{username}", json=body, headers=headers))


def _set_status(url: str, user: str, username: str, status: str) -> None:
    headers = person_session(url, user)
    body = {"status": status}
    _show(http("patch", f"{url}/v1/accounts/{username}", json=body, headers=headers))


@person_command(accounts)
@click.argument("username")
def disable(url: str, user: str, username: str) -> None:
    """Disable USERNAME: it cannot sign in, and its sessions end at once."""
    _set_status(url, user, username, "disabled")


@person_command(accounts)
@click.argument("username")
def enable(url: str, user: str, username: str) -> None:
    """Enable USERNAME again."""
    _set_status(url, user, username, "active")


@person_command(accounts, "set-password")
@click.argument("username")
def set_password(url: str, user: str, username: str) -> None:
    """Set USERNAME's password (GATEWAY_NEW_PASSWORD or asked); its sessions end."""
    headers = person_session(url, user)
    body = {"password": _new_password(username)}
    http("post", f"{url}/v1/accounts/{username}/password", json=body, headers=headers)
    click.echo(f"password of {username} set; its sessions ended")


@person_command(accounts, "remove-totp")
@click.argument("username")
def remove_totp(url: str, user: str, username: str) -> None:
    """Remove USERNAME's second factor (a lost device); it enrols again after sign-in."""
    headers = person_session(url, user)
    _show(http("post", f"{url}/v1/accounts/{username}/totp/remove", headers=headers))
