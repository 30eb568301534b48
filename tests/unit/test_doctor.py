"""``gateway doctor`` finds each of a list of planted misconfigurations, and nothing in a
clean deployment: fresh production keys with 0600 files, systems registered with their
own keys, a reachable backend, an audit store and a migrated administration store."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from click.testing import CliRunner

from gateway.admin.db import open_admin_db
from gateway.audit import open_audit_store
from gateway.audit.evidence import write_audit_secret
from gateway.audit.signing import load_log_signer, new_log_signer, write_log_key
from gateway.auth.keys import write_keypair, write_pseudonym_secret
from gateway.cli import main
from gateway.doctor import Finding, diagnose, has_problems
from gateway.settings import Settings
from tests.conftest import ROOT, Scratch, mysql_connect, run_scoped

SYSTEM_KEY = re.compile(
    r'alg = "(EdDSA|ES256)"\npublic_key = "keys/demo/([a-z-]+)\.demo\.pub\.pem"'
)


@dataclass
class Deployment:
    """A clean deployment in a temporary directory, as ``GATEWAY_*`` variables."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    def settings(self, **changes: str) -> Settings:
        return Settings.from_env(self.env | changes)

    def findings(self, clock_offset_s: float = 0.0, **changes: str) -> list[Finding]:
        def clock() -> datetime:
            return datetime.now(UTC) + timedelta(seconds=clock_offset_s)

        return diagnose(self.settings(**changes), clock=clock, probe_issuer=False)


def _problems(findings: list[Finding]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in findings:
        if f.severity == "problem":
            found.setdefault(f.check, []).append(f.message)
    return found


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    root = tmp_path_factory.mktemp("deployment")
    keys = root / "keys"
    write_keypair(keys, "gateway-signing", "EdDSA")
    write_pseudonym_secret(keys)
    write_log_key(keys, new_log_signer("audit.doctor.test/2026-12-01"))
    write_audit_secret(keys)
    keys.chmod(0o700)
    # The demo policies, each system registered with a key of its own.
    shutil.copytree(ROOT / "policies", root / "policies")
    systems = root / "policies" / "systems.toml"

    def own_key(match: re.Match[str]) -> str:
        alg, system = match.group(1), match.group(2)
        write_keypair(root / "system-keys", system, alg)  # type: ignore[arg-type]
        return f'alg = "{alg}"\npublic_key = "system-keys/{system}.pub.pem"'

    systems.write_text(SYSTEM_KEY.sub(own_key, systems.read_text("utf-8")), "utf-8")
    state = root / "state"
    state.mkdir()
    backend = state / "data.sqlite"
    with sqlite3.connect(backend) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
    env = {
        "GATEWAY_POLICY_DIR": str(root / "policies"),
        "GATEWAY_KEY_DIR": str(keys),
        "GATEWAY_STATE_DIR": str(state),
        "GATEWAY_ISSUER": "http://127.0.0.1:8123",
        "GATEWAY_PORT": "8123",
        "GATEWAY_BACKEND_DEMO_DSN": f"sqlite:{backend}",
    }
    settings = Settings.from_env(env)
    open_audit_store(settings.audit_location, load_log_signer(keys)).close()
    open_admin_db(settings.admin_location).close()
    return Deployment(root, env)


def test_a_clean_deployment_has_no_problem(deployment: Deployment) -> None:
    findings = deployment.findings()
    assert not has_problems(findings), _problems(findings)
    checks = {f.check for f in findings if f.severity == "ok"}
    assert {
        "keys.signing",
        "keys.permissions",
        "issuer.url",
        "systems.demo_keys",
        "backend.demo",
        "audit.store",
        "admin.store",
        "state.dir",
    } <= checks
    result = CliRunner().invoke(main, ["doctor", "--no-probe"], env=deployment.env)
    assert result.exit_code == 0, result.output
    assert "0 problem(s)" in result.output


@pytest.fixture
def copy(deployment: Deployment, tmp_path: Path) -> Iterator[Deployment]:
    """A copy of the clean deployment to break."""
    root = tmp_path / "d"
    shutil.copytree(deployment.root, root)
    env = {k: v.replace(str(deployment.root), str(root)) for k, v in deployment.env.items()}
    yield Deployment(root, env)


def test_the_demo_keys(copy: Deployment) -> None:
    found = _problems(copy.findings(GATEWAY_KEY_DIR=str(ROOT / "keys" / "demo")))
    assert "keys.demo" in found
    assert any("public demo key" in m for m in found["keys.demo"])


def test_a_private_key_readable_by_others(copy: Deployment) -> None:
    (copy.root / "keys" / "gateway-signing.key.pem").chmod(0o644)
    found = _problems(copy.findings())
    assert any("gateway-signing.key.pem" in m and "0644" in m for m in found["keys.permissions"])


def test_a_private_key_readable_by_another_group(copy: Deployment) -> None:
    key = copy.root / "keys" / "pseudonym-secret.bin"
    key.chmod(0o640)
    # Readable by the gateway's own group (a Kubernetes Secret with fsGroup): fine.
    assert "keys.permissions" not in _problems(copy.findings())
    os.chown(key, -1, os.getegid() + 1)
    found = _problems(copy.findings())
    assert any("pseudonym-secret.bin" in m for m in found["keys.permissions"])


def test_a_key_directory_writable_by_others(copy: Deployment) -> None:
    (copy.root / "keys").chmod(0o777)
    found = _problems(copy.findings())
    assert any("writable by group or others" in m for m in found["keys.permissions"])


def test_a_missing_pseudonym_secret(copy: Deployment) -> None:
    (copy.root / "keys" / "pseudonym-secret.bin").unlink()
    assert "keys.pseudonym" in _problems(copy.findings())


def test_an_issuer_in_plain_http_on_the_network(copy: Deployment) -> None:
    found = _problems(copy.findings(GATEWAY_ISSUER="http://gateway.example.gov.cn"))
    assert any("plain http" in m for m in found["issuer.url"])


def test_an_issuer_that_is_not_where_the_gateway_listens(copy: Deployment) -> None:
    found = _problems(copy.findings(GATEWAY_ISSUER="http://127.0.0.1:9000"))
    assert any("names port 9000" in m for m in found["issuer.url"])


def test_systems_registered_with_demo_keys(copy: Deployment) -> None:
    found = _problems(copy.findings(GATEWAY_POLICY_DIR=str(ROOT / "policies")))
    assert any("rsj-subsidy" in m for m in found["systems.demo_keys"])


def test_a_policy_directory_that_does_not_load(copy: Deployment) -> None:
    catalog = copy.root / "policies" / "catalog.toml"
    catalog.write_text(catalog.read_text("utf-8") + "\n[[[broken\n", "utf-8")
    assert "policy.load" in _problems(copy.findings())


def test_an_unreachable_backend(copy: Deployment) -> None:
    found = _problems(
        copy.findings(GATEWAY_BACKEND_DEMO_DSN="postgresql://nobody@127.0.0.1:1/none")
    )
    assert any("unreachable" in m for m in found["backend.demo"])


def test_an_audit_store_signed_by_another_key(copy: Deployment) -> None:
    other = copy.root / "other-keys"
    other.mkdir()
    write_log_key(other, new_log_signer("audit.someone-else.test/2026-12-01"))
    audit = copy.root / "state" / "other-audit.sqlite"
    open_audit_store(f"sqlite:{audit}", load_log_signer(other)).close()
    assert "audit.store" in _problems(copy.findings(GATEWAY_AUDIT_DSN=f"sqlite:{audit}"))


def test_an_administration_store_not_migrated(copy: Deployment) -> None:
    empty = copy.root / "state" / "empty-admin.sqlite"
    sqlite3.connect(empty).close()
    found = _problems(copy.findings(GATEWAY_ADMIN_DSN=f"sqlite:{empty}"))
    assert any("migration none" in m for m in found["admin.store"])


def test_a_state_directory_that_is_not_one(copy: Deployment) -> None:
    not_a_dir = copy.root / "state-file"
    not_a_dir.write_text("x")
    assert "state.dir" in _problems(copy.findings(GATEWAY_STATE_DIR=str(not_a_dir)))


def test_the_cli_exits_1_and_says_what_to_fix(copy: Deployment) -> None:
    (copy.root / "keys" / "audit-secret.bin").chmod(0o604)
    result = CliRunner().invoke(main, ["doctor", "--no-probe", "-q"], env=copy.env)
    assert result.exit_code == 1
    assert "PROBLEM  keys.permissions" in result.output
    assert "fix: chmod 600" in result.output
    assert "OK " not in result.output  # -q: problems and warnings only


# --------------------------------------------------------------- PostgreSQL, MariaDB


@pytest.fixture(scope="module")
def pg_backend(pg_dsn: str, scratch: Scratch) -> Iterator[tuple[str, str]]:
    """A scratch schema with one published table, and a read-only role for it."""
    schema = scratch.pg_schema(pg_dsn, "doctor")
    role = run_scoped("gw_doctor_ro")
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE TABLE "{schema}".population_people (id int)')
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')
        conn.execute(f'GRANT SELECT ON "{schema}".population_people TO {role}')
    try:
        yield schema, role
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def _pg_url(pg_dsn: str, schema: str, user: str | None = None) -> str:
    url = pg_dsn if user is None else re.sub(r"//[^@/]+@", f"//{user}@", pg_dsn)
    return f"{url}?options={quote(f'-csearch_path={schema}')}"


@pytest.mark.services
def test_a_read_only_postgresql_account_passes(
    copy: Deployment, pg_dsn: str, pg_backend: tuple[str, str]
) -> None:
    schema, role = pg_backend
    findings = copy.findings(GATEWAY_BACKEND_DEMO_DSN=_pg_url(pg_dsn, schema, role))
    read_only = [f for f in findings if f.check == "backend.demo.read_only"]
    assert [f.severity for f in read_only] == ["ok"], read_only


@pytest.mark.services
def test_a_postgresql_account_that_can_write(
    copy: Deployment, pg_dsn: str, pg_backend: tuple[str, str]
) -> None:
    schema, _ = pg_backend
    found = _problems(copy.findings(GATEWAY_BACKEND_DEMO_DSN=_pg_url(pg_dsn, schema)))
    [message] = found["backend.demo.read_only"]
    assert "superuser" in message and "population_people" in message


@pytest.mark.services
def test_clock_skew_against_the_database_server(
    copy: Deployment, pg_dsn: str, pg_backend: tuple[str, str]
) -> None:
    schema, role = pg_backend
    dsn = _pg_url(pg_dsn, schema, role)
    assert "backend.demo.clock" not in _problems(copy.findings(GATEWAY_BACKEND_DEMO_DSN=dsn))
    found = _problems(copy.findings(clock_offset_s=120, GATEWAY_BACKEND_DEMO_DSN=dsn))
    assert any("+120" in m or "+119" in m for m in found["backend.demo.clock"])


@pytest.mark.services
def test_a_mariadb_account_with_write_grants(copy: Deployment, mysql_dsn: str) -> None:
    mysql_connect(mysql_dsn).close()
    found = _problems(copy.findings(GATEWAY_BACKEND_DEMO_DSN=mysql_dsn))
    assert any("ALL PRIVILEGES" in m for m in found["backend.demo.read_only"])


def test_records_past_retention_not_archived_are_a_warning_until_archived(
    copy: Deployment,
) -> None:
    from gateway.audit.archive import archivable, archive_expired
    from gateway.doctor import check_audit_store
    from tests.unit.audit.support import make_record

    settings = copy.settings(GATEWAY_AUDIT_RETENTION_DAYS="30")
    signer = load_log_signer(settings.key_dir)
    store = open_audit_store(settings.audit_location, signer)
    store.append(make_record(0, now=datetime.now(UTC) - timedelta(days=40)))
    store.append(make_record(0, now=datetime.now(UTC)))
    try:
        found = {f.check: f for f in check_audit_store(settings)}
        assert found["audit.store"].severity == "ok"
        assert found["audit.retention"].severity == "warning"
        assert "index 0" in found["audit.retention"].message
        assert "gateway audit archive" in found["audit.retention"].fix
        archive_expired(
            archivable(store),
            copy.root / "archive",
            [signer.verifier],
            now=datetime.now(UTC),
            retention_days=30,
        )
    finally:
        store.close()
    assert "audit.retention" not in {f.check for f in check_audit_store(settings)}
