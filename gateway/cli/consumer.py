"""``gateway token``, ``gateway query``, ``gateway catalog``: act as a consumer system
against a running gateway (the demo keys by default)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from gateway.cli.common import (
    access_token,
    default_purpose,
    http,
    key_option,
    settings_from_env,
    system_option,
    url_option,
)

__all__ = ["catalog", "query", "token"]


@click.command()
@system_option
@key_option
@url_option
@click.option("--officer", default=None, help="Officer acting through the system (audited).")
def token(system: str, key: Path | None, url: str, officer: str | None) -> None:
    """Obtain an access token for SYSTEM with a signed client assertion (RFC 7523) and
    print it (for curl: TOKEN=$(gateway token --system rsj-subsidy))."""
    click.echo(access_token(system, key, url, officer))


@click.command()
@click.argument("sql")
@system_option
@click.option(
    "--purpose",
    default=None,
    help="Purpose (default: the system's only purpose; in the demo, the demo system's).",
)
@click.option("--max-rows", type=int, default=None, help="Ask for at most this many rows.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON response.")
@key_option
@url_option
def query(
    sql: str,
    system: str,
    purpose: str | None,
    max_rows: int | None,
    as_json: bool,
    key: Path | None,
    url: str,
) -> None:
    """Run SQL through the gateway as SYSTEM and print the result."""
    purpose = purpose or default_purpose(system, settings_from_env())
    if not purpose:
        raise click.UsageError(f"--purpose is required: {system} has no single purpose")
    access = access_token(system, key, url, None)
    body: dict[str, Any] = {"sql": sql, "purpose": purpose}
    if max_rows is not None:
        body["max_rows"] = max_rows
    result = http(
        "post",
        f"{url.rstrip('/')}/v1/query",
        json=body,
        headers={"Authorization": f"Bearer {access}"},
    )
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    names = [
        c["name"] + (f" [{','.join(c['masking'])}]" if c["masking"] else "")
        for c in result["columns"]
    ]
    click.echo(" | ".join(names))
    for row in result["rows"]:
        click.echo(" | ".join("NULL" if v is None else str(v) for v in row))
    click.echo(
        f"({result['row_count']} rows{', truncated by policy' if result['truncated'] else ''};"
        f" audit_id {result['audit_id']})"
    )


@click.command()
@system_option
@key_option
@url_option
def catalog(system: str, key: Path | None, url: str) -> None:
    """Show the catalog as SYSTEM sees it: datasets, fields, and its access to each."""
    access = access_token(system, key, url, None)
    doc = http(
        "get", f"{url.rstrip('/')}/v1/catalog", headers={"Authorization": f"Bearer {access}"}
    )
    for ds in doc["datasets"]:
        click.echo(
            f"{ds['name']}  {ds['title']['zh']} / {ds['title']['en']}  "
            f"[{ds['sharing_class_zh']}, {ds['grade_zh']}, owner {ds['owner']['name']['zh']}]"
        )
        for table in ds["tables"]:
            click.echo(f"  {table['name']}  max rows: {table['your_max_rows']}")
            for col in table["columns"]:
                access_text = ", ".join(f"{p}: {a}" for p, a in col["your_access"].items())
                label = f"{col['name']:22} {col['type']:8} {col['description']['zh']}"
                click.echo(f"    {label}  -> {access_text}")
