"""What the command groups share: settings built once from the environment (the only
place the CLI reads it), talking to a running gateway, and the demo systems' defaults."""

from __future__ import annotations

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
    "http",
    "key_option",
    "load",
    "settings_from_env",
    "system_option",
    "url_option",
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
    resp = http("post", f"{url.rstrip('/')}/v1/token", data=form)
    return str(resp["access_token"])


def http(method: str, url: str, **kwargs: Any) -> Any:
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
    return resp.json()


url_option = click.option(
    "--url",
    envvar="GATEWAY_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="Gateway base URL (GATEWAY_URL).",
)
system_option = click.option(
    "--system", required=True, help="Consumer system id, e.g. rsj-subsidy."
)
key_option = click.option(
    "--key",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Private key (default: keys/demo/SYSTEM.demo.key.pem).",
)
