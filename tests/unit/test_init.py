"""`gateway init`: a complete starting configuration from the department's database."""

from __future__ import annotations

import logging
import sqlite3
import stat
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.auth.replay import MemoryReplayCache
from gateway.cli import main
from gateway.cli.serve import issuer_for
from gateway.errors import ConfigurationError
from gateway.init import InitOptions, init_deployment
from gateway.settings import Settings
from gateway.wiring import (
    DEMO_KEYS_WARNING,
    Services,
    build_services,
    load_policy_bundle,
    uses_pseudonym,
)
from tests.unit.admin.support import FAST_HASHER


def _database(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE residents (resident_id INTEGER, full_name TEXT, id_number TEXT, "
            "birth_date DATE, income NUMERIC(10,2));"
            "CREATE TABLE internal_notes (note_id INTEGER, note TEXT);"
        )
    return path


def test_init_writes_a_configuration_that_loads_and_checks_clean(tmp_path: Path) -> None:
    db = _database(tmp_path / "civil.sqlite")
    target = tmp_path / "conf"
    result = init_deployment(
        target,
        InitOptions(backend_dsn=f"sqlite:{db}", dataset="civil", not_shared=("internal_notes",)),
    )
    assert {t.name for t in result.tables} == {"residents", "internal_notes"}
    catalog = tomllib.loads((target / "catalog.toml").read_text(encoding="utf-8"))
    columns = {c["name"]: c for c in catalog["datasets"]["civil"]["tables"]["residents"]["columns"]}
    assert columns["full_name"]["default_mask"] == "name"
    assert columns["id_number"]["sensitivity"] == "sensitive_personal"
    assert columns["birth_date"]["type"] == "date"
    assert columns["income"]["type"] == "decimal"
    assert catalog["datasets"]["civil"]["tables"]["internal_notes"]["sharing_class"] == "not_shared"
    assert catalog["search_path"] == ["civil"]
    for secret in ("gateway-signing.key.pem", "audit-log.key", "audit-secret.bin"):
        mode = (target / "keys" / secret).stat().st_mode
        assert not mode & (stat.S_IRWXG | stat.S_IRWXO), secret
    # Only a policy with a pseudonym mask needs the pseudonym secret.
    assert not (target / "keys" / "pseudonym-secret.bin").exists()
    assert not (target / "model.conf").exists()  # the package's model applies
    assert "never" in (target / "policy.csv").read_text(encoding="utf-8")
    env = dict(
        line.split("=", 1)
        for line in (target / "gateway.env").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    settings = Settings.from_env(env)
    bundle = load_policy_bundle(settings)
    assert settings.key_dir == target / "keys"
    assert [s.system_id for s in bundle.registry.all()] == ["consumer-app"]
    check = CliRunner().invoke(main, ["check"], env=env)
    assert check.exit_code == 0, check.output


def test_init_never_overwrites(tmp_path: Path) -> None:
    db = _database(tmp_path / "civil.sqlite")
    init_deployment(tmp_path / "conf", InitOptions(backend_dsn=f"sqlite:{db}"))
    result = CliRunner().invoke(main, ["init", str(tmp_path / "conf"), "--backend", f"sqlite:{db}"])
    assert result.exit_code == 1
    assert "never overwrites" in result.output
    assert "Traceback" not in result.output


def test_init_names_a_missing_table(tmp_path: Path) -> None:
    db = _database(tmp_path / "civil.sqlite")
    with pytest.raises(ConfigurationError, match="no table\\(s\\) subsidies"):
        init_deployment(
            tmp_path / "conf", InitOptions(backend_dsn=f"sqlite:{db}", tables=("subsidies",))
        )


def test_keys_generate_on_an_existing_file_is_a_clean_error(tmp_path: Path) -> None:
    args = ["keys", "generate", "--name", "app", "--out", str(tmp_path)]
    assert CliRunner().invoke(main, args).exit_code == 0
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1
    assert "already exists" in again.output
    assert again.exception is None or isinstance(again.exception, SystemExit)


def test_issuer_is_derived_from_where_the_gateway_listens() -> None:
    derived = issuer_for(Settings.from_env({}), "127.0.0.1", 8080)
    assert derived.issuer == "http://127.0.0.1:8080"


def test_issuer_on_this_host_with_another_port_refuses_to_start() -> None:
    settings = Settings.from_env({"GATEWAY_ISSUER": "http://127.0.0.1:8000"})
    with pytest.raises(ConfigurationError, match=r"listens on 127\.0\.0\.1:8080"):
        issuer_for(settings, "127.0.0.1", 8080)
    assert issuer_for(settings, "127.0.0.1", 8000).issuer == "http://127.0.0.1:8000"


def test_https_issuer_is_a_proxy_url_taken_as_given() -> None:
    settings = Settings.from_env({"GATEWAY_ISSUER": "https://localhost:8443"})
    assert issuer_for(settings, "0.0.0.0", 8000).issuer == "https://localhost:8443"  # noqa: S104


def test_all_interfaces_without_an_issuer_refuses_to_start() -> None:
    with pytest.raises(ConfigurationError, match="GATEWAY_ISSUER"):
        issuer_for(Settings.from_env({}), "0.0.0.0", 8000)  # noqa: S104


def _services(settings: Settings) -> Services:
    return build_services(settings, replay=MemoryReplayCache(), password_hasher=FAST_HASHER)


def test_pseudonym_secret_is_needed_only_when_a_policy_uses_the_mask(tmp_path: Path) -> None:
    db = _database(tmp_path / "civil.sqlite")
    conf = tmp_path / "conf"
    init_deployment(conf, InitOptions(backend_dsn=f"sqlite:{db}", dataset="civil"))
    settings = Settings.from_env({"GATEWAY_POLICY_DIR": str(conf)})
    assert not uses_pseudonym(load_policy_bundle(settings))
    _services(settings).close()  # starts without a pseudonym secret
    with (conf / "policy.csv").open("a", encoding="utf-8") as f:
        f.write(
            "p, 5, role:consumer-reader, consumer, civil.residents.id_number, select, *, "
            "mask:pseudonym, never, allow\n"
        )
    other = Settings.from_env(
        {"GATEWAY_POLICY_DIR": str(conf), "GATEWAY_STATE_DIR": str(tmp_path / "state2")}
    )
    with pytest.raises(ConfigurationError, match="gateway keys secret"):
        _services(other)


def test_demo_keys_are_announced_loudly(
    tmp_path: Path, root_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        policy_dir=root_dir / "policies",
        key_dir=root_dir / "keys" / "demo",
        state_dir=tmp_path / "state",
        backend_dsns={"demo": f"sqlite:{tmp_path / 'demo.sqlite'}"},
    )
    with caplog.at_level(logging.WARNING, logger="gateway.wiring"):
        _services(settings).close()
    assert DEMO_KEYS_WARNING in caplog.text
