"""``gateway keys …``: key pairs for consumer systems and the gateway, the JWKS, and the
rotation of the gateway's token-signing key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from gateway.cli.common import load, settings_from_env
from gateway.settings import Settings

__all__ = ["keys"]


@click.group()
def keys() -> None:
    """Key pairs: generate keys for consumer systems or the gateway, show the JWKS, rotate
    the gateway's token-signing key."""


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

    private, public = load(
        lambda _s: write_keypair(out_dir, name, alg),  # type: ignore[arg-type]
        _no_settings(),
    )
    click.echo(f"private key: {private}\npublic key:  {public}")


@keys.command("secret")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Key directory (default GATEWAY_KEY_DIR).",
)
def keys_secret(out_dir: Path | None) -> None:
    """Generate the pseudonym secret (pseudonym-secret.bin, 32 random bytes, mode 0600).

    Only a policy using the pseudonym mask needs it. Never overwritten: a new secret
    changes every pseudonym ever served. Back it up offline."""
    from gateway.auth.keys import write_pseudonym_secret

    settings = _no_settings()
    directory = out_dir or settings_from_env().key_dir
    path = load(lambda _s: write_pseudonym_secret(directory), settings)
    click.echo(f"pseudonym secret: {path}")


def _no_settings() -> Settings:
    """Key generation reads no setting; defaults keep a broken environment (e.g. an
    unrelated invalid GATEWAY_* value) from blocking it."""
    return Settings()


@keys.command("jwks")
def keys_jwks() -> None:
    """Print the gateway's public JWK Set (what /.well-known/jwks.json serves)."""
    from gateway.auth.keys import GatewayKeyStore

    key_dir = settings_from_env().key_dir
    store = load(lambda _settings: GatewayKeyStore.load(key_dir))
    click.echo(json.dumps(store.jwks(datetime.now(UTC)), indent=2))


@keys.command("rotate")
@click.option(
    "--key-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Key directory (default GATEWAY_KEY_DIR).",
)
@click.option(
    "--grace",
    type=click.IntRange(min=1),
    default=None,
    help="Seconds the retired key keeps verifying (default: access-token lifetime + "
    "clock skew + 3600 s for a rolling restart).",
)
@click.option(
    "--compromised",
    is_flag=True,
    help="Drop the current key at once instead of keeping it for the grace period: "
    "every token it signed stops working after the restart.",
)
def keys_rotate(key_dir: Path | None, grace: int | None, compromised: bool) -> None:
    """Rotate the gateway's token-signing key, one step.

    \b
    The next key (gateway-signing.next.key.pem) becomes the current one; the current
    key's public half stays as a previous key until its deadline; a new next key is
    generated. The first run only prepares a next key. Restart the gateway processes one
    by one afterwards: each publishes next/current/previous at /.well-known/jwks.json and
    accepts what the others sign, so no token is refused during the roll-out. See
    keys/README.md for the schedule.
    """
    from gateway.auth.keys import rotate_signing_key

    settings = settings_from_env()
    directory = key_dir or settings.key_dir
    seconds = grace or settings.access_token_ttl_s + settings.clock_skew_s + 3600
    done = load(
        lambda _s: rotate_signing_key(
            directory,
            now=datetime.now(UTC),
            grace=timedelta(seconds=seconds),
            compromised=compromised,
        ),
        settings,
    )
    if done.promoted is None:
        click.echo(
            f"prepared the next signing key {done.prepared}; it signs from the next rotation"
        )
    else:
        click.echo(f"current signing key: {done.promoted}")
        if done.retired is not None and done.retired_until is not None:
            until = done.retired_until.isoformat()
            click.echo(f"previous key {done.retired} verifies until {until}")
        else:
            click.echo("the previous key was dropped: its tokens stop working at the restart")
        click.echo(f"next signing key: {done.prepared}")
    for name in done.pruned:
        click.echo(f"deleted {name} (past its deadline)")
    click.echo("restart the gateway processes one by one to publish and use the new keys")
