"""``gateway keys …``: key pairs for consumer systems and the gateway, the JWKS."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gateway.cli.common import settings_from_env

__all__ = ["keys"]


@click.group()
def keys() -> None:
    """Key pairs: generate keys for consumer systems or the gateway, show the JWKS."""


@keys.command("generate")
@click.option("--name", required=True, help="File stem, e.g. the system id (rsj-subsidy).")
@click.option("--alg", type=click.Choice(["EdDSA", "ES256"]), default="EdDSA", show_default=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("keys"),
    show_default=True,
    help="Directory to write NAME.key.pem and NAME.pub.pem to.",
)
def keys_generate(name: str, alg: str, out_dir: Path) -> None:
    """Generate a key pair. The private key stays with its owner (mode 0600); give the
    public key to the gateway operator to register the system."""
    from gateway.auth.keys import write_keypair

    private, public = write_keypair(out_dir, name, alg)  # type: ignore[arg-type]
    click.echo(f"private key: {private}\npublic key:  {public}")


@keys.command("jwks")
def keys_jwks() -> None:
    """Print the gateway's public JWK Set (what /.well-known/jwks.json serves)."""
    from gateway.auth.keys import GatewayKeyStore

    click.echo(json.dumps(GatewayKeyStore.load(settings_from_env().key_dir).jwks(), indent=2))
