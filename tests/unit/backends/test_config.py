"""backends.toml: DSN kinds, interpolation, overrides, validation, open_backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.backends import BackendConfig, load_backend_configs, open_backend
from gateway.backends.config import interpolate
from gateway.backends.duckdb import DuckDBBackend
from gateway.backends.mysql import MySQLBackend
from gateway.backends.postgres import PostgresBackend
from gateway.backends.sqlite import SQLiteBackend
from gateway.errors import ConfigurationError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "backends.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("dsn", "kind"),
    [
        ("sqlite:/abs/demo.sqlite", "sqlite"),
        ("duckdb:/data/x.duckdb", "duckdb"),
        ("postgresql://u@h:5432/db", "postgres"),
        ("postgres://u@h/db?schema=hr", "postgres"),
        ("mysql://u@h/db", "mysql"),
        ("mariadb://u@h/db", "mysql"),
    ],
)
def test_every_backend_dsn_form_loads(tmp_path: Path, dsn: str, kind: str) -> None:
    configs = load_backend_configs(write(tmp_path, f'[backends.x]\ndsn = "{dsn}"\n'), env={})
    assert configs["x"] == BackendConfig("x", kind, dsn)


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("memory:", "a memory location is not supported here"),
        ("oracle://u:pw@h/db", "scheme 'oracle' is not supported"),
        ("host=h dbname=x password=pw", "its form is not supported"),
        ("sqlite:", "'sqlite:<path>'"),
        ("sqlite:///abs/demo.sqlite", "without '//'"),
        ("mysql://", "lacks a host"),
    ],
)
def test_bad_dsns_name_the_key_without_echoing(tmp_path: Path, dsn: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_backend_configs(write(tmp_path, f'[backends.x]\ndsn = "{dsn}"\n'), env={})
    assert caught.value.detail.startswith("backends.x.dsn: ")
    assert "pw" not in str(caught.value)


def test_load_interpolates_and_makes_paths_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(
        tmp_path,
        """
[backends.demo]
dsn = "sqlite:${STATE:-state}/demo.sqlite"

[backends.hr]
kind = "postgres"
dsn = "postgresql://gw:${HR_PW}@${HR_HOST:-db}:5432/hr"

[backends.stats]
dsn = "duckdb:stats.duckdb"
""",
    )
    configs = load_backend_configs(path, env={"HR_PW": "s3cr3t"})
    assert configs["demo"] == BackendConfig(
        "demo", "sqlite", f"sqlite:{tmp_path}/state/demo.sqlite"
    )
    assert configs["hr"] == BackendConfig("hr", "postgres", "postgresql://gw:s3cr3t@db:5432/hr")
    assert configs["stats"].dsn == f"duckdb:{tmp_path}/stats.duckdb"
    assert "s3cr3t" not in repr(configs["hr"])

    env = {"STATE": "/srv/state", "HR_PW": "x", "HR_HOST": "pg.example"}
    configs = load_backend_configs(path, env=env)
    assert configs["demo"].dsn == "sqlite:/srv/state/demo.sqlite"
    assert configs["hr"].dsn == "postgresql://gw:x@pg.example:5432/hr"


def test_default_applies_to_empty_variables_like_the_shell() -> None:
    assert interpolate("${A:-d}", {"A": ""}, where="k") == "d"
    assert interpolate("${A}", {"A": ""}, where="k") == ""
    assert interpolate("${A:-}", {}, where="k") == ""
    assert interpolate("a${A}b${B:-x:y}c", {"A": "1"}, where="k") == "a1bx:yc"


def test_substituted_text_is_not_scanned_again() -> None:
    assert interpolate("${A}", {"A": "${B}", "B": "no"}, where="k") == "${B}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${MISSING}", "MISSING is not set"),
        ("${1X}", "malformed"),
        ("${A-b}", "malformed"),
        ("${}", "malformed"),
        ("abc${A", "unterminated"),
    ],
)
def test_interpolation_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        interpolate(text, {"A": "1"}, where="backends.x.dsn")
    assert "backends.x.dsn" in str(caught.value)


def test_overrides_replace_the_dsn_verbatim(tmp_path: Path) -> None:
    path = write(tmp_path, '[backends.demo]\ndsn = "sqlite:${NEVER_SET}/demo.sqlite"\n')
    configs = load_backend_configs(path, env={}, overrides={"demo": "postgresql://u:p${x}@h/db"})
    # The file's unset variable is not evaluated, and the override is not interpolated.
    assert configs["demo"] == BackendConfig("demo", "postgres", "postgresql://u:p${x}@h/db")


def test_override_of_an_undeclared_backend_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[backends.demo]\ndsn = "sqlite:demo.sqlite"\n')
    with pytest.raises(ConfigurationError, match="GATEWAY_BACKEND_DEMOO_DSN"):
        load_backend_configs(path, env={}, overrides={"demoo": "sqlite:x.sqlite"})


def test_override_errors_name_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, '[backends.demo]\ndsn = "sqlite:demo.sqlite"\n')
    with pytest.raises(ConfigurationError, match="GATEWAY_BACKEND_DEMO_DSN"):
        load_backend_configs(path, env={}, overrides={"demo": "oracle://x"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[backends.demo]\ndsn = "oracle://u@h/db"\n',
            "backends.demo.dsn: scheme 'oracle' is not supported",
        ),
        ("[backends.demo]\nkind = 'sqlite'\n", "backends.demo.dsn is required"),
        ("[backends.demo]\ndsn = 42\n", "backends.demo.dsn is required"),
        ('[backends.demo]\ndsn = "sqlite:x"\nuser = "a"\n', "unknown keys"),
        ('[backends.demo]\ndsn = "sqlite:x"\nkind = "duckdb"\n', "backends.demo.kind"),
        ('[backends.Demo]\ndsn = "sqlite:x"\n', "backends.Demo: a backend name"),
        ('[backends.my-db]\ndsn = "sqlite:x"\n', "backends.my-db: a backend name"),
        ('[backends]\ndemo = "sqlite:x"\n', "backends.demo must be a table"),
        ("backends = 1\n", "'backends' must be a table"),
        ("[other]\n", "unknown top-level keys"),
        ('[backends.demo]\ndsn = "sqlite::memory:"\n', "in-memory"),
        ("[backends.demo\n", "cannot read backends file"),
    ],
)
def test_invalid_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_backend_configs(write(tmp_path, text), env={})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_backend_configs(tmp_path / "absent.toml", env={})


def test_empty_file_declares_no_backends(tmp_path: Path) -> None:
    assert load_backend_configs(write(tmp_path, ""), env={}) == {}


def test_the_shipped_file_declares_the_demo_backend(
    policy_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    configs = load_backend_configs(policy_dir / "backends.toml", env={})
    assert configs == {
        "demo": BackendConfig("demo", "sqlite", f"sqlite:{tmp_path}/state/demo.sqlite")
    }
    configs = load_backend_configs(
        policy_dir / "backends.toml", env={"GATEWAY_STATE_DIR": "/var/lib/gateway"}
    )
    assert configs["demo"].dsn == "sqlite:/var/lib/gateway/demo.sqlite"


@pytest.mark.parametrize(
    ("config", "cls", "dialect"),
    [
        (BackendConfig("a", "sqlite", "sqlite:/nonexistent/a.sqlite"), SQLiteBackend, "sqlite"),
        (BackendConfig("b", "duckdb", "duckdb:/nonexistent/b.duckdb"), DuckDBBackend, "duckdb"),
        (
            BackendConfig("c", "postgres", "postgresql://u@127.0.0.1:1/db"),
            PostgresBackend,
            "postgres",
        ),
        (BackendConfig("d", "mysql", "mysql://u@127.0.0.1:1/db"), MySQLBackend, "mysql"),
    ],
)
def test_open_backend_is_offline_and_picks_the_implementation(
    config: BackendConfig, cls: type, dialect: str
) -> None:
    backend = open_backend(config)
    try:
        assert isinstance(backend, cls)
        assert (backend.name, backend.kind, backend.dialect) == (config.name, config.kind, dialect)
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (BackendConfig("a", "oracle", "sqlite:/x.sqlite"), "unknown kind"),
        (BackendConfig("a", "postgres", "sqlite:/x.sqlite"), "declared postgres"),
        (BackendConfig("a", "sqlite", "nonsense"), "backend 'a': its form is not supported"),
        (BackendConfig("a", "sqlite", "sqlite::memory:"), "backend 'a': an in-memory"),
    ],
)
def test_open_backend_rejects_inconsistent_configs(config: BackendConfig, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        open_backend(config)
