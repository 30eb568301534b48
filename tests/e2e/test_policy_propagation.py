"""A policy version activated anywhere serves in every gateway process within a second.

Two real ``gateway serve`` processes share one administration store on PostgreSQL. The
test activates a tightening change in the store (as an officer would through either
process) while a client keeps querying both processes; every answer names the version it
was decided under, and its columns must be that version's (no request mixes versions),
and both processes must have switched within one second of the activation.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from gateway.admin.db import open_admin_db
from gateway.admin.policies import PolicyVersionStore
from gateway.auth.keys import jwk_thumbprint, load_private_key
from gateway.auth.tokens import ASSERTION_TYPE, make_client_assertion
from gateway.domain import Principal
from gateway.policy.roles import Role
from gateway.policy.versions import PolicySource, Review
from tests.conftest import Scratch
from tests.e2e.harness import ROOT, demo_dsn

SWJ_REP = (
    "p, 5, role:swj-registration, swj, legal_person.enterprises.legal_rep_id_number, select, "
    "*, mask:pseudonym, 2099-12-31T00:00:00Z, allow"
)
QUERY = (
    "SELECT enterprise_id, legal_rep_id_number FROM legal_person.enterprises "
    "ORDER BY enterprise_id LIMIT 2"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _token(url: str) -> str:
    key = load_private_key(ROOT / "keys" / "demo" / "swj-tax.demo.key.pem")
    alg = "EdDSA" if type(key).__name__.startswith("Ed25519") else "ES256"
    assertion = make_client_assertion(
        "swj-tax", key, alg, jwk_thumbprint(key), f"{url}/v1/token", datetime.now(UTC)
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


@pytest.fixture
def two_gateways(tmp_path: Path, pg_dsn: str, scratch: Scratch) -> Iterator[tuple[str, list[str]]]:
    admin_dsn = f"{pg_dsn}?schema={scratch.pg_schema(pg_dsn, 'gw_prop')}"
    backend = demo_dsn("sqlite", tmp_path)
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for i in range(2):
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            env = os.environ | {
                "GATEWAY_POLICY_DIR": str(ROOT / "policies"),
                "GATEWAY_KEY_DIR": str(ROOT / "keys" / "demo"),
                "GATEWAY_STATE_DIR": str(tmp_path / f"state{i}"),
                "GATEWAY_ISSUER": url,
                "GATEWAY_BACKEND_DEMO_DSN": backend,
                "GATEWAY_ADMIN_DSN": admin_dsn,
                "GATEWAY_REPLAY_DSN": "memory:",
                "GATEWAY_POLICY_POLL": "0.5",
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
        yield admin_dsn, urls
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


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


def test_an_activation_reaches_both_processes_within_a_second(
    two_gateways: tuple[str, list[str]],
) -> None:
    admin_dsn, urls = two_gateways
    tokens = {url: _token(url) for url in urls}
    db = open_admin_db(admin_dsn)
    try:
        store = PolicyVersionStore(
            db,
            # The reviewer is tested elsewhere; here only propagation matters.
            review=lambda old, new, actor, acks: Review(frozenset({"scjgj"}), False),
            two_person=lambda departments: False,
        )
        active = store.active()
        assert active is not None
        old_version = active.version
        for url in urls:
            assert httpx.get(f"{url}/readyz").json()["policy_version"] == old_version
        csv = active.source.files["policy.csv"]
        assert SWJ_REP in csv
        tighter = PolicySource(
            dict(active.source.files)
            | {
                "policy.csv": csv.replace(
                    SWJ_REP, SWJ_REP.replace("mask:pseudonym", "deny").replace("allow", "deny")
                )
            }
        )
        officer = Principal(
            system="",
            department="scjgj",
            officer="sun.li",
            roles=frozenset({Role.PROVIDER_OFFICER}),
        )
        change = store.propose(tighter, officer, reason="stop sharing ids", now=datetime.now(UTC))
        store.activate(change.id, officer, now=datetime.now(UTC))
        activated = time.monotonic()
        switched: dict[str, float] = {}
        answers: list[tuple[str, int, str]] = []
        while len(switched) < 2 and time.monotonic() - activated < 5:
            for url in urls:
                resp = httpx.post(
                    f"{url}/v1/query",
                    json={"sql": QUERY, "purpose": "tax_administration"},
                    headers={"Authorization": f"Bearer {tokens[url]}"},
                )
                body = resp.json()
                answers.append((url, resp.status_code, body.get("policy_version", "")))
                if resp.status_code == 200:
                    # Served: only under the old version, with the masked id column.
                    assert body["policy_version"] == old_version
                    assert [c["name"] for c in body["columns"]] == [
                        "enterprise_id",
                        "legal_rep_id_number",
                    ]
                else:
                    assert resp.status_code == 403, resp.text
                    assert "legal_rep_id_number" in body["detail"]
                    switched.setdefault(url, time.monotonic() - activated)
            time.sleep(0.02)
        assert set(switched) == set(urls), answers[-4:]
        assert max(switched.values()) < 1.0, switched
        for url in urls:
            assert httpx.get(f"{url}/readyz").json()["policy_version"] == tighter.id
    finally:
        db.close()
