"""End-to-end harness: the real app (Litestar test client → auth → rewrite → backend →
audit) over the demo world loaded into a real backend."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from litestar.testing import TestClient

from gateway.app import create_app
from gateway.audit.signing import CheckpointSigner, load_log_signer
from gateway.audit.store.memory import MemoryAuditStore
from gateway.audit.store.protocol import AuditStore
from gateway.auth.keys import jwk_thumbprint, load_private_key
from gateway.auth.replay import MemoryReplayCache
from gateway.auth.tokens import ASSERTION_TYPE, make_client_assertion
from gateway.clock import Clock, utc_now
from gateway.demo.load import ensure_demo_database
from gateway.demo.sharing import seed_sharing
from gateway.settings import Settings
from gateway.telemetry import Telemetry
from gateway.wiring import Services, build_services
from tests.unit.admin.support import FAST_HASHER

ROOT = Path(__file__).resolve().parents[2]


def demo_signer() -> CheckpointSigner:
    """The demo audit log key (keys/demo/audit-log.demo.key)."""
    return load_log_signer(ROOT / "keys" / "demo")


ISSUER = "http://gateway.test"

#: The gateways under test stop a statement after this long (the default is 5 s): every
#: query that runs into the limit (the timeout attacks, the generated joins of the row-limit
#: properties) then costs this and not 5 s. Not shorter: the slowest legitimate query
#: (a SQLite join, under 1 s alone) took over 2 s on a loaded machine.
STATEMENT_TIMEOUT_S = 3.0

PURPOSES = {
    "rsj-subsidy": "employment_subsidy_review",
    "rsj-portal": "employment_subsidy_review",
    "ybj-insurance": "medical_insurance_enrollment",
    "swj-tax": "tax_administration",
    "tjj-stats": "statistics",
    "mzj-suspended": "statistics",
    "sjj-audit": "audit_supervision",
    "gaj-officer": "audit_supervision",
}


def demo_dsn(
    kind: str,
    tmp: Path,
    pg_dsn: str | None = None,
    mysql_dsn: str | None = None,
    *,
    schema: str = "",
) -> str:
    """Where the demo world lives for ``kind``; loads it there if needed. On PostgreSQL
    and MariaDB it is ``schema`` (a schema / database of this test run, from the
    ``scratch`` fixture, which drops it after the session)."""
    if kind in {"postgres", "mysql"} and not schema:
        raise ValueError(f"a {kind} demo needs the name of a scratch schema")
    if kind == "sqlite":
        dsn = f"sqlite:{tmp / 'demo.sqlite'}"
    elif kind == "duckdb":
        dsn = f"duckdb:{tmp / 'demo.duckdb'}"
    elif kind == "postgres":
        assert pg_dsn is not None
        sep = "&" if "?" in pg_dsn else "?"
        dsn = f"{pg_dsn}{sep}options={quote(f'-csearch_path={schema}')}"
    elif kind == "mysql":
        assert mysql_dsn is not None
        dsn = mysql_dsn.rsplit("/", 1)[0] + f"/{schema}"
    else:
        raise ValueError(kind)
    ensure_demo_database(dsn)
    return dsn


@dataclass
class Gateway:
    """A running gateway under test."""

    backend: str
    client: TestClient[Any]
    services: Services
    _tokens: dict[str, str] = field(default_factory=dict)

    def assertion(self, system: str, **kw: Any) -> str:
        key = load_private_key(ROOT / "keys" / "demo" / f"{system}.demo.key.pem")
        alg = "EdDSA" if type(key).__name__.startswith("Ed25519") else "ES256"
        return make_client_assertion(
            system, key, alg, jwk_thumbprint(key), f"{ISSUER}/v1/token", self.services.clock(), **kw
        )

    def token_response(self, form: dict[str, str]) -> httpx.Response:
        return self.client.post("/v1/token", data=form)

    def token(self, system: str) -> str:
        if system not in self._tokens:
            resp = self.token_response(
                {
                    "grant_type": "client_credentials",
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": self.assertion(system),
                }
            )
            assert resp.status_code == 200, resp.text
            self._tokens[system] = resp.json()["access_token"]
        return self._tokens[system]

    def query(
        self, system: str, sql: str, purpose: str | None = None, **extra: Any
    ) -> httpx.Response:
        body = {"sql": sql, "purpose": purpose or PURPOSES[system], **extra}
        return self.client.post(
            "/v1/query", json=body, headers={"Authorization": f"Bearer {self.token(system)}"}
        )

    def get(self, caller: str | None, path: str, /, **params: Any) -> httpx.Response:
        """GET ``path`` as system ``caller`` (None: without a token)."""
        headers = {} if caller is None else {"Authorization": f"Bearer {self.token(caller)}"}
        return self.client.get(path, params=params, headers=headers)

    def rows(self, system: str, sql: str, **extra: Any) -> list[list[Any]]:
        resp = self.query(system, sql, **extra)
        assert resp.status_code == 200, resp.text
        rows: list[list[Any]] = resp.json()["rows"]
        return rows


@contextmanager
def running_gateway(
    backend: str,
    dsn: str,
    tmp: Path,
    *,
    audit: AuditStore | None = None,
    telemetry: Telemetry | None = None,
    settings_overrides: dict[str, Any] | None = None,
    clock: Clock | None = None,
    seed: bool = True,
) -> Iterator[Gateway]:
    """A gateway over ``dsn``; ``seed=False`` leaves the administration store empty (no
    demo people, applications or grants)."""
    options: dict[str, Any] = {
        "policy_dir": ROOT / "policies",
        "key_dir": ROOT / "keys" / "demo",
        "state_dir": tmp / "state",
        "issuer": ISSUER,
        "backend_dsns": {"demo": dsn},
        "statement_timeout_s": STATEMENT_TIMEOUT_S,
    }
    settings = Settings(**(options | (settings_overrides or {})))
    services = build_services(
        settings,
        audit=audit or MemoryAuditStore(demo_signer()),
        replay=MemoryReplayCache(),
        telemetry=telemetry,
        password_hasher=FAST_HASHER,
        clock=clock or utc_now,
    )
    # The demo's people, applications and grants (conditional datasets need a grant).
    if seed:
        seed_sharing(services.admin, services.bundle.catalog, now=services.clock())
    app = create_app(settings, services=services)
    with TestClient(app=app, base_url=ISSUER) as client:
        yield Gateway(backend=backend, client=client, services=services)


def require_services() -> bool:
    return os.environ.get("GATEWAY_REQUIRE_SERVICES") == "1"
