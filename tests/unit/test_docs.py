"""What is documented exists, and what exists is documented."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import click
import pytest

import gateway
from gateway.cli import main
from gateway.errors import ConfigurationError
from gateway.settings import Settings, TelemetrySettings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")

# Field name -> environment variable, where they differ.
ENV_NAMES = {
    "access_token_ttl_s": "ACCESS_TOKEN_TTL",
    "assertion_max_ttl_s": "ASSERTION_MAX_TTL",
    "clock_skew_s": "CLOCK_SKEW",
    "statement_timeout_s": "STATEMENT_TIMEOUT",
    "backend_dsns": "BACKEND_<NAME>_DSN",
    "sample_ratio": "TRACE_SAMPLE_RATIO",
    "person_token_ttl_s": "PERSON_TOKEN_TTL",
    "console_session_ttl_s": "CONSOLE_SESSION_TTL",
    "login_lockout_s": "LOGIN_LOCKOUT",
    "sweep_interval_s": "SWEEP_INTERVAL",
    "audit_witness_interval_s": "AUDIT_WITNESS_INTERVAL",
    "audit_witness_timeout_s": "AUDIT_WITNESS_TIMEOUT",
    "shutdown_timeout_s": "SHUTDOWN_TIMEOUT",
    "policy_poll_s": "POLICY_POLL",
}


#: Fields of Settings that are not environment variables of their own.
NOT_SETTINGS = {"telemetry", "environment"}


def test_public_surface_is_pinned() -> None:
    assert sorted(gateway.__all__) == ["GatewayError", "Settings", "__version__", "create_app"]


def test_every_setting_is_documented_and_read_from_the_environment() -> None:
    for cls in (Settings, TelemetrySettings):
        for f in dataclasses.fields(cls):
            if f.name in NOT_SETTINGS:
                continue
            env = "GATEWAY_" + ENV_NAMES.get(f.name, f.name.upper())
            assert env in README, f"{env} ({cls.__name__}.{f.name}) is not in README.md"


def test_documented_settings_are_real() -> None:
    documented = set(re.findall(r"`(GATEWAY_[A-Z_<>]+)`", README))
    known = {
        "GATEWAY_" + ENV_NAMES.get(f.name, f.name.upper())
        for cls in (Settings, TelemetrySettings)
        for f in dataclasses.fields(cls)
        if f.name not in NOT_SETTINGS
    }
    extra = {
        "GATEWAY_URL",
        # What `gateway accounts` reads for a new password (a CLI input, not a setting).
        "GATEWAY_NEW_PASSWORD",
        "GATEWAY_REQUIRE_SERVICES",
        "GATEWAY_TEST_PG_DSN",
        "GATEWAY_TEST_MYSQL_DSN",
        "GATEWAY_BACKEND_DEMO_DSN",
    }
    assert documented - known - extra == set()


def test_settings_parse_from_env() -> None:
    s = Settings.from_env(
        {
            "GATEWAY_STATEMENT_TIMEOUT": "2.5",
            "GATEWAY_MAX_ROWS_CEILING": "50",
            "GATEWAY_BACKEND_HR_DSN": "sqlite:/x.db",
        }
    )
    assert s.statement_timeout_s == 2.5
    assert s.max_rows_ceiling == 50
    assert s.backend_dsns == {"hr": "sqlite:/x.db"}


def _commands(group: click.Group, prefix: str = "gateway") -> list[str]:
    names = []
    for name, cmd in group.commands.items():
        full = f"{prefix} {name}"
        if isinstance(cmd, click.Group):
            names.extend(_commands(cmd, full))
        else:
            names.append(full)
    return names


def test_every_cli_command_is_documented_with_help() -> None:
    for command in _commands(main):
        assert f"`{command}" in README, f"{command} is not in README.md"
    for cmd in main.commands.values():
        assert cmd.help, cmd.name


def test_the_default_row_limit_is_policy_not_a_setting() -> None:
    # It moved to catalog.toml (default_max_rows); a deployment that still sets it must
    # not start with limits it did not choose.
    assert "default_max_rows" not in {f.name for f in dataclasses.fields(Settings)}
    with pytest.raises(ConfigurationError, match=r"default_max_rows in catalog\.toml"):
        Settings.from_env({"GATEWAY_DEFAULT_MAX_ROWS": "100"})
