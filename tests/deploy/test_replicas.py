"""Many replicas, one truth: three gateway processes behind nginx share PostgreSQL (audit
log, replay cache, administration store). Under a bounded load one replica is killed with
SIGKILL and restarted. Every acknowledged response's record is in the one log, at the
index its receipt names; no index is used twice; the log verifies.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.audit.store.open import open_audit_store
from tests.conftest import Scratch, _unavailable
from tests.e2e.harness import ROOT, demo_dsn, demo_signer
from tests.e2e.processes import GatewayProcess, free_port, system_token

QUERY = "SELECT status, COUNT(*) AS n FROM legal_person.enterprises GROUP BY status ORDER BY status"
#: Bounded load: this many client threads for this long, on loopback only.
CLIENTS = 4
SECONDS = 8.0

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream gateways {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://gateways;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            # A replica that is down is skipped for the next request; a request already
            # sent is not replayed (POST is not idempotent): the client sees 502.
            proxy_next_upstream error timeout;
            proxy_connect_timeout 1s;
            proxy_read_timeout 30s;
        }}
    }}
}}
"""


@pytest.fixture
def cluster(
    tmp_path: Path, pg_dsn: str, scratch: Scratch
) -> Iterator[tuple[str, str, list[GatewayProcess]]]:
    nginx = shutil.which("nginx")
    if nginx is None:
        _unavailable("nginx", FileNotFoundError("apt-get install nginx-light"))
        return
    lb_port = free_port()
    lb_url = f"http://127.0.0.1:{lb_port}"
    audit_dsn = f"{pg_dsn}?schema={scratch.pg_schema(pg_dsn, 'gw_replicas_audit')}"
    common = {
        "GATEWAY_POLICY_DIR": str(ROOT / "policies"),
        "GATEWAY_KEY_DIR": str(ROOT / "keys" / "demo"),
        # Tokens name the address clients use: the load balancer's.
        "GATEWAY_ISSUER": lb_url,
        "GATEWAY_BACKEND_DEMO_DSN": demo_dsn("sqlite", tmp_path),
        "GATEWAY_AUDIT_DSN": audit_dsn,
        "GATEWAY_ADMIN_DSN": f"{pg_dsn}?schema={scratch.pg_schema(pg_dsn, 'gw_replicas_admin')}",
        "GATEWAY_REPLAY_DSN": f"{pg_dsn}?schema={scratch.pg_schema(pg_dsn, 'gw_replicas_replay')}",
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_HOST": "127.0.0.1",
    }
    replicas = [
        GatewayProcess(
            free_port(),
            common | {"GATEWAY_STATE_DIR": str(tmp_path / f"state{i}")},
            tmp_path / f"gw{i}.log",
            ("--behind-proxy",),
        )
        for i in range(3)
    ]
    servers = "\n".join(
        f"        server 127.0.0.1:{r.port} max_fails=1 fail_timeout=2s;" for r in replicas
    )
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / sub).mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp_path, servers=servers, port=lb_port), "utf-8")
    lb = None
    try:
        for r in replicas:
            r.start()
        lb = subprocess.Popen([nginx, "-c", str(conf)], stderr=subprocess.STDOUT)  # noqa: S603
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{lb_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield lb_url, audit_dsn, replicas
    finally:
        if lb is not None:
            lb.terminate()
            lb.wait(timeout=10)
        for r in replicas:
            r.stop()


def test_a_replica_killed_mid_load_loses_no_acknowledged_request(
    cluster: tuple[str, str, list[GatewayProcess]],
) -> None:
    lb_url, audit_dsn, replicas = cluster
    acknowledged: list[tuple[str, int]] = []
    failures: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        token = system_token(lb_url, "swj-tax")
        with httpx.Client(base_url=lb_url, timeout=30) as http:
            while not stop.is_set():
                try:
                    resp = http.post(
                        "/v1/query",
                        json={"sql": QUERY, "purpose": "tax_administration"},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                except httpx.HTTPError:
                    with lock:
                        failures.append(0)
                    continue
                with lock:
                    if resp.status_code == 200:
                        body = resp.json()
                        acknowledged.append((body["audit_id"], body["receipt"]["index"]))
                    else:
                        failures.append(resp.status_code)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    time.sleep(SECONDS / 4)
    replicas[1].kill()
    killed_at = len(acknowledged)
    time.sleep(SECONDS / 4)
    replicas[1].start()
    time.sleep(SECONDS / 2)
    stop.set()
    for t in threads:
        t.join(timeout=60)

    assert killed_at > 20 and len(acknowledged) > killed_at + 20, (killed_at, len(acknowledged))
    # Only requests in flight on the killed replica may fail (nginx does not replay a POST).
    assert all(code in (0, 502) for code in failures), failures
    assert len(failures) <= CLIENTS * 2, failures
    indices = [i for _, i in acknowledged]
    assert len(set(indices)) == len(indices), "an index was handed out twice"

    store = open_audit_store(audit_dsn, demo_signer())
    try:
        for audit_id, index in acknowledged:
            found = store.get(audit_id)
            assert found is not None, f"acknowledged {audit_id} is not in the log"
            assert found[0] == index
        size = store.size()
        assert size >= len(acknowledged)
        # Indices are contiguous: every leaf below the head is a stored entry.
        assert len(store.entries(0, size)) == size
        store.check()  # the whole tree recomputed from the stored bytes matches the head
        print(  # the numbers for a closing note (pytest -s)
            f"replicas: {len(acknowledged)} acknowledged ({killed_at} before the kill), "
            f"failed {failures}, log size {size}"
        )
    finally:
        store.close()
