"""Helpers shared by the auth tests: a controllable clock, a throw-away key/registry setup,
and hand-made JWTs for the attacks PyJWT refuses to produce (alg none, HS256 with a PEM)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import jwt

from gateway.auth import (
    GatewayKeyStore,
    MemoryReplayCache,
    PrivateKey,
    ReplayCache,
    SystemRegistry,
    TokenService,
    VerifiedTokenCache,
    jwk_thumbprint,
    load_private_key,
    write_keypair,
)
from gateway.settings import Settings

FIXED_NOW = datetime(2025, 3, 1, 8, 0, 0, tzinfo=UTC)
ISSUER = "https://gateway.example.gov.cn"
TOKEN_ENDPOINT = f"{ISSUER}/v1/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class FakeClock:
    """A fixed clock that tests move by hand."""

    def __init__(self, now: datetime = FIXED_NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    @property
    def epoch(self) -> int:
        return int(self.now.timestamp())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def raw_jwt(header: Mapping[str, Any], payload: Mapping[str, Any] | bytes, signature: bytes) -> str:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return ".".join([b64url(json.dumps(header).encode()), b64url(body), b64url(signature)])


def hs256_jwt(header: Mapping[str, Any], payload: Mapping[str, Any], secret: bytes) -> str:
    """An HS256 JWT keyed with ``secret``: the classic algorithm-confusion forgery when
    ``secret`` is the verifier's public PEM."""
    signing_input = ".".join(
        [b64url(json.dumps(header).encode()), b64url(json.dumps(payload).encode())]
    )
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(sig)}"


@dataclass
class SystemKeys:
    system_id: str
    alg: Literal["EdDSA", "ES256"]
    private_key: PrivateKey
    public_pem: bytes
    kid: str


@dataclass
class AuthEnv:
    """A complete, isolated auth setup under ``root``."""

    root: Path
    clock: FakeClock
    settings: Settings
    systems: dict[str, SystemKeys]
    keystore: GatewayKeyStore
    registry: SystemRegistry
    replay: ReplayCache
    retired_private: PrivateKey
    service: TokenService
    _serial: Iterator[int] = field(default_factory=itertools.count)

    def claims(self, system_id: str = "sys-ed", **overrides: Any) -> dict[str, Any]:
        now = self.clock.epoch
        claims: dict[str, Any] = {
            "iss": system_id,
            "sub": system_id,
            "aud": TOKEN_ENDPOINT,
            "iat": now,
            "exp": now + 60,
            "jti": f"jti-{system_id}-{next(self._serial)}",
        }
        for name, value in overrides.items():
            if value is _DROP:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def assertion(
        self,
        system_id: str = "sys-ed",
        *,
        signer: str | None = None,
        kid: str | None = None,
        alg: str | None = None,
        headers: Mapping[str, Any] | None = None,
        **claim_overrides: Any,
    ) -> str:
        """A client assertion for ``system_id`` signed by ``signer``'s key (default: the
        system's own) with ``kid`` (default: the signer's kid)."""
        keys = self.systems[signer or system_id]
        hdr: dict[str, Any] = {"kid": kid if kid is not None else keys.kid}
        hdr.update(headers or {})
        return jwt.encode(
            self.claims(system_id, **claim_overrides),
            keys.private_key,
            algorithm=alg or keys.alg,
            headers=hdr,
        )

    def form(self, assertion: str, **extra: str) -> dict[str, str]:
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        form.update(extra)
        return form

    def new_service(
        self,
        *,
        registry: SystemRegistry | None = None,
        keystore: GatewayKeyStore | None = None,
        replay: ReplayCache | None = None,
        token_cache: VerifiedTokenCache | None = None,
    ) -> TokenService:
        return TokenService(
            self.settings,
            registry or self.registry,
            keystore or self.keystore,
            replay or self.replay,
            self.clock,
            token_cache=token_cache,
        )

    def access_token(self, system_id: str = "sys-ed", **form_extra: str) -> str:
        return self.service.exchange(
            self.form(self.assertion(system_id), **form_extra)
        ).access_token

    def write_systems(self, text: str) -> SystemRegistry:
        path = self.root / "policies" / "systems.toml"
        path.write_text(text, encoding="utf-8")
        return SystemRegistry.load(path, base_dir=self.root)


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


#: Pass as a claim override to remove the claim.
_DROP: Any = _Drop()
DROP: Any = _DROP

SYSTEMS_TOML = """\
version = 1

[systems.sys-ed]
department = "rsj"
name = {{ zh = "测试系统甲", en = "Test system A" }}
attributes = {{ district = "历下区", city = "济南市" }}
purposes = ["employment_subsidy_review"]
status = "{ed_status}"

[[systems.sys-ed.keys]]
alg = "EdDSA"
public_key = "keys/sys-ed.pub.pem"

[systems.sys-ec]
department = "ybj"
name = {{ zh = "测试系统乙", en = "Test system B" }}
attributes = {{ district = "市中区" }}
purposes = ["medical_insurance_enrollment", "statistics"]
status = "active"

[[systems.sys-ec.keys]]
alg = "ES256"
public_key = "keys/sys-ec.pub.pem"

[systems.sys-off]
department = "mzj"
name = {{ zh = "停用系统", en = "Suspended system" }}
purposes = ["statistics"]
status = "suspended"

[[systems.sys-off.keys]]
alg = "EdDSA"
public_key = "keys/sys-off.pub.pem"
"""


def build_env(root: Path, *, replay: ReplayCache | None = None) -> AuthEnv:
    """Generate every key under ``root`` and wire a TokenService with a fixed clock."""
    clock = FakeClock()
    key_dir = root / "gateway-keys"
    write_keypair(key_dir, "gateway-signing", "EdDSA")
    # A retired key: only its public half stays in the key directory.
    retired_dir = root / "retired"
    retired_priv_path, retired_pub_path = write_keypair(retired_dir, "old", "EdDSA")
    retired_pub_path.rename(key_dir / "gateway-signing-2024-12.pub.pem")

    systems: dict[str, SystemKeys] = {}
    for system_id, alg in (("sys-ed", "EdDSA"), ("sys-ec", "ES256"), ("sys-off", "EdDSA")):
        alg_lit: Literal["EdDSA", "ES256"] = "EdDSA" if alg == "EdDSA" else "ES256"
        priv_path, pub_path = write_keypair(root / "keys", system_id, alg_lit)
        private = load_private_key(priv_path)
        systems[system_id] = SystemKeys(
            system_id, alg_lit, private, pub_path.read_bytes(), jwk_thumbprint(private)
        )
    # Keys of no registered system, for forgeries.
    for name, alg_lit2 in (("rogue-ed", "EdDSA"), ("rogue-ec", "ES256")):
        lit: Literal["EdDSA", "ES256"] = "EdDSA" if alg_lit2 == "EdDSA" else "ES256"
        priv_path, pub_path = write_keypair(root / "rogue", name, lit)
        private = load_private_key(priv_path)
        systems[name] = SystemKeys(
            name, lit, private, pub_path.read_bytes(), jwk_thumbprint(private)
        )

    (root / "policies").mkdir()
    systems_path = root / "policies" / "systems.toml"
    systems_path.write_text(SYSTEMS_TOML.format(ed_status="active"), encoding="utf-8")
    registry = SystemRegistry.load(systems_path, base_dir=root)
    keystore = GatewayKeyStore.load(key_dir)
    settings = Settings(
        issuer=ISSUER,
        key_dir=key_dir,
        access_token_ttl_s=600,
        assertion_max_ttl_s=300,
        clock_skew_s=30,
    )
    replay_cache: ReplayCache = replay if replay is not None else MemoryReplayCache(clock=clock)
    service = TokenService(settings, registry, keystore, replay_cache, clock)
    return AuthEnv(
        root=root,
        clock=clock,
        settings=settings,
        systems=systems,
        keystore=keystore,
        registry=registry,
        replay=replay_cache,
        retired_private=load_private_key(retired_priv_path),
        service=service,
    )
