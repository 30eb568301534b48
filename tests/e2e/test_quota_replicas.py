"""A system's quota holds across gateway replicas: two real ``gateway serve`` processes
share one administration store on PostgreSQL, a client fires queries at both at once, and
exactly the quota is served — the rest is 429 with Retry-After naming the quota — and
both processes report the same usage."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from gateway.auth.keys import jwk_thumbprint, load_private_key
from gateway.auth.tokens import ASSERTION_TYPE, make_client_assertion
from tests.conftest import Scratch
from tests.e2e.harness import ROOT, demo_dsn

pytestmark = [pytest.mark.slow, pytest.mark.services]

QUOTA = 5
PER_PROCESS = 8
QUERY = "SELECT enterprise_id FROM legal_person.enterprises ORDER BY enterprise_id LIMIT 2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _token(url: str) -> str:
    key = load_private_key(ROOT / "keys" / "demo" / "swj-tax.demo.key.pem")
    assertion = make_client_assertion(
        "swj-tax", key, "EdDSA", jwk_thumbprint(key), f"{url}/v1/token", datetime.now(UTC)
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


def _policies_with_quota(tmp: Path) -> Path:
    """The demo policy directory with a daily query quota on swj-tax (key paths are
    relative to the directory above it, so the keys are linked next to the copy)."""
    policies = tmp / "policies"
    shutil.copytree(ROOT / "policies", policies)
    (tmp / "keys").symlink_to(ROOT / "keys")
    systems = policies / "systems.toml"
    text = systems.read_text(encoding="utf-8")
    header = "[systems.swj-tax]\n"
    assert header in text
    systems.write_text(
        text.replace(header, f"{header}quotas = {{ queries_per_day = {QUOTA} }}\n"),
        encoding="utf-8",
    )
    return policies


def _wait_ready(url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not start:\n{log.read_text(errors='replace')}")


@pytest.fixture
def two_gateways(tmp_path: Path, pg_dsn: str, scratch: Scratch) -> Iterator[list[str]]:
    admin_dsn = f"{pg_dsn}?schema={scratch.pg_schema(pg_dsn, 'gw_quota')}"
    policies = _policies_with_quota(tmp_path)
    backend = demo_dsn("sqlite", tmp_path)
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for i in range(2):
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            env = os.environ | {
                "GATEWAY_POLICY_DIR": str(policies),
                "GATEWAY_KEY_DIR": str(ROOT / "keys" / "demo"),
                "GATEWAY_STATE_DIR": str(tmp_path / f"state{i}"),
                "GATEWAY_ISSUER": url,
                "GATEWAY_BACKEND_DEMO_DSN": backend,
                "GATEWAY_ADMIN_DSN": admin_dsn,
                "GATEWAY_REPLAY_DSN": "memory:",
                "GATEWAY_LOG_LEVEL": "WARNING",
            }
            with (tmp_path / f"gw{i}.log").open("wb") as log:
                procs.append(
                    subprocess.Popen(  # noqa: S603 - our own CLI
                        [
                            str(Path(sys.executable).parent / "gateway"),
                            "serve",
                            "--port",
                            str(port),
                        ],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            urls.append(url)
            # One at a time: the first bootstraps the store from the policy directory.
            _wait_ready(url, tmp_path / f"gw{i}.log")
        yield urls
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def test_a_system_quota_holds_across_two_processes(two_gateways: list[str]) -> None:
    urls = two_gateways
    tokens = {url: _token(url) for url in urls}
    answers: list[httpx.Response] = []
    lock = threading.Lock()
    start = threading.Barrier(len(urls))

    def fire(url: str) -> None:
        start.wait()
        with httpx.Client(timeout=30) as client:
            for _ in range(PER_PROCESS):
                resp = client.post(
                    f"{url}/v1/query",
                    json={"sql": QUERY, "purpose": "tax_administration"},
                    headers={"Authorization": f"Bearer {tokens[url]}"},
                )
                with lock:
                    answers.append(resp)

    threads = [threading.Thread(target=fire, args=(url,)) for url in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * QUOTA + [429] * (len(urls) * PER_PROCESS - QUOTA), statuses
    for resp in answers:
        if resp.status_code == 429:
            problem = resp.json()
            assert problem["code"] == "quota_exceeded"
            assert problem["quota"]["scope"] == "system"
            assert problem["quota"]["subject"] == "swj-tax"
            assert problem["quota"]["name"] == "queries_per_day"
            assert 0 < int(resp.headers["retry-after"]) <= 24 * 3600
    for url in urls:
        usage = httpx.get(
            f"{url}/v1/quotas", headers={"Authorization": f"Bearer {tokens[url]}"}
        ).json()["items"]
        assert [(q["subject"], q["name"], q["used"], q["left"]) for q in usage] == [
            ("swj-tax", "queries_per_day", QUOTA, 0)
        ]
