"""``gateway serve``: serve the gateway with the configuration from ``GATEWAY_*``."""

from __future__ import annotations

import click

from gateway.cli.common import settings_from_env
from gateway.errors import ConfigurationError
from gateway.settings import Settings

__all__ = ["serve", "serve_with"]


@click.command()
@click.option("--host", default=None, help="Interface to bind (GATEWAY_HOST, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (GATEWAY_PORT, default 8000).")
@click.option("--workers", type=int, default=None, help="Worker processes (GATEWAY_WORKERS).")
@click.option(
    "--behind-proxy",
    is_flag=True,
    help="GATEWAY_ISSUER is a load balancer's or proxy's URL on this host (another port): "
    "do not compare it with the address listened on.",
)
def serve(host: str | None, port: int | None, workers: int | None, behind_proxy: bool) -> None:
    """Serve the gateway with the configuration from GATEWAY_* variables."""
    settings = settings_from_env()
    serve_with(
        settings,
        host or settings.host,
        port or settings.port,
        workers or settings.workers,
        behind_proxy=behind_proxy,
    )


_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_ANY = frozenset({"0.0.0.0", "::", "[::]"})  # noqa: S104 - names, not a bind


def issuer_for(settings: Settings, host: str, port: int, *, behind_proxy: bool = False) -> Settings:
    """The settings with the issuer this process can honour.

    Consumers address their client assertions to ``<issuer>/v1/token``; an issuer that
    does not name where the gateway is reached makes every token exchange fail with a
    vague 401. Without GATEWAY_ISSUER the issuer is derived from host and port (on all
    interfaces there is no address to derive: GATEWAY_ISSUER is required). With it, a
    plain-http issuer on this host (loopback, or the address bound) must name the port
    listened on (unless ``behind_proxy``: a plain-http load balancer on this host); an
    https issuer is a TLS proxy's public URL and is taken as given.
    Raises ConfigurationError saying what to set."""
    from urllib.parse import urlsplit

    if "GATEWAY_ISSUER" not in settings.environment:
        if host in _ANY:
            raise ConfigurationError(
                f"the gateway listens on all interfaces ({host}); set GATEWAY_ISSUER to the "
                "URL consumers reach it at (e.g. https://gateway.example.gov.cn)"
            )
        shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return settings.with_overrides(issuer=f"http://{shown}:{port}")
    issuer = urlsplit(settings.issuer)
    if issuer.scheme not in ("http", "https") or not issuer.hostname:
        raise ConfigurationError(
            f"GATEWAY_ISSUER {settings.issuer!r} must be an absolute http(s) URL"
        )
    local = issuer.hostname in _LOOPBACK or issuer.hostname == host.strip("[]")
    issuer_port = issuer.port or (443 if issuer.scheme == "https" else 80)
    if issuer.scheme == "http" and local and issuer_port != port and not behind_proxy:
        raise ConfigurationError(
            f"GATEWAY_ISSUER is {settings.issuer} but the gateway listens on {host}:{port}: "
            "consumers' token requests would all be refused. Set GATEWAY_ISSUER="
            f"http://{issuer.hostname}:{port} (or unset it to derive it; behind a load "
            "balancer on this host, serve with --behind-proxy)"
        )
    return settings


def serve_with(
    settings: Settings, host: str, port: int, workers: int, *, behind_proxy: bool = False
) -> None:
    """Serve with ``settings`` as built here, once: each worker process receives them
    (pickled by uvicorn's spawn-based supervisor) and builds its own services from them;
    no worker reads the environment.

    On SIGTERM or SIGINT the server stops accepting connections, lets the requests in
    flight finish (each still waits for its audit record to be durable and signed) for
    up to ``settings.shutdown_timeout_s``, then runs the application's shutdown, which
    closes the audit committer after the records already queued are committed."""
    import functools
    import math

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from gateway.app import create_app
    from gateway.logs import configure_logging, uvicorn_log_config
    from gateway.wiring import load_policy_bundle

    configure_logging(settings.log_level)
    try:
        settings = issuer_for(settings, host, port, behind_proxy=behind_proxy)
        load_policy_bundle(settings)  # fail before forking workers
    except ConfigurationError as exc:
        raise click.ClickException(f"configuration error: {exc.detail}") from exc
    config = uvicorn.Config(
        functools.partial(create_app, settings),
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=uvicorn_log_config(settings.log_level),
        access_log=False,
        # Bounded drain: an orchestrator kills the process after its own grace period
        # (Kubernetes: terminationGracePeriodSeconds), which must be longer than this.
        timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout_s),
    )
    if workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise click.ClickException("the server did not start (see the log above)")
