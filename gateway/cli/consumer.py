"""``gateway token``, ``gateway query``, ``gateway catalog``: act as a consumer system
against a running gateway (the demo keys by default)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from gateway.cli.common import (
    DEMO_SYSTEMS,
    access_token,
    http,
    key_option,
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
@click.option("--purpose", default=None, help="Purpose (default: the demo system's purpose).")
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
    purpose = purpose or DEMO_SYSTEMS.get(system)
    if not purpose:
        raise click.UsageError("--purpose is required for a non-demo system")
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


@click.group(invoke_without_command=True)
@click.option("--system", default=None, help="Consumer system id, e.g. rsj-subsidy.")
@key_option
@url_option
@click.option("--search", "q", default=None, help="Only what matches these words (中文/English).")
@click.pass_context
def catalog(
    ctx: click.Context, system: str | None, key: Path | None, url: str, q: str | None
) -> None:
    """Show the catalog as SYSTEM sees it: datasets, fields, and its access to each.

    `gateway catalog import` drafts catalog entries from a live database instead."""
    if ctx.invoked_subcommand is not None:
        return
    if not system:
        raise click.UsageError("Missing option '--system' (or a subcommand: import).")
    access = access_token(system, key, url, None)
    doc = http(
        "get",
        f"{url.rstrip('/')}/v1/catalog",
        params={"q": q} if q else None,
        headers={"Authorization": f"Bearer {access}"},
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


@catalog.command("import")
@click.option(
    "--dsn",
    required=True,
    help="The database to read (sqlite:…, postgresql://…, mysql://…, duckdb:…).",
)
@click.option(
    "--backend", "backend_name", required=True, help="The backend's name in backends.toml."
)
@click.option("--dataset", required=True, help="Name of the new dataset (lower-case identifier).")
@click.option("--owner", required=True, help="Department code of the provider (catalog.toml).")
@click.option("--table", "only", multiple=True, help="Only these tables (repeat; default: all).")
@click.option(
    "--sample", default=20, show_default=True, help="Values per text column looked at (0: none)."
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the draft here (default: standard output).",
)
def catalog_import(
    dsn: str,
    backend_name: str,
    dataset: str,
    owner: str,
    only: tuple[str, ...],
    sample: int,
    output: Path | None,
) -> None:
    """Draft catalog.toml entries for the tables of a live database.

    Reads tables, columns, types and comments; looks at up to --sample values of each text
    column, in memory only, to recognise 公民身份号码, mobile numbers, bank cards and
    统一社会信用代码, and suggests a sensitivity and mask for each column (names and
    addresses by column name or comment). No value is written anywhere. Paste the draft
    into catalog.toml, review it, and give each column a rule in policy.csv: until then
    `gateway check` reports every uncovered column and nothing is shared.
    """
    from gateway.catalog.introspect import (
        draft_toml,
        gateway_type,
        open_reader,
        read_schema,
        sample_kinds,
        suggest,
    )
    from gateway.errors import GatewayError

    wanted = {t.lower() for t in only}
    drafted = []
    try:
        with open_reader(dsn) as reader:
            for table in read_schema(reader):
                if wanted and table.name.lower() not in wanted:
                    continue
                columns = []
                for column in table.columns:
                    kinds: dict[str, int] = {}
                    looked = 0
                    if sample and gateway_type(column.db_type) == "text":
                        kinds, looked = sample_kinds(reader, table.name, column.name, n=sample)
                    columns.append((column, suggest(column, kinds, looked)))
                drafted.append((table, columns))
    except GatewayError as exc:
        raise click.ClickException(f"{exc.detail} {exc.internal_detail or ''}") from exc
    except Exception as exc:  # a driver's own error: say it, no traceback
        raise click.ClickException(f"cannot read the schema: {exc}") from exc
    if not drafted:
        raise click.ClickException("no tables found (check --dsn and --table)")
    text = draft_toml(dataset, owner, backend_name, drafted)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {len(drafted)} table(s) to {output}", err=True)
