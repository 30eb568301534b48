"""``gateway demo`` and ``gateway demo-data``: the synthetic demo world."""

from __future__ import annotations

import string
from datetime import UTC, datetime
from pathlib import Path

import click

from gateway.cli.common import settings_from_env
from gateway.cli.serve import serve_with
from gateway.errors import GatewayError

__all__ = ["demo", "demo_data"]


@click.command()
@click.option("--port", type=int, default=None, help="Port (default 8000).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.option(
    "--no-serve", is_flag=True, help="Only create the demo database and print the commands."
)
def demo(port: int | None, workers: int, no_serve: bool) -> None:
    """Create the embedded demo database (first run only) and serve it.

    The demo world: 公安局 population registry, 市场监管局 legal-person registry and
    民政局 social-assistance payments (synthetic, deterministic); consumer systems of
    other departments with their demo keys in keys/demo/; people of every role and
    sharing applications in every state (demo password: demo-password-2026).
    """
    from gateway.demo.load import ensure_demo_database
    from gateway.demo.sharing import DEMO_PASSWORD, ensure_demo_sharing

    settings = settings_from_env()
    port = port or settings.port
    dsn = f"sqlite:{settings.state_dir / 'demo.sqlite'}"
    click.echo(f"Preparing the demo database {dsn} ...", err=True)
    loaded = ensure_demo_database(dsn)
    click.echo("  created." if loaded else "  already up to date.", err=True)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    if ensure_demo_sharing(settings, now=datetime.now(UTC)):
        click.echo(
            f"  people and applications seeded into {settings.admin_location} "
            f"(demo password for every person: {DEMO_PASSWORD}).",
            err=True,
        )
    base = f"http://{settings.host}:{port}"
    # Tokens name the URL they were issued for: serve_with derives the demo's own address
    # unless GATEWAY_ISSUER says otherwise.
    click.echo(_demo_banner(base), err=True)
    if not no_serve:
        serve_with(settings, settings.host, port, workers)


def _demo_banner(base: str) -> str:
    text = (Path(__file__).parent.parent / "demo" / "banner.txt").read_text(encoding="utf-8")
    return "\n" + string.Template(text).substitute(base=base)


# ------------------------------------------------------------------------ demo data


@click.command("demo-data")
@click.argument("dsn")
@click.option("--force", is_flag=True, help="Reload even if the data is already there.")
def demo_data(dsn: str, force: bool) -> None:
    """Load the synthetic demo world into DSN (sqlite:PATH, duckdb:PATH,
    postgresql://..., mysql://...), e.g. to point the demo catalog at PostgreSQL."""
    from gateway.demo.load import ensure_demo_database, load_demo

    try:
        if force:
            load_demo(dsn)
            click.echo(f"loaded demo data into {dsn}")
        else:
            loaded = ensure_demo_database(dsn)
            click.echo(f"{'loaded' if loaded else 'already up to date:'} {dsn}")
    except GatewayError as exc:
        raise click.ClickException(exc.detail) from exc
