"""create_app(settings, services) -> Litestar: routes, dependency providers, guards and the
problem handler. Wiring only: every service is built by gateway/wiring.py."""

from __future__ import annotations

from litestar import Litestar, Router
from litestar.di import Provide

from gateway.api.applications import APPLICATION_ROUTES
from gateway.api.audit import (
    consistency_proof,
    export_bundle,
    get_record,
    inclusion_proof,
    latest_checkpoint,
    latest_cosigned,
    list_checkpoints,
    log_keys,
    search_records,
)
from gateway.api.auth import jwks, token
from gateway.api.bodies import check_request_body
from gateway.api.call import provide_call
from gateway.api.catalog import read_catalog, read_samples
from gateway.api.console import CONSOLE_ROUTES, ConsoleAssets
from gateway.api.deps import Injected, constant, provide_context, provide_principal
from gateway.api.guards import role_guard
from gateway.api.health import healthz, readyz
from gateway.api.metrics import MetricsEndpoint, ServerTelemetry, metrics
from gateway.api.openapi import complete_openapi, openapi_config
from gateway.api.people import PEOPLE_ROUTES, PUBLIC_PEOPLE_ROUTES
from gateway.api.policy import POLICY_ROUTES, explain
from gateway.api.problems import problem_handlers
from gateway.api.query import query
from gateway.api.quotas import QUOTA_ROUTES
from gateway.api.statistics import STATISTICS_ROUTES
from gateway.api.witness import witness_add_checkpoint
from gateway.catalog import Catalog
from gateway.policy.engine import CasbinPolicyEngine
from gateway.policy.runtime import ActivePolicy
from gateway.settings import Settings
from gateway.wiring import Services, build_services

__all__ = ["create_app"]


def create_app(settings: Settings, services: Services | None = None) -> Litestar:
    """Build the HTTP application from settings built once by the caller. ``services``
    replaces the default wiring (tests, benchmarks)."""
    services = services or build_services(settings)
    # Handlers that need an authenticated caller (of a role named in their opt).
    authenticated = Router(
        path="/",
        route_handlers=[
            read_catalog,
            read_samples,
            search_records,
            get_record,
            export_bundle,
            *PEOPLE_ROUTES,
            *APPLICATION_ROUTES,
            *QUOTA_ROUTES,
            *STATISTICS_ROUTES,
            *POLICY_ROUTES,
            explain,
        ],
        guards=[role_guard(services.callers)],
    )
    # Proofs need a caller too (they confirm which indices exist); checkpoints and the
    # log's keys are public: publishing tree heads widely is what makes rewrites visible.
    proofs = Router(
        path="/",
        route_handlers=[inclusion_proof, consistency_proof],
        guards=[role_guard(services.callers)],
    )
    app = Litestar(
        route_handlers=[
            query,
            token,
            jwks,
            healthz,
            readyz,
            metrics,
            latest_checkpoint,
            latest_cosigned,
            list_checkpoints,
            log_keys,
            witness_add_checkpoint,
            *PUBLIC_PEOPLE_ROUTES,
            *CONSOLE_ROUTES,
            authenticated,
            proofs,
        ],
        dependencies={
            "settings": constant(settings),
            "query_service": constant(services.query),
            "telemetry": constant(services.telemetry),
            "tokens": constant(services.tokens),
            "callers": constant(services.callers),
            "console_assets": constant(ConsoleAssets.load()),
            "trail": constant(services.trail),
            "keystore": constant(services.keystore),
            # One policy version per request, however many dependencies read it.
            "policy": Provide(services.policies.current, sync_to_thread=False),
            "policies": constant(services.policies),
            "explainer": constant(services.explainer),
            "engine": Provide(_engine, sync_to_thread=False),
            "catalog": Provide(_catalog, sync_to_thread=False),
            "audit_store": constant(services.audit),
            "backends": constant(services.backends),
            "witness": constant(services.witness),
            "context": provide_context(services.trail),
            "principal": provide_principal(services.callers),
            "admin": constant(services.admin),
            "clock": constant(services.clock),
            "call": Provide(provide_call, sync_to_thread=False),
            "known_departments": Provide(_departments, sync_to_thread=False),
            "metrics_endpoint": constant(
                MetricsEndpoint(services.telemetry, token=settings.metrics_token)
            ),
        },
        exception_handlers=problem_handlers(
            services.trail,
            services.telemetry.current_trace_id,
            max_body_bytes=settings.max_body_bytes,
        ),
        request_max_body_size=settings.max_body_bytes,
        before_request=check_request_body,
        # Litestar's default logging config replaces the root logger's handlers with its
        # own plain-text ones; the gateway's logging is gateway/logs.py's (JSON lines).
        logging_config=None,
        openapi_config=openapi_config(
            title="Data-sharing gateway 数据共享网关",
            version="0.1.0",
            description=(
                "Query shared government datasets under the providers' policies: masked, "
                "filtered, limited and audited. "
                "在提供方策略约束下查询共享数据：脱敏、过滤、限量、全程审计。"
            ),
        ),
        on_startup=[services.start],
        on_shutdown=[services.close],
        debug=False,
    )
    # Around the whole app, not as route middleware: requests no route matches (404,
    # 405) are answered by the router itself, and they belong in the metrics too.
    complete_openapi(app)
    app.asgi_handler = ServerTelemetry(
        app.asgi_handler, services.telemetry, access_log=settings.access_log
    )
    return app


def _engine(policy: Injected[ActivePolicy]) -> CasbinPolicyEngine:
    return policy.engine


def _catalog(policy: Injected[ActivePolicy]) -> Catalog:
    return policy.catalog


def _departments(policy: Injected[ActivePolicy]) -> frozenset[str]:
    return frozenset(policy.catalog.departments)
