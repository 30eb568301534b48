"""Graceful life cycle of a real ``gateway serve`` process on 127.0.0.1: SIGTERM while a
request is in flight (waiting in the audit group committer) lets it finish with its audit
record durable, refuses new connections, and the process exits cleanly.

Slow by nature (a real server process: ~3 s to start); bounded by timeouts throughout.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from gateway.audit import open_audit_store
from gateway.auth.keys import jwk_thumbprint, load_private_key
from gateway.auth.tokens import ASSERTION_TYPE, make_client_assertion
from tests.e2e.harness import ROOT, demo_dsn, demo_signer

pytestmark = pytest.mark.slow

READY_TIMEOUT_S = 30.0
#: The committer lingers this long for more records: a request is "in flight" that long.
BATCH_WAIT_MS = 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _token(base: str) -> str:
    key = load_private_key(ROOT / "keys" / "demo" / "swj-tax.demo.key.pem")
    assertion = make_client_assertion(
        "swj-tax", key, "EdDSA", jwk_thumbprint(key), f"{base}/v1/token", datetime.now(UTC)
    )
    resp = httpx.post(
        f"{base}/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def test_sigterm_drains_the_request_in_flight_and_flushes_its_audit_record(
    tmp_path: Path,
) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    state = tmp_path / "state"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
        "GATEWAY_POLICY_DIR": str(ROOT / "policies"),
        "GATEWAY_KEY_DIR": str(ROOT / "keys" / "demo"),
        "GATEWAY_STATE_DIR": str(state),
        "GATEWAY_BACKEND_DEMO_DSN": demo_dsn("sqlite", tmp_path),
        "GATEWAY_PORT": str(port),
        "GATEWAY_ISSUER": base,
        "GATEWAY_AUDIT_BATCH_WAIT_MS": str(BATCH_WAIT_MS),
        "GATEWAY_SHUTDOWN_TIMEOUT": "20",
    }
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.1)
        token = _token(base)

        answer: dict[str, httpx.Response] = {}

        def slow_query() -> None:
            answer["resp"] = httpx.post(
                f"{base}/v1/query",
                json={
                    "sql": "SELECT status, COUNT(*) AS n FROM legal_person.enterprises "
                    "GROUP BY status ORDER BY status",
                    "purpose": "tax_administration",
                },
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )

        client = threading.Thread(target=slow_query)
        started = time.monotonic()
        client.start()
        time.sleep(0.3)  # the query is now waiting for its audit batch (1 s linger)
        proc.send_signal(signal.SIGTERM)
        client.join(timeout=30)
        assert not client.is_alive()
        resp = answer["resp"]
        # The request in flight was answered, with data and its receipt ...
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["rows"] and body["receipt"]["audit_id"] == body["audit_id"]
        assert time.monotonic() - started >= BATCH_WAIT_MS / 1000 * 0.8
        # ... the server stops accepting new ones and exits cleanly.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{base}/healthz", timeout=2)
        # uvicorn re-raises the signal once it has shut down cleanly, so the exit status
        # is "terminated by SIGTERM" (what systemd and Kubernetes count as a clean stop).
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()
    # The record of the drained request is durable in the log the process left behind.
    store = open_audit_store(f"sqlite:{state / 'audit.sqlite'}", demo_signer())
    try:
        found = store.get(body["audit_id"])
        assert found is not None
        assert found[1].status == 200 and found[1].system == "swj-tax"
        text = (tmp_path / "server.log").read_text()
        # The application's shutdown ran (it closes the audit committer) and finished.
        assert "Application shutdown complete" in text, text[-2000:]
    finally:
        store.close()
