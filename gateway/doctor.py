"""``gateway doctor``: check a deployment and say what to fix.

Each check is a small function from the settings (and what earlier checks loaded) to
:class:`Finding` s; :func:`diagnose` runs them all and never raises for a misconfiguration
(that *is* the finding). A ``problem`` makes ``gateway doctor`` exit 1; a ``warning`` is
worth a look but may be intended (e.g. an audit log not created yet before the first
start). Nothing is changed: no key, file, schema or table is created, except that opening
an existing audit store is the same open the gateway does at start-up.

What is checked:

* the policy directory loads (the same validation as start-up);
* key files: present, readable, private ones not readable by group or others, the key
  directory not writable by them; each key loads;
* demo material (the public demo keys of this repository) is not in use anywhere: the
  signing key, the secrets, the audit log key, consumer systems registered with demo keys;
* the issuer: an absolute URL, https unless on loopback; when on loopback, the port the
  gateway listens on; when reachable, it serves this gateway's keys;
* each backend: reachable, and its account read-only where the database can say so
  (PostgreSQL: no superuser, no CREATE on the database or the published tables' schemas,
  no INSERT/UPDATE/DELETE/TRUNCATE on the published tables; MariaDB/MySQL: no grant but
  SELECT/SHOW VIEW/USAGE); SQLite/DuckDB files not writable by this account;
* clock skew between this host and each PostgreSQL/MariaDB server (backends and the
  administration store);
* the audit store opens with this signing key and reports its size; records past the
  retention that are not archived yet are a warning (``gateway audit archive``);
* the administration store is reachable and migrated to this gateway's newest revision;
* the state directory is writable.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx

from gateway.audit.store.protocol import AuditReader
from gateway.auth.keys import (
    PSEUDONYM_SECRET_FILE,
    PSEUDONYM_SECRET_FILE_DEMO,
    SIGNING_KEY_FILE,
    SIGNING_KEY_FILE_DEMO,
    SIGNING_KEY_FILE_NEXT,
    GatewayKeyStore,
    load_pseudonym_secret,
)
from gateway.backends import Backend, BackendConfig, open_backend
from gateway.clock import Clock, utc_now
from gateway.errors import GatewayError
from gateway.settings import Settings

__all__ = ["Finding", "Severity", "diagnose", "has_problems", "render"]

Severity = Literal["ok", "warning", "problem"]

#: Private key material the gateway may hold (production and demo names).
_PRIVATE_FILES = (
    SIGNING_KEY_FILE,
    SIGNING_KEY_FILE_NEXT,
    SIGNING_KEY_FILE_DEMO,
    PSEUDONYM_SECRET_FILE,
    PSEUDONYM_SECRET_FILE_DEMO,
    "audit-log.key",
    "audit-log.demo.key",
    "audit-secret.bin",
    "audit-secret.demo.bin",
    "witness.key",
)
#: Grants that only read (MariaDB/MySQL ``SHOW GRANTS``).
_READ_ONLY_GRANTS = frozenset({"SELECT", "USAGE", "SHOW VIEW"})
_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Finding:
    """One result: ``check`` is a stable code (``keys.permissions``), ``message`` what
    was found, ``fix`` what to do about it (empty for ``ok``)."""

    check: str
    severity: Severity
    message: str
    fix: str = ""


def has_problems(findings: Iterable[Finding]) -> bool:
    return any(f.severity == "problem" for f in findings)


def render(findings: Iterable[Finding]) -> str:
    """Plain text, one finding a line, with its fix indented below."""
    lines = []
    for f in findings:
        lines.append(f"{f.severity.upper():8} {f.check}: {f.message}")
        if f.fix:
            lines.append(f"{'':8} fix: {f.fix}")
    return "\n".join(lines)


def diagnose(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    probe_issuer: bool = True,
    open_backends: Callable[[BackendConfig], Backend] = open_backend,
) -> list[Finding]:
    """Run every check on the deployment ``settings`` describe. ``clock`` is this host's
    clock (compared with the database servers'); ``probe_issuer`` fetches the issuer's
    JWKS over the network."""
    findings: list[Finding] = []
    findings += check_state_dir(settings.state_dir)
    findings += check_key_files(settings.key_dir)
    keystore, more = load_keys(settings.key_dir)
    findings += more
    findings += check_issuer(settings, keystore, probe=probe_issuer)
    try:
        from gateway.wiring import load_policy_bundle

        bundle = load_policy_bundle(settings)
    except GatewayError as exc:
        findings.append(
            Finding(
                "policy.load",
                "problem",
                f"the policy directory {settings.policy_dir} does not load: {exc.detail}",
                "fix the file named above; `gateway check` lints the whole directory",
            )
        )
        bundle = None
    if bundle is not None:
        findings.append(Finding("policy.load", "ok", f"{settings.policy_dir} loads"))
        findings += check_demo_systems(
            {sid: set(s.keys) for sid, s in bundle.registry.systems.items()}, demo_key_ids()
        )
        published = {
            name: tuple(
                table.source
                for ds in bundle.catalog.datasets.values()
                if ds.backend == name
                for table in ds.tables.values()
            )
            for name in bundle.backends
        }
        for name, config in bundle.backends.items():
            findings += check_backend(config, published[name], open_backends, clock, settings)
    findings += check_audit_store(settings, clock)
    findings += check_admin_store(settings, clock)
    return findings


# ------------------------------------------------------------------------- files, keys


def check_state_dir(state_dir: Path) -> list[Finding]:
    if not state_dir.exists():
        return [
            Finding(
                "state.dir",
                "warning",
                f"{state_dir} does not exist yet (the gateway creates it at start)",
                "create it, owned by the gateway's account, on a persistent volume",
            )
        ]
    if not state_dir.is_dir() or not os.access(state_dir, os.W_OK | os.X_OK):
        return [
            Finding(
                "state.dir",
                "problem",
                f"{state_dir} is not a directory this account can write to",
                "give the gateway's account write access (it is the only writable path)",
            )
        ]
    return [Finding("state.dir", "ok", f"{state_dir} is writable")]


def check_key_files(key_dir: Path) -> list[Finding]:
    """Presence and permissions of the key files (not their contents)."""
    if not key_dir.is_dir():
        return [
            Finding(
                "keys.dir",
                "problem",
                f"the key directory {key_dir} does not exist",
                "set GATEWAY_KEY_DIR; see keys/README.md for what it holds",
            )
        ]
    findings = []
    mode = stat.S_IMODE(key_dir.stat().st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        findings.append(
            Finding(
                "keys.permissions",
                "problem",
                f"{key_dir} is writable by group or others (mode {mode:04o}): anyone "
                "who can write there can replace the gateway's keys",
                f"chmod 700 {key_dir}",
            )
        )
    for name in _PRIVATE_FILES:
        path = key_dir / name
        if not path.exists():
            continue
        file_mode = stat.S_IMODE(path.stat().st_mode)
        if not os.access(path, os.R_OK):
            findings.append(
                Finding(
                    "keys.readable",
                    "problem",
                    f"{path} is not readable by this account",
                    "run the gateway (and doctor) as the account that owns the keys",
                )
            )
        # Group access is fine when the group is this account's own (a Kubernetes
        # Secret mounted with fsGroup and mode 0440); anyone else's is not.
        own_group = path.stat().st_gid == os.getegid()
        if file_mode & stat.S_IRWXO or (file_mode & stat.S_IRWXG and not own_group):
            findings.append(
                Finding(
                    "keys.permissions",
                    "problem",
                    f"{path} is accessible to others or another group (mode {file_mode:04o})",
                    f"chmod 600 {path}",
                )
            )
    if not findings:
        findings.append(Finding("keys.permissions", "ok", f"{key_dir}: private files are private"))
    return findings


def load_keys(key_dir: Path) -> tuple[GatewayKeyStore | None, list[Finding]]:
    """Load every key the gateway loads at start; demo material is a problem."""
    from gateway.audit.evidence import load_audit_secret
    from gateway.audit.signing import load_log_signer

    findings: list[Finding] = []
    keystore: GatewayKeyStore | None = None
    try:
        keystore = GatewayKeyStore.load(key_dir)
    except GatewayError as exc:
        findings.append(
            Finding(
                "keys.signing",
                "problem",
                exc.detail,
                "gateway keys generate --name gateway-signing --out <GATEWAY_KEY_DIR>",
            )
        )
    else:
        if keystore.is_demo:
            findings.append(
                Finding(
                    "keys.demo",
                    "problem",
                    f"the signing key is the public demo key ({SIGNING_KEY_FILE_DEMO}): "
                    "anyone can sign access tokens with it",
                    "generate a production key (keys/README.md) and remove every "
                    "*.demo.* file from the key directory",
                )
            )
        else:
            findings.append(Finding("keys.signing", "ok", f"signing key {keystore.kid}"))
    loaders: list[tuple[str, Callable[[Path], object], str]] = [
        ("keys.pseudonym", load_pseudonym_secret, "create pseudonym-secret.bin (keys/README.md)"),
        ("keys.audit_secret", load_audit_secret, "gateway audit init-key --origin …"),
        ("keys.audit_log", load_log_signer, "gateway audit init-key --origin …"),
    ]
    for check, loader, fix in loaders:
        try:
            loaded = loader(key_dir)
        except GatewayError as exc:
            findings.append(Finding(check, "problem", exc.detail, fix))
            continue
        origin = getattr(loaded, "origin", "")
        findings.append(Finding(check, "ok", f"loads{f' (origin {origin})' if origin else ''}"))
    demo_files = sorted(p.name for p in key_dir.glob("*.demo.*")) if key_dir.is_dir() else []
    if demo_files:
        findings.append(
            Finding(
                "keys.demo",
                "problem",
                "demo key material in the key directory: " + ", ".join(demo_files),
                "these keys are published in the repository: replace them and delete "
                "the files (keys/README.md, Production keys)",
            )
        )
    return keystore, findings


#: The repository's published demo keys (keys/demo next to the package).
DEMO_KEY_DIR = Path(__file__).resolve().parents[1] / "keys" / "demo"


def demo_key_ids(demo_dir: Path = DEMO_KEY_DIR) -> set[str]:
    """Key ids (RFC 7638 thumbprints) of the demo public keys published in this repository.

    Policy versions carry public keys inline (a version is self-contained), so a key's file
    name no longer tells that it is a demo key; its thumbprint does."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from gateway.auth.keys import jwk_thumbprint

    ids = set()
    for pem in sorted(demo_dir.glob("*.demo.pub.pem")) if demo_dir.is_dir() else []:
        ids.add(jwk_thumbprint(load_pem_public_key(pem.read_bytes())))  # type: ignore[arg-type]
    return ids


def check_demo_systems(key_ids: Mapping[str, set[str]], demo_ids: set[str]) -> list[Finding]:
    """Consumer systems whose registered public key is a demo key of this repository."""
    demo = sorted(system for system, kids in key_ids.items() if kids & demo_ids)
    if demo:
        return [
            Finding(
                "systems.demo_keys",
                "problem",
                "systems registered with public demo keys, whose private halves are "
                "published: " + ", ".join(demo),
                "register each system's own public key (gateway systems register) and "
                "remove the demo systems from systems.toml",
            )
        ]
    return [Finding("systems.demo_keys", "ok", "no system uses a demo key")]


# ------------------------------------------------------------------------------ issuer


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_issuer(
    settings: Settings, keystore: GatewayKeyStore | None, *, probe: bool
) -> list[Finding]:
    issuer = settings.issuer
    parts = urlsplit(issuer)
    host = parts.hostname or ""
    if parts.scheme not in {"http", "https"} or not host or parts.query or parts.fragment:
        return [
            Finding(
                "issuer.url",
                "problem",
                f"GATEWAY_ISSUER {issuer!r} is not an absolute http(s) URL",
                "set GATEWAY_ISSUER to the public URL consumers use, e.g. "
                "https://gateway.example.gov.cn",
            )
        ]
    findings: list[Finding] = []
    if parts.scheme == "http" and not _is_loopback(host):
        findings.append(
            Finding(
                "issuer.url",
                "problem",
                f"GATEWAY_ISSUER {issuer} is plain http on a non-loopback host: tokens "
                "and client assertions would cross the network in the clear",
                "terminate TLS in front of the gateway (deploy/README.md) and set "
                "GATEWAY_ISSUER to its https URL",
            )
        )
    elif _is_loopback(host) and (parts.port or 80) != settings.port:
        findings.append(
            Finding(
                "issuer.url",
                "problem",
                f"GATEWAY_ISSUER {issuer} names port {parts.port or 80}, but the gateway "
                f"listens on {settings.host}:{settings.port}: client assertions name the "
                "issuer, so they would be refused",
                "make GATEWAY_ISSUER the URL the gateway is reached at",
            )
        )
    else:
        findings.append(Finding("issuer.url", "ok", f"{issuer}"))
    if probe and keystore is not None:
        findings.append(_probe_issuer(issuer, keystore))
    return findings


def _probe_issuer(issuer: str, keystore: GatewayKeyStore) -> Finding:
    url = issuer.rstrip("/") + "/.well-known/jwks.json"
    try:
        resp = httpx.get(url, timeout=_TIMEOUT_S)
        kids = {k.get("kid") for k in resp.json().get("keys", [])} if resp.is_success else set()
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        return Finding(
            "issuer.reachable",
            "warning",
            f"{url} could not be read from here ({type(exc).__name__}); if the gateway "
            "runs, check that this URL reaches it",
        )
    if keystore.kid not in kids:
        return Finding(
            "issuer.keys",
            "problem",
            f"{url} does not publish this key directory's signing key {keystore.kid}: "
            "the issuer URL reaches another gateway, or one with other keys",
            "point GATEWAY_ISSUER at this gateway, or give every replica the same keys",
        )
    return Finding("issuer.keys", "ok", f"{url} publishes signing key {keystore.kid}")


# ---------------------------------------------------------------------------- backends


def check_backend(
    config: BackendConfig,
    tables: tuple[str, ...],
    open_backends: Callable[[BackendConfig], Backend],
    clock: Clock,
    settings: Settings,
) -> list[Finding]:
    check = f"backend.{config.name}"
    try:
        backend = open_backends(config)
    except GatewayError as exc:
        return [Finding(check, "problem", f"cannot be opened: {exc.detail}", "fix its DSN")]
    try:
        try:
            backend.ping()
        except GatewayError as exc:
            return [
                Finding(
                    check,
                    "problem",
                    f"unreachable ({exc.internal_detail or exc.detail})",
                    "check its DSN (backends.toml or GATEWAY_BACKEND_<NAME>_DSN), the "
                    "server and the network path",
                )
            ]
        findings = [Finding(check, "ok", f"reachable ({backend.kind})")]
        if backend.kind == "postgres":
            findings += _postgres_read_only(backend, tables, check)
            findings += _skew(
                check,
                _epoch(backend, "SELECT EXTRACT(EPOCH FROM clock_timestamp())"),
                clock,
                settings,
            )
        elif backend.kind == "mysql":
            findings += _mysql_read_only(backend, check)
            findings += _skew(
                check, _epoch(backend, "SELECT UNIX_TIMESTAMP(NOW(6))"), clock, settings
            )
        else:
            findings += _file_read_only(config, check)
        return findings
    finally:
        backend.close()


def _rows(backend: Backend, sql: str) -> list[tuple[object, ...]]:
    return backend.execute(sql, max_rows=1000, timeout_s=_TIMEOUT_S).rows


def _epoch(backend: Backend, sql: str) -> float | None:
    try:
        rows = _rows(backend, sql)
    except GatewayError:
        return None
    if not rows:
        return None
    try:
        return float(rows[0][0])  # type: ignore[arg-type]  # Decimal, float or int
    except (TypeError, ValueError):
        return None


def _skew(
    check: str, server_epoch: float | None, clock: Clock, settings: Settings
) -> list[Finding]:
    if server_epoch is None:
        return [Finding(f"{check}.clock", "warning", "could not read the server's clock")]
    skew = clock().timestamp() - server_epoch
    limit = settings.clock_skew_s
    if abs(skew) > limit:
        return [
            Finding(
                f"{check}.clock",
                "problem",
                f"this host's clock is {skew:+.1f} s off the database server's (tolerated: "
                f"{limit} s): token lifetimes, grant expiries and audit times disagree",
                "synchronise both with NTP (chrony); do not raise GATEWAY_CLOCK_SKEW",
            )
        ]
    severity: Severity = "warning" if abs(skew) > 1.0 else "ok"
    return [Finding(f"{check}.clock", severity, f"clock skew {skew:+.2f} s")]


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _postgres_read_only(backend: Backend, tables: tuple[str, ...], check: str) -> list[Finding]:
    try:
        [(superuser, can_create, user)] = _rows(
            backend,
            "SELECT r.rolsuper, has_database_privilege(current_database(), 'CREATE'), "
            "current_user FROM pg_roles r WHERE r.rolname = current_user",
        )
        writable: list[str] = []
        schemas: set[str] = set()
        for source in tables:
            # The table names come from the operator's catalog, quoted as a string literal.
            reg = f"to_regclass({_sql_text(source)})"
            rows = _rows(
                backend,
                f"SELECT has_table_privilege({reg}, 'INSERT,UPDATE,DELETE,TRUNCATE'), "  # noqa: S608
                f"n.nspname, has_schema_privilege(n.nspname, 'CREATE') "
                f"FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                f"WHERE c.oid = {reg}",
            )
            for can_write, schema, schema_create in rows:
                if can_write:
                    writable.append(source)
                if schema_create:
                    schemas.add(str(schema))
    except (GatewayError, ValueError) as exc:
        return [Finding(f"{check}.read_only", "warning", f"privileges not readable: {exc}")]
    problems = []
    if superuser:
        problems.append(f"{user} is a superuser")
    if can_create:
        problems.append(f"{user} may CREATE in the database")
    if schemas:
        problems.append(f"{user} may CREATE in schema(s) {', '.join(sorted(schemas))}")
    if writable:
        problems.append(f"{user} may write to {', '.join(sorted(writable))}")
    if problems:
        return [
            Finding(
                f"{check}.read_only",
                "problem",
                "the account is not read-only: " + "; ".join(problems),
                "use an account with SELECT on the published tables only, e.g. CREATE ROLE "
                "gateway_ro LOGIN; GRANT USAGE ON SCHEMA … TO gateway_ro; GRANT SELECT ON "
                "… TO gateway_ro; REVOKE CREATE ON DATABASE … FROM PUBLIC",
            )
        ]
    return [Finding(f"{check}.read_only", "ok", f"{user} can only read the published tables")]


def _mysql_read_only(backend: Backend, check: str) -> list[Finding]:
    try:
        grants = [str(row[0]) for row in _rows(backend, "SHOW GRANTS")]
    except GatewayError as exc:
        return [Finding(f"{check}.read_only", "warning", f"grants not readable: {exc.detail}")]
    too_much = []
    for grant in grants:
        head = grant.split(" ON ", 1)[0].removeprefix("GRANT ").strip()
        privileges = {p.strip().upper() for p in head.split(",")}
        if not privileges <= _READ_ONLY_GRANTS:
            too_much.append(grant)
    if too_much:
        return [
            Finding(
                f"{check}.read_only",
                "problem",
                "the account is not read-only: " + " | ".join(too_much),
                "use an account with SELECT on the published tables only: CREATE USER "
                "gateway_ro …; GRANT SELECT ON db.table TO gateway_ro",
            )
        ]
    return [Finding(f"{check}.read_only", "ok", "the account has read-only grants only")]


def _file_read_only(config: BackendConfig, check: str) -> list[Finding]:
    from gateway.dsn import parse_dsn

    try:
        path = parse_dsn(config.dsn, kinds={"sqlite", "duckdb"}, what=config.name).path
    except GatewayError:
        return []
    if os.access(path, os.W_OK):
        return [
            Finding(
                f"{check}.read_only",
                "warning",
                f"{path} is writable by this account (the gateway opens it read-only, "
                "but a second line of defence is cheap)",
                f"chmod a-w {path}, or give the gateway's account read access only",
            )
        ]
    return [Finding(f"{check}.read_only", "ok", f"{path} is not writable by this account")]


# ---------------------------------------------------------------------- audit, admin


def check_audit_store(settings: Settings, clock: Clock = utc_now) -> list[Finding]:
    from gateway.audit import open_audit_store
    from gateway.audit.signing import load_log_signer

    location = settings.audit_location
    if location.startswith("sqlite:") and not Path(location.removeprefix("sqlite:")).exists():
        return [
            Finding(
                "audit.store",
                "warning",
                f"{location} does not exist yet (created at the first start)",
                "if the gateway has served before, the audit log was moved or lost",
            )
        ]
    try:
        signer = load_log_signer(settings.key_dir)
        store = open_audit_store(location, signer)
    except GatewayError as exc:
        return [
            Finding(
                "audit.store",
                "problem",
                f"the audit store does not open: {exc.internal_detail or exc.detail}",
                "check GATEWAY_AUDIT_DSN and that the audit log key is the log's current "
                "key (gateway audit rotate-key changes it); nothing is served without it",
            )
        ]
    try:
        size = store.size()
        overdue = _past_retention(store, settings.audit_retention_days, clock)
    except GatewayError as exc:
        return [Finding("audit.store", "problem", f"unreadable: {exc.detail}", "check the store")]
    finally:
        store.close()
    findings = [Finding("audit.store", "ok", f"{size} records, origin {signer.origin}")]
    if overdue is not None:
        findings.append(
            Finding(
                "audit.retention",
                "warning",
                f"records from index {overdue} are older than the retention "
                f"({settings.audit_retention_days} days) and not archived",
                "run `gateway audit archive --dir DIR` (deploy/systemd/gateway-archive.timer "
                "or the k8s CronJob run it daily)",
            )
        )
    return findings


def _past_retention(store: AuditReader, days: int, clock: Clock) -> int | None:
    """The index of the first record past retention that is not archived yet, or None
    (one record is looked at: archives cover a prefix and records come in time order)."""
    from gateway.audit.archive import archivable
    from gateway.audit.record import AuditRecord, format_time

    archiver = archivable(store)
    marks = archiver.archives()
    start = marks[-1].upto if marks else 0
    if start >= archiver.size():
        return None
    first = archiver.entries(start, start + 1)[0]
    cutoff = format_time(clock() - timedelta(days=days))
    return start if AuditRecord.from_canonical(first.record).time < cutoff else None


def check_admin_store(settings: Settings, clock: Clock) -> list[Finding]:
    from gateway.admin.db import head_revision, stored_revision

    location = settings.admin_location
    try:
        revision = stored_revision(location)
    except GatewayError as exc:
        severity: Severity = "warning" if "does not exist yet" in exc.detail else "problem"
        return [
            Finding(
                "admin.store",
                severity,
                exc.internal_detail or exc.detail,
                "check GATEWAY_ADMIN_DSN (the store is created at the first start)",
            )
        ]
    head = head_revision()
    if revision != head:
        return [
            Finding(
                "admin.store",
                "problem",
                f"the administration store is at migration {revision or 'none'}, this "
                f"gateway needs {head}",
                "start the gateway once with an account allowed to create tables (it "
                "migrates at start-up), or point GATEWAY_ADMIN_DSN at the right database",
            )
        ]
    findings = [Finding("admin.store", "ok", f"migrated ({head})")]
    if location.startswith(("postgresql://", "postgres://")):
        findings += _skew("admin.store", _admin_epoch(location), clock, settings)
    return findings


def _admin_epoch(location: str) -> float | None:
    import psycopg

    from gateway.dsn import parse_dsn

    conninfo, _schema = parse_dsn(location, kinds={"postgres"}, what="admin").postgres_conninfo()
    try:
        with psycopg.connect(conninfo, connect_timeout=int(_TIMEOUT_S)) as conn:
            row = conn.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())").fetchone()
    except psycopg.Error:
        return None
    return float(row[0]) if row else None
