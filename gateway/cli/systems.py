"""``gateway systems …``: the registered consumer systems (policies/systems.toml)."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.common import load, settings_from_env
from gateway.errors import ConfigurationError

__all__ = ["systems"]


@click.group()
def systems() -> None:
    """Registered consumer systems (policies/systems.toml)."""


@systems.command("list")
def systems_list() -> None:
    """List registered systems."""
    from gateway.wiring import load_policy_bundle

    bundle = load(load_policy_bundle)
    for s in bundle.registry.all():
        attrs = ", ".join(f"{k}={v}" for k, v in sorted(s.attributes.items()))
        click.echo(
            f"{s.system_id:16} {s.department:6} {s.status:9} {s.name.zh}  [{attrs}]  "
            f"purposes: {', '.join(sorted(s.purposes))}"
        )


@systems.command("register")
@click.option("--id", "system_id", required=True, help="System id (also its OAuth client_id).")
@click.option("--department", required=True, help="Department code from catalog.toml.")
@click.option("--name-zh", required=True)
@click.option("--name-en", required=True)
@click.option(
    "--attr",
    "--attribute",
    "attrs",
    multiple=True,
    help="Attribute key=value (repeatable), e.g. district=历下区.",
)
@click.option(
    "--purpose", "purposes", multiple=True, required=True, help="Entitled purpose (repeatable)."
)
@click.option("--public-key", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--alg", type=click.Choice(["EdDSA", "ES256"]), default="EdDSA", show_default=True)
def systems_register(
    system_id: str,
    department: str,
    name_zh: str,
    name_en: str,
    attrs: tuple[str, ...],
    purposes: tuple[str, ...],
    public_key: Path,
    alg: str,
) -> None:
    """Register a consumer system with its public key. Policies (policy.csv) still decide
    what it may see; until then it sees nothing."""
    from gateway.auth.systems import register_system
    from gateway.catalog import load_catalog

    settings = settings_from_env()
    catalog = load_catalog(settings.policy_dir / "catalog.toml")
    attributes = {}
    for item in attrs:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="--attr")
        attributes[key.strip()] = value.strip()
    try:
        system = register_system(
            settings.policy_dir / "systems.toml",
            system_id,
            department,
            name_zh,
            name_en,
            attributes,
            purposes,
            public_key,
            alg,  # type: ignore[arg-type]
            known_departments=catalog.departments.keys(),
            known_purposes=catalog.purposes.keys(),
        )
    except ConfigurationError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(
        f"registered {system.system_id} ({system.department}); kid(s): " + ", ".join(system.keys)
    )
