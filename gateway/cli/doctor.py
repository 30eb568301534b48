"""``gateway doctor``: check a deployment and print what to fix (exit 1 on problems)."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from gateway.cli.common import settings_from_env

__all__ = ["doctor"]


@click.command()
@click.option(
    "--no-probe",
    is_flag=True,
    help="Do not fetch GATEWAY_ISSUER's JWKS over the network.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="Print warnings and problems only.")
def doctor(no_probe: bool, as_json: bool, quiet: bool) -> None:
    """Check this deployment: keys and their permissions, demo keys, the issuer, each
    backend (reachable, read-only account, clock skew), the audit store, the
    administration store and the state directory. Run it as the gateway's account with
    the gateway's GATEWAY_* environment. Exit status 1 when a problem was found."""
    from gateway.doctor import diagnose, has_problems, render

    findings = diagnose(settings_from_env(), probe_issuer=not no_probe)
    shown = [f for f in findings if not quiet or f.severity != "ok"]
    if as_json:
        click.echo(json.dumps([asdict(f) for f in shown], ensure_ascii=False, indent=2))
    else:
        click.echo(render(shown))
        problems = sum(f.severity == "problem" for f in findings)
        warnings = sum(f.severity == "warning" for f in findings)
        click.echo(f"\n{problems} problem(s), {warnings} warning(s)")
    if has_problems(findings):
        raise SystemExit(1)
