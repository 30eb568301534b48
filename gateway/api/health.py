"""GET /healthz (liveness), GET /readyz (audit store and backends reachable)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar import Response, get

from gateway.api.deps import Injected
from gateway.audit.store.protocol import AuditReader
from gateway.backends.base import Backend
from gateway.errors import GatewayError
from gateway.policy.runtime import PolicyRuntime

__all__ = ["healthz", "readyz"]


@get("/healthz", sync_to_thread=False, summary="Liveness", tags=["operations"])
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/readyz",
    sync_to_thread=True,
    summary="Readiness: audit store, backends and the active policy version",
    tags=["operations"],
)
def readyz(
    audit_store: Injected[AuditReader],
    backends: Injected[Mapping[str, Backend]],
    policies: Injected[PolicyRuntime],
) -> Response[dict[str, Any]]:
    checks: dict[str, str] = {}
    # Which rules this process decides under (operators compare replicas with it).
    version: str | None = None
    try:
        version = policies.current().version
        checks["policy"] = "ok"
    except GatewayError as exc:
        checks["policy"] = exc.code
    try:
        audit_store.size()
        checks["audit"] = "ok"
    except GatewayError as exc:
        checks["audit"] = exc.code
    for name, backend in backends.items():
        try:
            backend.ping()
            checks[f"backend:{name}"] = "ok"
        except GatewayError as exc:
            checks[f"backend:{name}"] = exc.code
    ok = all(v == "ok" for v in checks.values())
    return Response(
        content={
            "status": "ok" if ok else "unavailable",
            "checks": checks,
            "policy_version": version,
        },
        status_code=200 if ok else 503,
    )
