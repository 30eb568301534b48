"""Keys rotate without downtime (issue 15, point 3).

The gateway's token-signing key: processes are restarted one by one after ``gateway keys
rotate``; at every moment each process accepts the tokens every other one signs (the
next key is published one rotation before it signs, the previous one is kept until its
deadline); tokens issued before the rotation stay valid until they expire; a retired key
is refused from its deadline on, and once deleted. Consumer system keys: two active keys
of one system during a hand-over, then the old one removed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner

from gateway.auth.keys import (
    SIGNING_KEY_FILE,
    SIGNING_KEY_FILE_NEXT,
    PrivateKey,
    jwk_thumbprint,
    load_private_key,
    rotate_signing_key,
    write_keypair,
)
from gateway.auth.tokens import ASSERTION_TYPE, make_client_assertion
from gateway.cli import main
from tests.e2e.harness import ISSUER, ROOT, Gateway, demo_dsn, running_gateway

TTL = 600


@dataclass
class ShiftedClock:
    """The real time plus an offset the test moves forward."""

    offset: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    """The demo key directory with a production signing key instead of the demo one."""
    target = tmp_path / "keys"
    shutil.copytree(ROOT / "keys" / "demo", target)
    for demo in target.glob("gateway-signing.demo.*"):
        demo.unlink()
    write_keypair(target, "gateway-signing", "EdDSA")
    return target


@pytest.fixture
def demo(tmp_path: Path) -> str:
    return demo_dsn("sqlite", tmp_path)


def _rotate_cli(key_dir: Path) -> str:
    result = CliRunner().invoke(
        main, ["keys", "rotate"], env={"GATEWAY_KEY_DIR": str(key_dir)}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


def _token(gw: Gateway) -> str:
    resp = gw.token_response(
        {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": gw.assertion("rsj-subsidy"),
        }
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def _accepted(gw: Gateway, token: str) -> bool:
    resp = gw.client.get(
        "/v1/catalog",
        params={"purpose": "employment_subsidy_review"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status_code in (200, 401), resp.text
    return resp.status_code == 200


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def _forged_with(private_pem: Path, now: datetime) -> str:
    """A well-formed access token signed by a gateway key someone kept."""
    key = load_private_key(private_pem)
    iat = int(now.timestamp())
    claims = {
        "iss": ISSUER,
        "aud": ISSUER,
        "sub": "rsj-subsidy",
        "client_id": "rsj-subsidy",
        "dept": "rsj",
        "iat": iat,
        "nbf": iat,
        "exp": iat + TTL,
        "jti": f"forged-{iat}",
    }
    return jwt.encode(
        claims, key, algorithm="EdDSA", headers={"kid": jwk_thumbprint(key), "typ": "at+jwt"}
    )


#: Start a gateway "process" over the key directory as it is now; the clock they share.
Processes = tuple[Callable[[], Gateway], ShiftedClock]


@pytest.fixture
def processes(tmp_path: Path, key_dir: Path, demo: str) -> Iterator[Processes]:
    """Start gateway "processes" (apps built from the key directory as it is now)."""
    with ExitStack() as stack:
        clock = ShiftedClock()
        count = [0]

        def start() -> Gateway:
            count[0] += 1
            state = tmp_path / f"p{count[0]}"
            return stack.enter_context(
                running_gateway(
                    "sqlite",
                    demo,
                    state,
                    clock=clock,
                    settings_overrides={"key_dir": key_dir, "access_token_ttl_s": TTL},
                )
            )

        yield start, clock


def test_rolling_rotation_keeps_every_token_valid_until_it_expires(
    processes: Processes, key_dir: Path, tmp_path: Path
) -> None:
    start, clock = processes
    old = start()
    k1 = old.services.keystore.kid
    k1_private = tmp_path / "k1.pem"
    shutil.copy(key_dir / SIGNING_KEY_FILE, k1_private)
    t1 = _token(old)
    assert _kid(t1) == k1

    # Rotation step 1 prepares the next key; a restarted process publishes it.
    assert "prepared the next signing key" in _rotate_cli(key_dir)
    b = start()
    k2 = b.services.keystore.next_kid
    assert k2 is not None and b.services.keystore.kid == k1
    jwks = [k["kid"] for k in b.client.get("/.well-known/jwks.json").json()["keys"]]
    assert jwks == [k1, k2]  # current, next
    assert _accepted(b, t1)

    # Rotation step 2 promotes it. Restart one process: it signs with k2 ...
    out = _rotate_cli(key_dir)
    assert f"current signing key: {k2}" in out and f"previous key {k1}" in out
    c = start()
    t2 = _token(c)
    assert _kid(t2) == k2
    k3 = c.services.keystore.next_kid
    assert [k["kid"] for k in c.client.get("/.well-known/jwks.json").json()["keys"]] == [
        k2,
        k3,
        k1,
    ]  # current, next, previous
    # ... which the process not restarted yet accepts (k2 was its published next key),
    # while that one still signs with k1, which the restarted one accepts.
    t1b = _token(b)
    assert _kid(t1b) == k1
    for process in (b, c):
        assert _accepted(process, t1) and _accepted(process, t2) and _accepted(process, t1b)
    # Why every process must have been restarted between two rotations: one started
    # before k2 was prepared never published it, and refuses what k2 signs.
    assert _accepted(old, t1) and not _accepted(old, t2)

    # Past the grace period (token lifetime + skew + one hour of roll-out), the retired
    # key verifies nothing, even a token it signed just now (a stolen old key).
    clock.offset = timedelta(seconds=TTL + 30 + 3600 + 1)
    fresh_k1 = _forged_with(k1_private, clock())
    assert not _accepted(c, fresh_k1)
    assert k1 not in [k["kid"] for k in c.client.get("/.well-known/jwks.json").json()["keys"]]
    fresh_k2 = _forged_with(key_dir / SIGNING_KEY_FILE, clock())
    assert _accepted(c, fresh_k2)

    # The next rotation deletes it; a process started then does not know k1 at all.
    done = rotate_signing_key(key_dir, now=clock(), grace=timedelta(seconds=3600))
    assert len(done.pruned) == 1 and done.promoted == k3
    d = start()
    assert k1 not in d.services.keystore.verification_keys
    assert not _accepted(d, fresh_k1)
    assert not _accepted(d, t1)  # long expired anyway


def test_tokens_issued_before_the_rotation_expire_as_usual(
    processes: Processes, key_dir: Path
) -> None:
    start, clock = processes
    before = _token(start())
    _rotate_cli(key_dir)
    _rotate_cli(key_dir)
    after_process = start()
    after = _token(after_process)
    assert _accepted(after_process, before) and _accepted(after_process, after)
    clock.offset = timedelta(seconds=TTL + 31)
    assert not _accepted(after_process, before)
    assert not _accepted(after_process, after)


def test_a_compromised_key_is_dropped_at_once(processes: Processes, key_dir: Path) -> None:
    start, _ = processes
    before = _token(start())
    result = CliRunner().invoke(
        main, ["keys", "rotate", "--compromised"], env={"GATEWAY_KEY_DIR": str(key_dir)}
    )
    assert result.exit_code == 0, result.output
    assert "dropped" in result.output
    restarted = start()
    assert not _accepted(restarted, before)
    assert _accepted(restarted, _token(restarted))
    assert not list(key_dir.glob("gateway-signing-*.pub.pem"))


def test_the_demo_key_is_not_rotated() -> None:
    result = CliRunner().invoke(main, ["keys", "rotate", "--key-dir", str(ROOT / "keys" / "demo")])
    assert result.exit_code == 1
    assert "demo" in result.output
    assert not (ROOT / "keys" / "demo" / SIGNING_KEY_FILE_NEXT).exists()


def test_a_consumer_system_hands_over_to_a_new_key(tmp_path: Path, demo: str) -> None:
    """systems.toml lists several keys per system: both sign during the hand-over, then
    the old entry is removed and its assertions are refused."""
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    shutil.copytree(ROOT / "keys" / "demo", tmp_path / "keys" / "demo")
    new_private, new_public = write_keypair(tmp_path / "keys" / "new", "rsj-subsidy", "ES256")
    systems = tmp_path / "policies" / "systems.toml"
    original = systems.read_text(encoding="utf-8")
    old_entry = (
        '[[systems.rsj-subsidy.keys]]\nalg = "EdDSA"\n'
        'public_key = "keys/demo/rsj-subsidy.demo.pub.pem"\n'
    )
    assert old_entry in original
    new_entry = (
        '[[systems.rsj-subsidy.keys]]\nalg = "ES256"\npublic_key = "keys/new/rsj-subsidy.pub.pem"\n'
    )
    old_key = load_private_key(ROOT / "keys" / "demo" / "rsj-subsidy.demo.key.pem")
    new_key = load_private_key(new_private)

    def exchange(gw: Gateway, key: PrivateKey, alg: str) -> int:
        assertion = make_client_assertion(
            "rsj-subsidy",
            key,
            alg,
            jwk_thumbprint(key),
            f"{ISSUER}/v1/token",
            gw.services.clock(),
        )
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        return gw.token_response(form).status_code

    overrides = {"policy_dir": tmp_path / "policies"}
    systems.write_text(original.replace(old_entry, old_entry + "\n" + new_entry), "utf-8")
    with running_gateway("sqlite", demo, tmp_path / "s1", settings_overrides=overrides) as gw:
        assert exchange(gw, old_key, "EdDSA") == 200
        assert exchange(gw, new_key, "ES256") == 200
    systems.write_text(original.replace(old_entry, new_entry), "utf-8")
    with running_gateway("sqlite", demo, tmp_path / "s2", settings_overrides=overrides) as gw:
        assert exchange(gw, old_key, "EdDSA") == 401
        assert exchange(gw, new_key, "ES256") == 200
    assert new_public.exists()
