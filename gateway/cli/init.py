"""``gateway init DIR``: a complete, commented starting configuration (gateway/init.py)."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.errors import ConfigurationError

__all__ = ["init"]


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--backend",
    "backend_dsn",
    required=True,
    help="The database holding the tables to share: sqlite:PATH, duckdb:PATH, "
    "postgresql://USER@HOST:5432/DB[?schema=S], mysql://USER@HOST:3306/DB.",
)
@click.option("--dataset", default="shared", show_default=True, help="Dataset name.")
@click.option("--department", default="provider", show_default=True, help="Your department code.")
@click.option(
    "--consumer",
    default="consumer-app",
    show_default=True,
    help="Id of a first consumer system (a key pair is generated for it to try with).",
)
@click.option(
    "--consumer-department", default="consumer", show_default=True, help="Its department code."
)
@click.option("--purpose", default="case_review", show_default=True, help="A first purpose code.")
@click.option(
    "--table", "tables", multiple=True, help="Publish only this table (repeatable; default all)."
)
@click.option(
    "--not-shared",
    "not_shared",
    multiple=True,
    help="Publish this table as 不予共享: listed in the catalog, never served (repeatable).",
)
def init(
    directory: Path,
    backend_dsn: str,
    dataset: str,
    department: str,
    consumer: str,
    consumer_department: str,
    purpose: str,
    tables: tuple[str, ...],
    not_shared: tuple[str, ...],
) -> None:
    """Write a complete, commented starting configuration for your own database into
    DIRECTORY: catalog.toml (from the database's tables), systems.toml, policy.csv,
    backends.toml, gateway.env, the gateway's keys (keys/: token signing, audit log key,
    audit secret) and a first consumer's key pair (consumer-keys/). Never overwrites.

    \b
    Then:
      set -a; . DIRECTORY/gateway.env; set +a
      gateway check            # review catalog.toml and policy.csv first
      gateway serve
    """
    from gateway.init import InitOptions, init_deployment

    options = InitOptions(
        backend_dsn=backend_dsn,
        dataset=dataset,
        provider=department,
        consumer_department=consumer_department,
        consumer_system=consumer,
        purpose=purpose,
        tables=tables,
        not_shared=not_shared,
    )
    try:
        result = init_deployment(directory, options)
    except ConfigurationError as exc:
        raise click.ClickException(exc.detail) from exc
    names = ", ".join(t.name for t in result.tables)
    env = result.directory / "gateway.env"
    click.echo(
        f"wrote a starting configuration to {result.directory} ({len(result.tables)} tables: "
        f"{names})\n"
        "next:\n"
        "  1. review catalog.toml (sensitivity, default_mask: guessed from column names) and "
        "policy.csv\n"
        f"  2. set -a; . {env}; set +a\n"
        "  3. gateway check\n"
        "  4. gateway serve\n"
        f"  5. gateway query --system {consumer} "
        f"--key {result.directory / 'consumer-keys' / (consumer + '.key.pem')} " + _EXAMPLE_SQL
    )


_EXAMPLE_SQL = '"SELECT count(*) FROM <table>"'  # the consumer's own words: no input here
