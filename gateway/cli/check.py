"""``gateway check``: validate and lint a policy directory."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from gateway.cli.common import settings_from_env
from gateway.errors import ConfigurationError

__all__ = ["check"]


@click.command()
@click.option(
    "--policy-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Policy directory (default GATEWAY_POLICY_DIR or policies/).",
)
def check(policy_dir: Path | None) -> None:
    """Check a policy directory: catalog, systems, backends, casbin model and policy.

    Reports every error in one run, each with file:line and, for a misspelt name, the
    closest known one: unknown tables, columns, masks, departments, purposes, systems
    and roles, malformed lines. Exits 1 on any error. A column that no rule covers is an
    error: it would be silently denied to everyone.
    """
    from gateway.policy.check import check_policy
    from gateway.policy.lint import lint_directory
    from gateway.query.rewrite.masks import check_mask_spec
    from gateway.wiring import load_policy_bundle

    settings = settings_from_env()
    if policy_dir is not None:
        settings = settings.with_overrides(policy_dir=policy_dir)
    # Every mistake at once, with file:line, before loading stops at the first one.
    found = lint_directory(settings.policy_dir, check_mask_spec)
    for finding in found:
        click.secho(str(finding), fg="red", err=True)
    try:
        bundle = load_policy_bundle(settings)
    except ConfigurationError as exc:
        if not found:
            click.secho(f"ERROR   {exc.detail}", fg="red", err=True)
        click.echo(f"{max(len(found), 1)} error(s): the gateway would refuse to start")
        sys.exit(1)
    if found:
        click.echo(f"{len(found)} error(s)")
        sys.exit(1)
    findings = check_policy(bundle.catalog, bundle.engine, bundle.registry, datetime.now(UTC))
    for finding in findings:
        click.secho(str(finding), fg="red" if finding.severity == "error" else "yellow", err=True)
    errors = sum(f.severity == "error" for f in findings)
    click.echo(
        f"policy {bundle.version}: {len(bundle.catalog.tables())} tables, "
        f"{len(bundle.registry.all())} systems; {errors} error(s), "
        f"{len(findings) - errors} warning(s)"
    )
    sys.exit(1 if errors else 0)
