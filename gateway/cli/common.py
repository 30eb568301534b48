"""What the command groups share: settings built once from the environment (the only
place the CLI reads it), talking to a running gateway, and the demo systems' defaults."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway.errors import ConfigurationError
from gateway.settings import Settings

__all__ = [
    "CONTEXT_SETTINGS",
    "DEMO_SYSTEMS",
    "access_token",
    "default_key",
    "default_purpose",
    "http",
    "is_demo",
    "key_option",
    "load",
    "person_command",
    "person_session",
    "settings_from_env",
    "system_option",
    "url_option",
    "user_option",
]

T = TypeVar("T")

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

DEMO_SYSTEMS = {
    "rsj-subsidy": "employment_subsidy_review",
    "rsj-portal": "employment_subsidy_review",
    "ybj-insurance": "medical_insurance_enrollment",
    "swj-tax": "tax_administration",
    "tjj-stats": "statistics",
}


def settings_from_env() -> Settings:
    """The settings of this invocation, from ``GATEWAY_*`` (read here, once)."""
    try:
        return Settings.from_env()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


def load(loader: Callable[[Settings], T], settings: Settings | None = None) -> T:
    """``loader(settings)``, with a configuration error as a clean CLI error."""
    try:
        return loader(settings or settings_from_env())
    except ConfigurationError as exc:
        raise click.ClickException(exc.detail) from exc


def access_token(system: str, key: Path | None, url: str, officer: str | None) -> str:
    from gateway.auth.keys import jwk_thumbprint, load_private_key
    from gateway.auth.tokens import make_client_assertion

    key_path = key or default_key(system, settings_from_env())
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
    resp = http("post", f"{url.rstrip('/')}/v1/token", data=form)
    return str(resp["access_token"])


def is_demo(settings: Settings) -> bool:
    """The demo configuration: no GATEWAY_POLICY_DIR of the deployment's own. Only then do
    the demo's defaults (its systems' keys and purposes) apply."""
    return "GATEWAY_POLICY_DIR" not in settings.environment


def default_key(system: str, settings: Settings) -> Path:
    """The private key ``system`` signs with when ``--key`` is not given: the demo key in
    the demo, else the one ``gateway init`` generated next to the configuration."""
    if is_demo(settings):
        return Path("keys/demo") / f"{system}.demo.key.pem"
    return settings.policy_dir / "consumer-keys" / f"{system}.key.pem"


def default_purpose(system: str, settings: Settings) -> str | None:
    """The purpose to declare when ``--purpose`` is not given: the demo system's, or the
    registered system's only purpose; None when there is no single answer."""
    if is_demo(settings):
        return DEMO_SYSTEMS.get(system)
    from gateway.wiring import load_policy_bundle

    registered = load(load_policy_bundle, settings).registry.get(system)
    if registered is not None and len(registered.purposes) == 1:
        return next(iter(registered.purposes))
    return None


def person_session(url: str, user: str) -> dict[str, str]:
    """Sign in as ``user`` (password from GATEWAY_PASSWORD or asked; GATEWAY_TOTP for a
    second factor) and return the bearer header of the session."""
    password = os.environ.get("GATEWAY_PASSWORD") or click.prompt(
        f"Password for {user}", hide_input=True
    )
    body: dict[str, Any] = {"username": user, "password": password}
    if os.environ.get("GATEWAY_TOTP"):
        body["totp"] = os.environ["GATEWAY_TOTP"]
    token = http("post", f"{url.rstrip('/')}/v1/auth/login", json=body)["token"]
    return {"Authorization": f"Bearer {token}"}


def http(method: str, url: str, *, raw: bool = False, **kwargs: Any) -> Any:
    import httpx  # here: commands that never call a gateway should not load it

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
    return resp.text if raw else resp.json()


user_option = click.option(
    "--user",
    envvar="GATEWAY_USER",
    required=True,
    help="Your account (GATEWAY_USER); the password is read from GATEWAY_PASSWORD or asked.",
)
url_option = click.option(
    "--url",
    envvar="GATEWAY_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="Gateway base URL (GATEWAY_URL).",
)


def person_command(
    group: click.Group, name: str | None = None
) -> Callable[[Callable[..., None]], click.Command]:
    """Register a command of ``group`` that signs in as a person and goes through the
    API: its first options are always ``--url`` and ``--user``."""

    def register(function: Callable[..., None]) -> click.Command:
        return group.command(name)(url_option(user_option(function)))

    return register


system_option = click.option(
    "--system", required=True, help="Consumer system id, e.g. rsj-subsidy."
)
key_option = click.option(
    "--key",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Private key (default: DIR/consumer-keys/SYSTEM.key.pem of GATEWAY_POLICY_DIR; in "
    "the demo keys/demo/SYSTEM.demo.key.pem).",
)
