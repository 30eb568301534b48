"""``gateway`` — the command line of the data-sharing gateway.

Run ``gateway --help`` or ``gateway <command> --help``. Settings come from ``GATEWAY_*``
environment variables (see README "Settings"); options override them where offered.
"""

from __future__ import annotations

import json
import os
import string
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import httpx

from gateway.cli_audit import audit
from gateway.errors import ConfigurationError, GatewayError
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.audit.signing import CheckpointSigner
    from gateway.audit.store.protocol import AuditStore

DEMO_SYSTEMS = {
    "rsj-subsidy": "employment_subsidy_review",
    "rsj-portal": "employment_subsidy_review",
    "ybj-insurance": "medical_insurance_enrollment",
    "swj-tax": "tax_administration",
    "tjj-stats": "statistics",
}


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main() -> None:
    """Secure data-sharing gateway 数据共享网关.

    Consumers of one department query another department's shared datasets with SQL;
    the gateway authenticates them, masks and filters what the provider's policy says,
    and writes a tamper-evident audit record of every access.

    \b
    Quick start:
      gateway demo                      serve the embedded demo (SQLite) on 127.0.0.1:8000
      gateway query "SELECT ..." --system rsj-subsidy
      gateway check                     lint the policy directory
    """


# ----------------------------------------------------------------------------- serving


@main.command()
@click.option("--host", default=None, help="Interface to bind (GATEWAY_HOST, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (GATEWAY_PORT, default 8000).")
@click.option("--workers", type=int, default=None, help="Worker processes (GATEWAY_WORKERS).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the gateway with the configuration from GATEWAY_* variables."""
    settings = _settings()
    _serve(settings, host or settings.host, port or settings.port, workers or settings.workers)


def _serve(settings: Settings, host: str, port: int, workers: int) -> None:
    import uvicorn

    from gateway.logs import configure_logging, uvicorn_log_config
    from gateway.wiring import load_policy_bundle

    configure_logging(settings.log_level)
    try:
        load_policy_bundle(settings)  # fail before forking workers
    except ConfigurationError as exc:
        raise click.ClickException(f"configuration error: {exc.detail}") from exc
    uvicorn.run(
        "gateway.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=uvicorn_log_config(settings.log_level),
        access_log=False,
    )


@main.command()
@click.option("--port", type=int, default=None, help="Port (default 8000).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.option(
    "--no-serve", is_flag=True, help="Only create the demo database and print the commands."
)
def demo(port: int | None, workers: int, no_serve: bool) -> None:
    """Create the embedded demo database (first run only) and serve it.

    The demo world: 公安局 population registry, 市场监管局 legal-person registry and
    民政局 social-assistance payments (synthetic, deterministic), and five consumer systems
    of other departments with their demo keys in keys/demo/.
    """
    from gateway.demo.load import ensure_demo_database

    settings = _settings()
    port = port or settings.port
    dsn = f"sqlite:{settings.state_dir / 'demo.sqlite'}"
    click.echo(f"Preparing the demo database {dsn} ...", err=True)
    loaded = ensure_demo_database(dsn)
    click.echo("  created." if loaded else "  already up to date.", err=True)
    base = f"http://{settings.host}:{port}"
    if "GATEWAY_ISSUER" not in os.environ:
        # Tokens name the URL they were issued for; the workers read it from the env.
        os.environ["GATEWAY_ISSUER"] = base
        settings = settings.with_overrides(issuer=base)
    click.echo(_demo_banner(base), err=True)
    if not no_serve:
        _serve(settings, settings.host, port, workers)


def _demo_banner(base: str) -> str:
    text = (Path(__file__).parent / "demo" / "banner.txt").read_text(encoding="utf-8")
    return "\n" + string.Template(text).substitute(base=base)


# ------------------------------------------------------------------------ demo data


@main.command("demo-data")
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


# ------------------------------------------------------------------------------- keys


@main.group()
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

    click.echo(json.dumps(GatewayKeyStore.load(_settings().key_dir).jwks(), indent=2))


# ---------------------------------------------------------------------------- systems


@main.group()
def systems() -> None:
    """Registered consumer systems (policies/systems.toml)."""


@systems.command("list")
def systems_list() -> None:
    """List registered systems."""
    from gateway.wiring import load_policy_bundle

    bundle = _bundle(load_policy_bundle)
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
    "--attr", "attrs", multiple=True, help="Attribute key=value (repeatable), e.g. district=历下区."
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

    settings = _settings()
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


# ------------------------------------------------------------------ tokens and queries


def _access_token(system: str, key: Path | None, url: str, officer: str | None) -> str:
    from gateway.auth.keys import jwk_thumbprint, load_private_key
    from gateway.auth.tokens import make_client_assertion

    key_path = key or Path("keys/demo") / f"{system}.demo.key.pem"
    if not key_path.exists():
        raise click.ClickException(f"no private key at {key_path}; pass --key")
    private = load_private_key(key_path)
    alg = "EdDSA" if private.__class__.__name__.startswith("Ed25519") else "ES256"
    assertion = make_client_assertion(
        system,
        private,
        alg,
        jwk_thumbprint(private),
        f"{url.rstrip('/')}/v1/token",
        datetime.now(UTC),
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
        "client_id": system,
    }
    if officer:
        form["officer"] = officer
    resp = _http("post", f"{url.rstrip('/')}/v1/token", data=form)
    return str(resp["access_token"])


def _http(method: str, url: str, **kwargs: Any) -> Any:
    try:
        resp = httpx.request(method, url, timeout=30, **kwargs)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach the gateway at {url}: {exc}") from exc
    if resp.status_code >= 400:
        try:
            problem = resp.json()
            msg = f"{problem.get('status')} {problem.get('title')}: {problem.get('detail')}"
            if problem.get("audit_id"):
                msg += f" (audit_id {problem['audit_id']})"
        except ValueError:
            msg = f"HTTP {resp.status_code}"
        raise click.ClickException(msg)
    return resp.json()


_url_option = click.option(
    "--url",
    envvar="GATEWAY_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="Gateway base URL (GATEWAY_URL).",
)
_system_option = click.option(
    "--system", required=True, help="Consumer system id, e.g. rsj-subsidy."
)
_key_option = click.option(
    "--key",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Private key (default: keys/demo/SYSTEM.demo.key.pem).",
)


@main.command()
@_system_option
@_key_option
@_url_option
@click.option("--officer", default=None, help="Officer acting through the system (audited).")
def token(system: str, key: Path | None, url: str, officer: str | None) -> None:
    """Obtain an access token for SYSTEM with a signed client assertion (RFC 7523) and
    print it (for curl: TOKEN=$(gateway token --system rsj-subsidy))."""
    click.echo(_access_token(system, key, url, officer))


@main.command()
@click.argument("sql")
@_system_option
@click.option("--purpose", default=None, help="Purpose (default: the demo system's purpose).")
@click.option("--max-rows", type=int, default=None, help="Ask for at most this many rows.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON response.")
@_key_option
@_url_option
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
    access = _access_token(system, key, url, None)
    body: dict[str, Any] = {"sql": sql, "purpose": purpose}
    if max_rows is not None:
        body["max_rows"] = max_rows
    result = _http(
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


@main.command()
@_system_option
@_key_option
@_url_option
def catalog(system: str, key: Path | None, url: str) -> None:
    """Show the catalog as SYSTEM sees it: datasets, fields, and its access to each."""
    access = _access_token(system, key, url, None)
    doc = _http(
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


# ------------------------------------------------------------------------------ check


@main.command()
@click.option(
    "--policy-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Policy directory (default GATEWAY_POLICY_DIR or policies/).",
)
def check(policy_dir: Path | None) -> None:
    """Check a policy directory: catalog, systems, backends, casbin model and policy.

    Exits 1 on any error. A column that no rule covers is an error: it would be silently
    denied to everyone.
    """
    from gateway.policy.check import check_policy
    from gateway.wiring import load_policy_bundle

    settings = _settings()
    if policy_dir is not None:
        settings = settings.with_overrides(policy_dir=policy_dir)
    try:
        bundle = load_policy_bundle(settings)
    except ConfigurationError as exc:
        click.secho(f"ERROR   {exc.detail}", fg="red", err=True)
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


def _bundle(loader: Any) -> Any:
    try:
        return loader(_settings())
    except ConfigurationError as exc:
        raise click.ClickException(exc.detail) from exc


# ------------------------------------------------------------------------------- audit
#
# ``gateway audit verify`` and ``lookup-id`` (auditors, offline) live in cli_audit.py; the
# operator's commands below need the key directory and the audit store.


main.add_command(audit)


def _open_store(settings: Settings, signer: CheckpointSigner) -> AuditStore:
    from gateway.audit.store.open import open_audit_store

    try:
        return open_audit_store(settings.audit_location, signer)
    except GatewayError as exc:
        raise click.ClickException(exc.internal_detail or exc.detail) from exc


@audit.command("init-key")
@click.option(
    "--origin",
    required=True,
    help="Log origin = key name, e.g. audit.gateway.example.gov.cn/2026-11-23 (unique per key).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Key directory (default GATEWAY_KEY_DIR).",
)
def audit_init_key(origin: str, out_dir: Path | None) -> None:
    """Create the audit log signing key and the audit secret 创建审计日志签名密钥.

    Writes audit-log.key (private, 0600), audit-log.vkey (publish it: verifiers pin it)
    and, if missing, audit-secret.bin (keys identifier tokens and row salts; give it to
    auditors). Refuses to overwrite existing files.
    """
    from gateway.audit.evidence import AUDIT_SECRET_FILE, write_audit_secret
    from gateway.audit.signing import new_log_signer, write_log_key

    directory = out_dir or _settings().key_dir
    try:
        private, public = write_log_key(directory, new_log_signer(origin))
    except (FileExistsError, ConfigurationError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"private key: {private}\nverifier key ({public}):\n{public.read_text().strip()}")
    if not (directory / AUDIT_SECRET_FILE).exists():
        click.echo(f"audit secret: {write_audit_secret(directory)}")


@audit.command("rotate-key")
@click.option("--origin", required=True, help="Origin of the NEW key (must differ from the old).")
def audit_rotate_key(origin: str) -> None:
    """Rotate the audit signing key: a new origin, hand-over signed by both keys 轮换密钥.

    Run with the gateway stopped. Signs a final checkpoint with the old key, stores the
    hand-over note (old + new signatures) in the log, then moves the old private key aside
    (audit-log.key.retired-<n>; destroy it once the hand-over is published) and writes the
    new key in its place. Verifiers that pinned the old key accept the new one through the
    hand-over.
    """
    from gateway.audit.rotation import sign_handover
    from gateway.audit.signing import LOG_KEY_FILE, load_log_signer, new_log_signer
    from gateway.auth.keys import write_private

    settings = _settings()
    old = _bundle(lambda _s: load_log_signer(settings.key_dir))
    if origin == old.origin:
        raise click.ClickException("the new origin must differ from the current one")
    new = _bundle(lambda _s: new_log_signer(origin))
    # The new private key is on disk BEFORE the log switches to it: a log whose current
    # key nobody holds could never be appended to again.
    current = settings.key_dir / LOG_KEY_FILE
    pending = settings.key_dir / f"{LOG_KEY_FILE}.next"
    try:
        write_private(pending, (new.note_signer.encode() + "\n").encode("utf-8"))
    except FileExistsError as exc:
        raise click.ClickException(
            f"{pending} exists: an earlier rotation did not finish; check the log's key "
            "history (GET /v1/audit/keys) and move the right key in place"
        ) from exc
    store = _open_store(settings, old)
    try:
        epoch = store.rotate(new, lambda head: sign_handover(old, new, head))
    except GatewayError as exc:
        pending.unlink()
        raise click.ClickException(exc.internal_detail or exc.detail) from exc
    finally:
        store.close()
    if current.exists():
        n = 1
        while (settings.key_dir / f"{LOG_KEY_FILE}.retired-{n}").exists():
            n += 1
        current.rename(settings.key_dir / f"{LOG_KEY_FILE}.retired-{n}")
    pending.rename(current)
    current.with_suffix(".vkey").write_text(new.verifier.encode() + "\n", encoding="utf-8")
    click.echo(f"rotated at size {epoch.from_size}: {old.origin} -> {new.origin}")
    click.echo(f"new verifier key: {new.verifier.encode()}")
    click.echo(f"hand-over note:\n{epoch.handover}")


@audit.command("export")
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Where to write the evidence bundle (JSON).",
)
def audit_export(out_file: Path) -> None:
    """Export the whole log as a complete evidence bundle 导出完整审计日志.

    Every record and every stored checkpoint, with the key history. Verify it anywhere
    with: gateway audit verify FILE --key <pinned audit-log.vkey>
    """
    from gateway.audit.bundle import full_log_bundle
    from gateway.audit.signing import load_log_signer

    settings = _settings()
    store = _open_store(settings, _bundle(lambda _s: load_log_signer(settings.key_dir)))
    try:
        bundle = full_log_bundle(store)
    except GatewayError as exc:
        raise click.ClickException(exc.internal_detail or exc.detail) from exc
    finally:
        store.close()
    out_file.write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
    click.echo(f"{len(bundle['entries'])} records, {len(bundle['checkpoints']) + 1} checkpoints")


@audit.command("check")
def audit_check() -> None:
    """Check the stored log: contiguous indices, leaf hashes, stored root 检查审计库."""
    from gateway.audit.signing import load_log_signer
    from gateway.audit.store.protocol import SearchQuery

    settings = _settings()
    store = _open_store(settings, _bundle(lambda _s: load_log_signer(settings.key_dir)))
    try:
        store.check()
        click.echo(f"ok: {store.size()} records; head {store.head().checkpoint.splitlines()[1]}")
        from gateway.audit.record import format_time

        cutoff = format_time(datetime.now(UTC) - timedelta(days=settings.audit_retention_days))
        older = store.search(SearchQuery(until=cutoff, limit=1))
        click.echo(
            f"retention {settings.audit_retention_days} days: "
            + (
                f"records up to index {older[0][0]} are past it (the gateway never deletes; "
                "archive them with `gateway audit export`)"
                if older
                else "no record is past it"
            )
        )
    except GatewayError as exc:
        raise click.ClickException(exc.detail) from exc
    finally:
        store.close()


@audit.command("witness-push")
@click.option(
    "--url", required=True, help="Base URL of the witness gateway, e.g. https://gw.ybj.example"
)
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the cosigned checkpoint here (default: print it).",
)
def audit_witness_push(url: str, out_file: Path | None) -> None:
    """Have a witness cosign the latest checkpoint 请见证方联署最新检查点.

    Sends the log's latest signed checkpoint with a consistency proof from the size the
    witness last cosigned (C2SP tlog-witness; a 409 answer tells that size and the request
    is repeated). The cosigned note then verifies with
    gateway audit verify --key <log key> --checkpoint FILE --witness <witness key> --min-witnesses 1
    """
    from gateway.audit.signing import load_log_signer
    from gateway.audit.witness import add_checkpoint_body, parse_size_answer

    settings = _settings()
    store = _open_store(settings, _bundle(lambda _s: load_log_signer(settings.key_dir)))
    try:
        head = store.head()
        old, proof = 0, store.consistency_proof(0, head.size)
        for _ in range(3):
            resp = httpx.post(
                url.rstrip("/") + "/v1/witness/add-checkpoint",
                content=add_checkpoint_body(old, proof, head.checkpoint).encode("utf-8"),
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=30,
            )
            if resp.status_code == 409:
                old = parse_size_answer(resp.text)
                if old > head.size:
                    raise click.ClickException(
                        f"the witness has cosigned size {old}, beyond this log's {head.size}: "
                        "the log was cut or rolled back"
                    )
                proof = store.consistency_proof(old, head.size)
                continue
            if resp.status_code != 200:
                raise click.ClickException(
                    f"the witness refused ({resp.status_code}): {resp.text.strip()}"
                )
            cosigned = head.checkpoint + resp.text
            if out_file is None:
                click.echo(cosigned, nl=False)
            else:
                out_file.write_text(cosigned, encoding="utf-8")
                click.echo(f"cosigned checkpoint of size {head.size} written to {out_file}")
            return
        raise click.ClickException("the witness kept changing its size; try again")
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach the witness: {exc}") from exc
    finally:
        store.close()


if __name__ == "__main__":
    main()
