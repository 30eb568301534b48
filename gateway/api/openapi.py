"""The OpenAPI document, truthful: what litestar generates from the handlers, completed
with what it cannot know, and its docs page served from the package (no CDN).

Completed here, for every operation, from the route itself so that routes added later
are covered too:

- the error statuses it can answer, each as ``application/problem+json`` with the one
  Problem schema (gateway/api/problems.py): 500 and 503 on every route (every answer is
  audited first; no record, no answer), 400/413/415 where there is a body, 400 where
  there are parameters, 404 where the path names something, 401/403 where a role guard
  or the handler itself (``opt={"authenticated": True}``) checks the caller, plus the
  statuses a handler declares in ``opt={"problems": (409, ...)}``. Litestar's own
  error responses (``application/json``, another shape) are replaced. A handler whose
  protocol answers some errors in another media type (the C2SP witness endpoint answers
  in text) names them in ``opt={"text_errors": {404: "text/plain", ...}}``.
- the bearer security scheme on every operation that checks the caller.

The docs page is Swagger UI from the ``swagger-ui-bundle`` package, its scripts and
styles served under ``/schema/assets`` (deployments are often offline, and a CDN would
also learn who reads the docs).
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any, Final

from litestar import Litestar, Router
from litestar.enums import HttpMethod
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Reference,
    Schema,
    SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router

from gateway.api.problems import PROBLEM_MEDIA_TYPE, TYPE_BASE
from gateway.errors import error_for_status

__all__ = [
    "ASSETS_PATH",
    "BEARER",
    "LocalSwaggerRenderPlugin",
    "complete_openapi",
    "error_statuses",
    "openapi_config",
]

#: Name of the security scheme: an access token (POST /v1/token) or a person's session.
BEARER: Final = "bearer"
#: Where the docs page's scripts and styles are served (under the OpenAPI path).
ASSETS_PATH: Final = "/assets"
#: The files of swagger-ui-bundle the page needs (not its maps, nor its own index page).
_ASSETS: Final = (
    "swagger-ui.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "favicon-32x32.png",
)
_PROBLEM: Final = "Problem"
#: Statuses every route can answer: every answer is audited before it leaves.
_ALWAYS: Final = (500, 503)


class LocalSwaggerRenderPlugin(SwaggerRenderPlugin):
    """Swagger UI with its assets served by the gateway itself."""

    def __init__(self, schema_path: str = "/schema") -> None:
        base = f"{schema_path.rstrip('/')}{ASSETS_PATH}"
        super().__init__(
            js_url=f"{base}/swagger-ui-bundle.js",
            css_url=f"{base}/swagger-ui.css",
            standalone_preset_js_url=f"{base}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{base}/favicon-32x32.png'>",
            path="/swagger",
        )

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)
        router.register(
            create_static_files_router(
                path=ASSETS_PATH,
                directories=[_assets_dir()],
                include_in_schema=False,
                name="schema-assets",
            )
        )


def _assets_dir() -> Path:
    """The directory of swagger-ui-bundle's dist files."""
    module = import_module("swagger_ui_bundle")
    path = Path(str(module.swagger_ui_path))
    missing = [name for name in _ASSETS if not (path / name).is_file()]
    if missing:  # a broken install: better no docs page than one that calls a CDN
        raise FileNotFoundError(f"swagger-ui-bundle lacks {', '.join(missing)} in {path}")
    return path


def openapi_config(*, title: str, version: str, description: str) -> OpenAPIConfig:
    """The OpenAPI configuration: the document at /schema/openapi.json, Swagger UI (local
    assets) at /schema and /schema/swagger, the bearer scheme and the Problem schema."""
    return OpenAPIConfig(
        title=title,
        version=version,
        description=description,
        path="/schema",
        render_plugins=[LocalSwaggerRenderPlugin("/schema")],
        components=Components(
            security_schemes={
                BEARER: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT or opaque session token",
                    description=(
                        "A system's access token from POST /v1/token (RFC 7523 client "
                        "assertion), or a person's session token from POST /v1/auth/login."
                    ),
                )
            },
        ),
    )


def _problem_schema() -> Schema:
    text = Schema(type=OpenAPIType.STRING)
    nullable_text = Schema(one_of=[Schema(type=OpenAPIType.STRING), Schema(type=OpenAPIType.NULL)])
    return Schema(
        type=OpenAPIType.OBJECT,
        description=(
            "RFC 9457 problem details. title and detail are in the language of "
            "Accept-Language (zh-CN or English); code and type are stable."
        ),
        required=["type", "title", "status", "detail", "instance", "code", "trace_id"],
        properties={
            "type": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.URI),
            "title": text,
            "status": Schema(type=OpenAPIType.INTEGER),
            "detail": text,
            "instance": text,
            "code": text,
            "trace_id": text,
            "audit_id": nullable_text,
            "receipt": Schema(
                type=OpenAPIType.OBJECT,
                description="The signed receipt of the refusal's audit record.",
            ),
        },
        additional_properties=True,
    )


def error_statuses(handler: HTTPRouteHandler, path: str, operation: Operation) -> tuple[int, ...]:
    """The error statuses ``operation`` (of ``handler`` at ``path``) can answer."""
    found = set(_ALWAYS)
    if operation.request_body is not None:
        found |= {400, 413, 415}
    if operation.parameters:
        found.add(400)
    if "{" in path:
        found.add(404)
    if _checks_caller(handler):
        found |= {401, 403}
    found |= set(handler.opt.get("problems", ()))
    return tuple(sorted(found))


def _checks_caller(handler: HTTPRouteHandler) -> bool:
    return bool(handler.resolve_guards()) or bool(handler.opt.get("authenticated"))


def complete_openapi(app: Litestar) -> None:
    """Complete the app's OpenAPI document in place (see the module docstring). Call
    once, after the app is built: litestar builds the document once and keeps it."""
    document = app.openapi_schema
    # Litestar sets components.schemas from the handlers' types when it builds the
    # document, so the Problem schema is added afterwards.
    document.components.schemas = {
        **(document.components.schemas or {}),
        _PROBLEM: _problem_schema(),
    }
    paths = document.paths or {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        item = paths.get(route.path_format or "/")
        if item is None:
            continue  # not in the schema (the docs pages themselves)
        for handler in route.route_handlers:
            for method in handler.http_methods:
                operation = getattr(item, str(method).lower(), None)
                if not isinstance(operation, Operation) or method is HttpMethod.HEAD:
                    continue
                _complete(operation, handler, route.path_format or "/")


def _complete(operation: Operation, handler: HTTPRouteHandler, path: str) -> None:
    responses: dict[str, Any] = dict(operation.responses or {})
    for code in list(responses):
        if code.isdigit() and int(code) >= 400:
            del responses[code]  # litestar's own error shape; ours replace it
    text_errors: dict[int, str] = dict(handler.opt.get("text_errors", {}))
    for status in error_statuses(handler, path, operation):
        responses[str(status)] = _problem_response(status)
    for status, media_type in text_errors.items():
        responses[str(status)] = OpenAPIResponse(
            description=error_for_status(status).title,
            content={media_type: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))},
        )
    operation.responses = responses
    if _checks_caller(handler):
        operation.security = [{BEARER: []}]


def _problem_response(status: int) -> OpenAPIResponse:
    error = error_for_status(status)
    example = {
        "type": TYPE_BASE + error.code,
        "title": error.title,
        "status": status,
        "detail": "What went wrong and what to send instead.",
        "instance": "/v1/…",
        "code": error.code,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "audit_id": "01a2463c-1843-75ca-8e94-2b959c41dcfb",
    }
    return OpenAPIResponse(
        description=error.title,
        content={
            PROBLEM_MEDIA_TYPE: OpenAPIMediaType(
                schema=Reference(ref=f"#/components/schemas/{_PROBLEM}"),
                examples={error.code: Example(value=example)},
            )
        },
    )
