"""Real ``gateway serve`` processes for tests that need several of them (propagation
between processes, replicas behind a load balancer, SIGKILL)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from gateway.auth.keys import jwk_thumbprint, load_private_key
from gateway.auth.tokens import ASSERTION_TYPE, make_client_assertion
from tests.e2e.harness import ROOT

__all__ = ["GatewayProcess", "free_port", "system_token"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class GatewayProcess:
    """One ``gateway serve`` on 127.0.0.1:``port`` with ``env`` (GATEWAY_* settings)."""

    port: int
    env: dict[str, str]
    log: Path
    #: More ``gateway serve`` options (e.g. ``--behind-proxy``).
    args: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout_s: float = 60) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own CLI
                [
                    str(Path(sys.executable).parent / "gateway"),
                    "serve",
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                env=os.environ | self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.url} did not start:\n{self.log.read_text(errors='replace')}")

    def kill(self) -> None:
        """SIGKILL: no drain, no flush — a crash."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def system_token(url: str, system: str, audience: str | None = None) -> str:
    """An access token for demo ``system`` from the gateway at ``url`` (``audience``: the
    gateway's issuer, when a load balancer stands in front of it)."""
    key = load_private_key(ROOT / "keys" / "demo" / f"{system}.demo.key.pem")
    alg = "EdDSA" if type(key).__name__.startswith("Ed25519") else "ES256"
    assertion = make_client_assertion(
        system, key, alg, jwk_thumbprint(key), f"{audience or url}/v1/token", datetime.now(UTC)
    )
    resp = httpx.post(
        f"{url}/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )
    assert resp.status_code == 200, resp.text
    token: str = resp.json()["access_token"]
    return token
