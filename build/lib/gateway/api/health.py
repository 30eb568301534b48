"""GET /healthz (liveness), GET /readyz (audit store and backends reachable)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar import Response, get

from gateway.api.deps import Injected
from gateway.audit.store import AuditStore
from gateway.backends.base import Backend
from gateway.errors import GatewayError

__all__ = ["healthz", "readyz"]


@get("/healthz", sync_to_thread=False, summary="Liveness", tags=["operations"])
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/readyz",
    sync_to_thread=True,
    summary="Readiness: audit store and backends",
    tags=["operations"],
)
def readyz(
    audit_store: Injected[AuditStore], backends: Injected[Mapping[str, Backend]]
) -> Response[dict[str, Any]]:
    checks: dict[str, str] = {}
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
        content={"status": "ok" if ok else "unavailable", "checks": checks},
        status_code=200 if ok else 503,
    )
