"""``gateway policy``: policy versions from the command line, through the gateway's API.

The policy files stay a source and a sink: ``import`` proposes a version from a directory
(reviewed in git first, if the department wishes), ``export`` writes a version out. Every
command signs in as a person (an officer or an administrator) and goes through the same
API, role checks and audit records as the web console: the host's files are no back door.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from gateway.cli.common import CONTEXT_SETTINGS, http, person_command, person_session

__all__ = ["policy"]

_session = person_session


def _show(version: dict[str, Any]) -> None:
    click.echo(
        f"{version['id']}  {version['state']:<10}  version {version['version'][:16]}…  "
        f"by {version['author']}  {version['created_at'][:19]}  {version['reason']}"
    )


@click.group(context_settings=CONTEXT_SETTINGS)
def policy() -> None:
    """Policy versions: list, show, import, export, approve, reject, activate, roll back.

    \b
    A typical change:
      gateway policy export active ./rules --user li.qiang     # the active files
      $EDITOR ./rules/policy.csv                              # (review in git)
      gateway policy import ./rules --user li.qiang --reason "stop sharing phone with ybj"
      gateway policy approve PV… --user ma.jun                 # two-person departments
      gateway policy activate PV… --user li.qiang
    """


@person_command(policy, "list")
@click.option("--limit", default=20, show_default=True, help="How many, newest first.")
def list_versions(url: str, user: str, limit: int) -> None:
    """Versions, newest first, with their state (active, proposed, approved, …)."""
    body = http(
        "get", f"{url}/v1/policy/versions", params={"limit": limit}, headers=_session(url, user)
    )
    for item in body["items"]:
        _show(item)


@person_command(policy)
@click.argument("change")
def show(url: str, user: str, change: str) -> None:
    """One change: who, why, and its diff from the version it was proposed on."""
    body = http("get", f"{url}/v1/policy/versions/{change}", headers=_session(url, user))
    _show(body)
    click.echo(body["diff"]["unified"] or "(no parent: the first version)")


@person_command(policy, "import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--reason", required=True, help="Why the rules change (recorded).")
@click.option(
    "--ack",
    "acks",
    multiple=True,
    help="dataset.table.column: a personal column deliberately served unmasked (repeat).",
)
@click.option("--validate-only", is_flag=True, help="Only report problems; store nothing.")
def import_(
    url: str, user: str, directory: Path, reason: str, acks: tuple[str, ...], validate_only: bool
) -> None:
    """Propose a version from DIRECTORY (catalog.toml, systems.toml, policy.csv, model.conf).

    Public-key paths in systems.toml are read relative to the directory and stored inline:
    a version is self-contained."""
    from gateway.errors import ConfigurationError
    from gateway.policy.versions import PolicySource

    try:
        source = PolicySource.from_directory(directory)
    except ConfigurationError as exc:
        raise click.ClickException(exc.detail) from exc
    body = {"files": dict(source.files), "reason": reason, "acknowledged_unmasked": list(acks)}
    headers = _session(url, user)
    if validate_only:
        result = http("post", f"{url}/v1/policy/validate", json=body, headers=headers)
        for change in result["changes"]:
            click.echo(json.dumps(change, ensure_ascii=False))
        for problem in result["problems"]:
            click.echo(problem, err=True)
        if not result["valid"]:
            raise SystemExit(1)
        click.echo(f"valid: version {result['version']}")
        return
    _show(http("post", f"{url}/v1/policy/versions", json=body, headers=headers))


@person_command(policy)
@click.argument("version")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export(url: str, user: str, version: str, directory: Path) -> None:
    """Write VERSION (a change id, a version, or 'active') into DIRECTORY."""
    from gateway.policy.versions import PolicySource

    headers = _session(url, user)
    if version == "active":
        version = http("get", f"{url}/v1/policy/versions", params={"limit": 1}, headers=headers)[
            "active"
        ]
    body = http("get", f"{url}/v1/policy/versions/{version}", headers=headers)
    directory.mkdir(parents=True, exist_ok=True)
    PolicySource(body["files"]).write_to(directory)
    click.echo(f"wrote version {body['version']} ({body['id']}) to {directory}")


def _decide(url: str, user: str, change: str, action: str, reason: str = "") -> None:
    body = http(
        "post",
        f"{url}/v1/policy/versions/{change}/{action}",
        json={"reason": reason},
        headers=_session(url, user),
    )
    _show(body)


@person_command(policy)
@click.argument("change")
def approve(url: str, user: str, change: str) -> None:
    """Approve CHANGE (the two-person rule: not its author)."""
    _decide(url, user, change, "approve")


@person_command(policy)
@click.argument("change")
@click.option("--reason", required=True, help="Why it is rejected (recorded).")
def reject(url: str, user: str, change: str, reason: str) -> None:
    """Reject CHANGE, with the reason."""
    _decide(url, user, change, "reject", reason)


@person_command(policy)
@click.argument("change")
def activate(url: str, user: str, change: str) -> None:
    """Activate CHANGE: every gateway process serves under it within a second."""
    _decide(url, user, change, "activate")


@person_command(policy)
@click.argument("version")
@click.option("--reason", required=True, help="Why (recorded).")
def rollback(url: str, user: str, version: str, reason: str) -> None:
    """Propose VERSION's rules again as a new change (then approve/activate it)."""
    _show(
        http(
            "post",
            f"{url}/v1/policy/rollback",
            json={"to": version, "reason": reason},
            headers=_session(url, user),
        )
    )
