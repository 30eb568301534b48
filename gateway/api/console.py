"""GET /console: the web console (控制台), a small single-page app in plain ES modules.

The console holds no privilege of its own: it is static files, and every page calls the
same JSON API with the person's cookie session (and the CSRF token on writes), so the
role checks and audit records are the API's. The files ship inside the package
(gateway/console/static/) and are read once when the app is built; nothing is fetched
from elsewhere (deployments are often offline).

Every console response carries a strict Content-Security-Policy (scripts and styles only
from the gateway, no inline code, no framing) and X-Frame-Options DENY against
clickjacking. Page state lives in memory and the URL fragment names only the page, so no
personal data reaches URLs, logs or Referer headers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Annotated

from litestar import Response, get
from litestar.params import PathParameter

from gateway.api.deps import Injected
from gateway.errors import NotFoundError

__all__ = ["CONSOLE_ROUTES", "CSP", "ConsoleAssets"]

#: The policy of every console response. ``connect-src 'self'``: the pages talk only to
#: this gateway; ``img-src data:`` for downloads' icons, nothing else from outside.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

_MEDIA_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
}
#: Asset names the route serves: lower-case paths under static/, no dot segments.
_ASSET_NAME = re.compile(r"^[a-z0-9_-]+(/[a-z0-9_-]+)*\.(js|css|svg)$")


@dataclass(frozen=True, slots=True)
class ConsoleAssets:
    """The console's files, read once from the package (immutable afterwards)."""

    files: MappingProxyType[str, bytes]

    @classmethod
    def load(cls) -> ConsoleAssets:
        root = resources.files("gateway.console").joinpath("static")
        found: dict[str, bytes] = {}

        def walk(node: resources.abc.Traversable, prefix: str) -> None:
            for child in node.iterdir():
                name = f"{prefix}{child.name}"
                if child.is_dir():
                    walk(child, name + "/")
                elif name == "index.html" or _ASSET_NAME.match(name):
                    found[name] = child.read_bytes()

        walk(root, "")
        return cls(MappingProxyType(found))

    def response(self, name: str, *, cache: str) -> Response[bytes]:
        body = self.files.get(name) if name == "index.html" or _ASSET_NAME.match(name) else None
        if body is None:
            raise NotFoundError("No such console file.")
        suffix = name[name.rfind(".") :]
        return Response(
            body,
            media_type=_MEDIA_TYPES[suffix],
            headers=_SECURITY_HEADERS | {"Cache-Control": cache},
        )


@get("/console", include_in_schema=False, sync_to_thread=False)
def console_page(console_assets: Injected[ConsoleAssets]) -> Response[bytes]:
    # no-store: the page is tiny, and a new release must not meet an old cached shell.
    return console_assets.response("index.html", cache="no-store")


@get("/console/static/{name:path}", include_in_schema=False, sync_to_thread=False)
def console_asset(
    name: Annotated[str, PathParameter()], console_assets: Injected[ConsoleAssets]
) -> Response[bytes]:
    return console_assets.response(name.lstrip("/"), cache="no-cache")


CONSOLE_ROUTES = [console_page, console_asset]
