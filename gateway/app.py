"""create_app(settings) -> Litestar: wiring only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Litestar, Request
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin

from gateway.api.audit_routes import AUDIT_ROUTES
from gateway.api.problems import problem_handlers
from gateway.api.routes import ROUTES
from gateway.errors import GatewayError, InvalidRequestError, RequestTooLargeError
from gateway.query.pipeline import QueryContext
from gateway.settings import Settings
from gateway.wiring import Services, build_services

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> Litestar:
    """Build the HTTP application. ``services`` replaces the default wiring (tests)."""
    settings = settings or Settings.from_env()
    services = services or build_services(settings)
    telemetry = services.telemetry
    return Litestar(
        route_handlers=[*ROUTES, *AUDIT_ROUTES],
        exception_handlers=problem_handlers(
            telemetry.current_trace_id, _framework_rejection_auditor(services)
        ),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Data-sharing gateway 数据共享网关",
            version="0.1.0",
            description=(
                "Query shared government datasets under the providers' policies: masked, "
                "filtered, limited and audited. "
                "在提供方策略约束下查询共享数据：脱敏、过滤、限量、全程审计。"
            ),
            path="/schema",
            render_plugins=[ScalarRenderPlugin()],
        ),
        on_shutdown=[services.close],
        state=State({"services": services}),
        debug=False,
    )


def _framework_rejection_auditor(
    services: Services,
) -> Callable[[Request[Any, Any, Any], int, str, str], GatewayError]:
    def audit(
        request: Request[Any, Any, Any], status: int, _code: str, detail: str
    ) -> GatewayError:
        error_type = RequestTooLargeError if status == 413 else InvalidRequestError
        exc = error_type(detail)
        ctx = QueryContext(
            request_id=(request.headers.get("x-request-id") or "")[:128] or "-",
            client_ip=request.client.host if request.client else None,
        )
        services.query.audit_rejection(exc, principal=None, request=None, ctx=ctx)
        return exc

    return audit
