"""TokenService: the token endpoint (RFC 7523 client assertions) and bearer-token
authentication (RFC 9068 access tokens). Every refusal must be an AuthenticationError
with the vague public detail and a precise internal reason."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.auth import (
    GatewayKeyStore,
    SqliteReplayCache,
    SystemRegistry,
    VerifiedTokenCache,
    make_client_assertion,
)
from gateway.auth.replay import PostgresReplayCache
from gateway.auth.tokens import MAX_TOKEN_BYTES
from gateway.domain import Principal
from gateway.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
)
from tests.unit.auth.support import (
    DROP,
    ISSUER,
    SYSTEMS_TOML,
    TOKEN_ENDPOINT,
    AuthEnv,
    b64url,
    hs256_jwt,
    raw_jwt,
)


def refused(call: Callable[[], object], reason_part: str) -> AuthenticationError:
    """Assert ``call`` raises AuthenticationError whose reason contains ``reason_part``
    while the client-facing detail stays the one vague message."""
    with pytest.raises(AuthenticationError) as info:
        call()
    err = info.value
    assert reason_part in err.reason, err.reason
    assert err.detail == AuthenticationError.PUBLIC_DETAIL
    assert err.internal_detail == err.reason
    return err


def unverified(token: str) -> tuple[dict[str, object], dict[str, object]]:
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    return header, claims


# ================================================================== exchange: happy paths


def test_exchange_eddsa_issues_rfc9068_access_token(env: AuthEnv) -> None:
    response = env.service.exchange(env.form(env.assertion("sys-ed"), officer="张三"))

    assert response.token_type == "Bearer"
    assert response.expires_in == 600
    assert response.to_json() == {
        "access_token": response.access_token,
        "token_type": "Bearer",
        "expires_in": 600,
    }
    header, claims = unverified(response.access_token)
    assert header == {"alg": "EdDSA", "typ": "at+jwt", "kid": env.keystore.kid}
    now = env.clock.epoch
    jti = claims.pop("jti")
    assert isinstance(jti, str)
    assert uuid.UUID(jti).version == 4
    assert claims == {
        "iss": ISSUER,
        "aud": ISSUER,
        "sub": "sys-ed",
        "client_id": "sys-ed",
        "dept": "rsj",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "officer": "张三",
    }
    # Independently verifiable with the published JWKS.
    jwk = env.keystore.jwks()["keys"][0]
    public = jwt.PyJWK(jwk).key
    jwt.decode(
        response.access_token,
        public,
        algorithms=["EdDSA"],
        audience=ISSUER,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )


def test_exchange_es256(env: AuthEnv) -> None:
    response = env.service.exchange(env.form(env.assertion("sys-ec"), client_id="sys-ec"))
    _, claims = unverified(response.access_token)
    assert claims["sub"] == "sys-ec"
    assert claims["dept"] == "ybj"
    assert "officer" not in claims


@pytest.mark.parametrize("aud", [TOKEN_ENDPOINT, ISSUER, ["https://other.example", TOKEN_ENDPOINT]])
def test_exchange_accepts_token_endpoint_or_issuer_audience(env: AuthEnv, aud: object) -> None:
    env.service.exchange(env.form(env.assertion(aud=aud)))


def test_exchange_accepts_time_claims_within_skew(env: AuthEnv) -> None:
    now = env.clock.epoch
    # exp 29 s ago, iat/nbf 29 s ahead: all within the 30 s skew.
    env.service.exchange(env.form(env.assertion(iat=now - 200, exp=now - 29)))
    env.service.exchange(env.form(env.assertion(iat=now + 29, nbf=now + 29, exp=now + 100)))
    # Exactly the maximum lifetime is fine.
    env.service.exchange(env.form(env.assertion(iat=now, exp=now + 300)))


def test_make_client_assertion_shape(env: AuthEnv) -> None:
    keys = env.systems["sys-ec"]
    token = make_client_assertion(
        "sys-ec", keys.private_key, "ES256", keys.kid, TOKEN_ENDPOINT, env.clock.now, ttl_s=30
    )
    header, claims = unverified(token)
    assert header["alg"] == "ES256"
    assert header["kid"] == keys.kid
    now = env.clock.epoch
    assert claims["iss"] == claims["sub"] == "sys-ec"
    assert claims["aud"] == TOKEN_ENDPOINT
    assert (claims["iat"], claims["exp"]) == (now, now + 30)
    assert isinstance(claims["jti"], str)
    assert env.service.exchange(env.form(token)).expires_in == 600


def test_make_client_assertion_refuses_wrong_alg_and_naive_time(env: AuthEnv) -> None:
    keys = env.systems["sys-ed"]
    with pytest.raises(ConfigurationError):
        make_client_assertion("sys-ed", keys.private_key, "ES256", keys.kid, ISSUER, env.clock.now)
    with pytest.raises(ConfigurationError):
        make_client_assertion(
            "sys-ed", keys.private_key, "EdDSA", keys.kid, ISSUER, datetime(2025, 1, 1)
        )


# ================================================================== exchange: refusals


def test_forged_signature_with_registered_kid(env: AuthEnv) -> None:
    # Signed by a rogue key but claiming sys-ed's kid.
    token = env.assertion("sys-ed", signer="rogue-ed", kid=env.systems["sys-ed"].kid)
    refused(lambda: env.service.exchange(env.form(token)), "signature invalid")


def test_tampered_assertion_payload(env: AuthEnv) -> None:
    header, _, sig = env.assertion("sys-ed").split(".")
    payload = b64url(json.dumps(env.claims("sys-ed", exp=env.clock.epoch + 120)).encode())
    refused(
        lambda: env.service.exchange(env.form(f"{header}.{payload}.{sig}")), "signature invalid"
    )


def test_alg_none(env: AuthEnv) -> None:
    token = raw_jwt({"alg": "none", "kid": env.systems["sys-ed"].kid}, env.claims(), b"")
    refused(lambda: env.service.exchange(env.form(token)), "alg 'none' is not allowed")


def test_algorithm_confusion_hs256_with_public_pem(env: AuthEnv) -> None:
    keys = env.systems["sys-ed"]
    token = hs256_jwt(
        {"alg": "HS256", "typ": "JWT", "kid": keys.kid}, env.claims(), keys.public_pem
    )
    refused(lambda: env.service.exchange(env.form(token)), "alg 'HS256' is not allowed")


def test_rs256_assertion(env: AuthEnv) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(
        env.claims(), rsa_key, algorithm="RS256", headers={"kid": env.systems["sys-ed"].kid}
    )
    refused(lambda: env.service.exchange(env.form(token)), "alg 'RS256' is not allowed")


def test_alg_must_match_the_key_not_the_header(env: AuthEnv) -> None:
    # ES256 signature by sys-ec's key but kid of sys-ed's EdDSA key.
    token = env.assertion("sys-ed", signer="sys-ec", kid=env.systems["sys-ed"].kid)
    refused(lambda: env.service.exchange(env.form(token)), "does not match the EdDSA key")


@pytest.mark.parametrize(
    "aud",
    ["https://evil.example/v1/token", f"{ISSUER}/v1/query", ["https://a.example"], [], 42, DROP],
)
def test_wrong_audience(env: AuthEnv, aud: object) -> None:
    refused(lambda: env.service.exchange(env.form(env.assertion(aud=aud))), "aud")


def test_iss_sub_mismatch(env: AuthEnv) -> None:
    token = env.assertion("sys-ed", sub="sys-ec")
    refused(lambda: env.service.exchange(env.form(token)), "!= sub")


@pytest.mark.parametrize("claim", ["iss", "sub"])
def test_missing_iss_or_sub(env: AuthEnv, claim: str) -> None:
    token = env.assertion("sys-ed", **{claim: DROP})
    refused(lambda: env.service.exchange(env.form(token)), "iss/sub missing")


def test_iss_of_another_registered_system(env: AuthEnv) -> None:
    # sys-ed's own key and kid, but claiming to be sys-ec.
    token = env.assertion("sys-ec", signer="sys-ed")
    refused(lambda: env.service.exchange(env.form(token)), "belongs to sys-ed, not to system")


def test_unknown_system(env: AuthEnv) -> None:
    # sys-ed's key and kid, claiming an id nobody registered.
    token = jwt.encode(
        env.claims("no-such-system"),
        env.systems["sys-ed"].private_key,
        algorithm="EdDSA",
        headers={"kid": env.systems["sys-ed"].kid},
    )
    refused(lambda: env.service.exchange(env.form(token)), "unknown system")
    # An unregistered system signing with its own unregistered key: unknown kid.
    rogue = env.assertion("rogue-ed")
    refused(lambda: env.service.exchange(env.form(rogue)), "is not registered")


def test_kid_of_another_system(env: AuthEnv) -> None:
    # sys-ed signs, names sys-ec's kid and claims to be sys-ec.
    token = env.assertion("sys-ec", signer="sys-ed", kid=env.systems["sys-ec"].kid, alg="EdDSA")
    refused(lambda: env.service.exchange(env.form(token)), "does not match the ES256 key")
    # Same with two EdDSA systems: the signature does not verify under the other key.
    token = env.assertion("sys-off", signer="sys-ed", kid=env.systems["sys-ec"].kid)
    with pytest.raises(AuthenticationError):
        env.service.exchange(env.form(token))


def test_unknown_and_missing_kid(env: AuthEnv) -> None:
    refused(
        lambda: env.service.exchange(env.form(env.assertion(kid="no-such-kid"))), "not registered"
    )
    token = jwt.encode(env.claims(), env.systems["sys-ed"].private_key, algorithm="EdDSA")
    refused(lambda: env.service.exchange(env.form(token)), "no kid header")


def test_client_id_must_match(env: AuthEnv) -> None:
    token = env.assertion("sys-ed")
    refused(
        lambda: env.service.exchange(env.form(token, client_id="sys-ec")),
        "client_id 'sys-ec' does not match",
    )


def test_expired_assertion(env: AuthEnv) -> None:
    now = env.clock.epoch
    token = env.assertion(iat=now - 100, exp=now - 30)  # exactly at the skew boundary
    refused(lambda: env.service.exchange(env.form(token)), "expired")


def test_not_yet_valid_nbf(env: AuthEnv) -> None:
    now = env.clock.epoch
    token = env.assertion(nbf=now + 31, exp=now + 120)
    refused(lambda: env.service.exchange(env.form(token)), "not valid before")


def test_iat_in_the_future(env: AuthEnv) -> None:
    now = env.clock.epoch
    token = env.assertion(iat=now + 31, exp=now + 90)
    refused(lambda: env.service.exchange(env.form(token)), "in the future")


def test_assertion_lifetime_too_long(env: AuthEnv) -> None:
    now = env.clock.epoch
    refused(
        lambda: env.service.exchange(env.form(env.assertion(iat=now, exp=now + 301))),
        "lifetime 301s exceeds 300s",
    )
    # Backdating iat does not buy a longer window either.
    refused(
        lambda: env.service.exchange(env.form(env.assertion(iat=now - 250, exp=now + 100))),
        "lifetime",
    )
    refused(
        lambda: env.service.exchange(env.form(env.assertion(iat=now, exp=now))),
        "exp is not after iat",
    )


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": DROP}, "no exp claim"),
        ({"iat": DROP}, "no iat claim"),
        ({"jti": DROP}, "jti missing"),
        ({"jti": ""}, "jti missing"),
        ({"jti": 12345}, "jti missing"),
        ({"jti": "x" * 257}, "jti missing"),
        ({"exp": "1740816060"}, "exp is not a number"),
        ({"exp": True}, "exp is not a number"),
        ({"exp": float("nan")}, "exp is not finite"),
        ({"exp": float("inf")}, "exp is not finite"),
        ({"nbf": float("nan")}, "nbf is not finite"),
        ({"iat": None}, "no iat claim"),
    ],
)
def test_bad_claims(env: AuthEnv, overrides: dict[str, Any], reason: str) -> None:
    refused(lambda: env.service.exchange(env.form(env.assertion(**overrides))), reason)


def test_replayed_jti(env: AuthEnv) -> None:
    token = env.assertion()
    env.service.exchange(env.form(token))
    refused(lambda: env.service.exchange(env.form(token)), "replayed assertion jti")
    # A different assertion reusing the jti is a replay too.
    again = env.assertion(jti=json.loads(jwt.utils.base64url_decode(token.split(".")[1]))["jti"])
    refused(lambda: env.service.exchange(env.form(again)), "replayed assertion jti")
    # The same jti from another system is a different assertion.
    env.service.exchange(env.form(env.assertion("sys-ec", jti="shared-jti")))
    env.service.exchange(env.form(env.assertion("sys-ed", jti="shared-jti")))


def test_refused_assertion_does_not_burn_its_jti(env: AuthEnv) -> None:
    bad = env.assertion(aud="https://evil.example", jti="j-1")
    refused(lambda: env.service.exchange(env.form(bad)), "aud")
    env.service.exchange(env.form(env.assertion(jti="j-1")))


def test_replay_across_two_workers_sharing_a_sqlite_file(env: AuthEnv, tmp_path: Path) -> None:
    path = tmp_path / "replay.sqlite"
    cache_a = SqliteReplayCache(path, clock=env.clock)
    cache_b = SqliteReplayCache(path, clock=env.clock)
    try:
        worker_a = env.new_service(replay=cache_a)
        worker_b = env.new_service(replay=cache_b)
        token = env.assertion()
        worker_a.exchange(env.form(token))
        refused(lambda: worker_b.exchange(env.form(token)), "replayed assertion jti")
    finally:
        cache_a.close()
        cache_b.close()


@pytest.mark.services
def test_replay_across_two_workers_on_postgres(env: AuthEnv, pg_dsn: str) -> None:
    table = f"t_auth_replay_tok_{uuid.uuid4().hex[:12]}"
    cache_a = PostgresReplayCache(pg_dsn, table=table, clock=env.clock)
    cache_b = PostgresReplayCache(pg_dsn, table=table, clock=env.clock)
    try:
        token = env.assertion()
        env.new_service(replay=cache_a).exchange(env.form(token))
        refused(lambda: env.new_service(replay=cache_b).exchange(env.form(token)), "replayed")
    finally:
        import psycopg

        cache_a.close()
        cache_b.close()
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


def test_oversized_assertion(env: AuthEnv) -> None:
    token = env.assertion(padding="x" * MAX_TOKEN_BYTES)
    assert len(token) > MAX_TOKEN_BYTES
    refused(lambda: env.service.exchange(env.form(token)), "larger than 8192 bytes")


def test_suspended_system(env: AuthEnv) -> None:
    refused(lambda: env.service.exchange(env.form(env.assertion("sys-off"))), "suspended")


@pytest.mark.parametrize(
    "assertion",
    [
        "garbage",
        "a.b.c",
        "e30.e30.",  # {} header: no alg
        b64url(b"[1]") + ".e30.AAAA",  # header not an object
        "....",
    ],
)
def test_malformed_assertion(env: AuthEnv, assertion: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        env.service.exchange(env.form(assertion))
    assert info.value.detail == AuthenticationError.PUBLIC_DETAIL


def test_assertion_with_duplicate_claims(env: AuthEnv) -> None:
    keys = env.systems["sys-ed"]
    claims = env.claims()
    body = json.dumps(claims)[:-1] + ', "sub": "sys-ec"}'
    header = {"alg": "EdDSA", "typ": "JWT", "kid": keys.kid}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(body.encode())}"
    assert isinstance(keys.private_key, Ed25519PrivateKey)
    sig = keys.private_key.sign(signing_input.encode())
    token = f"{signing_input}.{b64url(sig)}"
    refused(lambda: env.service.exchange(env.form(token)), "duplicate member 'sub'")


def test_assertion_payload_not_an_object(env: AuthEnv) -> None:
    keys = env.systems["sys-ed"]
    header = {"alg": "EdDSA", "typ": "JWT", "kid": keys.kid}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(b'[1, 2]')}"
    assert isinstance(keys.private_key, Ed25519PrivateKey)
    sig = keys.private_key.sign(signing_input.encode())
    refused(
        lambda: env.service.exchange(env.form(f"{signing_input}.{b64url(sig)}")),
        "not a JSON object",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"grant_type": "password"}, "grant_type"),
        ({"grant_type": ""}, "grant_type"),
        ({"client_assertion_type": "urn:other"}, "client_assertion_type"),
        ({"client_assertion": ""}, "client_assertion is required"),
        ({"officer": "x" * 129}, "officer"),
        ({"officer": "张三\n李四"}, "officer"),
        ({"officer": " 张三"}, "officer"),
    ],
)
def test_malformed_token_request(env: AuthEnv, change: dict[str, str], message: str) -> None:
    form = env.form(env.assertion())
    form.update(change)
    with pytest.raises(InvalidRequestError, match=message):
        env.service.exchange(form)


def test_missing_grant_type(env: AuthEnv) -> None:
    form = env.form(env.assertion())
    del form["grant_type"]
    with pytest.raises(InvalidRequestError) as info:
        env.service.exchange(form)
    assert info.value.extra == {"error": "unsupported_grant_type"}


def test_naive_clock_is_a_configuration_error(env: AuthEnv) -> None:
    service = env.new_service()
    env.clock.now = datetime(2025, 3, 1, 8, 0)
    with pytest.raises(ConfigurationError):
        service.exchange(env.form(env.assertion(iat=1740816000, exp=1740816060)))


# ================================================================== authenticate


def test_authenticate_builds_principal(env: AuthEnv) -> None:
    token = env.access_token("sys-ed", officer="李四")
    principal = env.service.authenticate(f"Bearer {token}")
    _, claims = unverified(token)
    assert principal == Principal(
        system="sys-ed",
        department="rsj",
        attributes={"district": "历下区", "city": "济南市"},
        purposes=frozenset({"employment_subsidy_review"}),
        token_id=str(claims["jti"]),
        officer="李四",
    )


def test_authenticate_es256_system_without_officer(env: AuthEnv) -> None:
    principal = env.service.authenticate(f"Bearer {env.access_token('sys-ec')}")
    assert principal.system == "sys-ec"
    assert principal.purposes == frozenset({"medical_insurance_enrollment", "statistics"})
    assert principal.officer is None


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(env: AuthEnv, scheme: str) -> None:
    token = env.access_token()
    assert env.service.authenticate(f"{scheme} {token}").system == "sys-ed"
    assert env.service.authenticate(f"  {scheme}   {token}  ").system == "sys-ed"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing Authorization"),
        ("", "missing Authorization"),
        ("   ", "missing Authorization"),
        ("Bearer", "empty bearer token"),
        ("Bearer ", "empty bearer token"),
        ("Basic x", "scheme 'Basic' is not Bearer"),
        ("Basic dXNlcjpwYXNz", "is not Bearer"),
        ("garbage", "is not Bearer"),
        ("Bearer a b", "not an RFC 6750 b64token"),
        ("Bearer tok!en", "not an RFC 6750 b64token"),
        ("Bearer 令牌", "not an RFC 6750 b64token"),
        ("Bearer abc", "malformed access token"),
        ("Bearer a.b.c", "malformed access token"),
        ("Bearer e30.e30.e30", "typ None is not at+jwt"),
    ],
)
def test_malformed_authorization_header(env: AuthEnv, header: str | None, reason: str) -> None:
    refused(lambda: env.service.authenticate(header), reason)


def test_oversized_access_token(env: AuthEnv) -> None:
    refused(
        lambda: env.service.authenticate("Bearer " + "a" * (MAX_TOKEN_BYTES + 1)),
        "larger than 8192 bytes",
    )
    refused(
        lambda: env.service.authenticate("Bearer " + "a" * (MAX_TOKEN_BYTES + 100)),
        "longer than 8192 bytes",
    )


def _gateway_signed(env: AuthEnv, claims: dict[str, object], **header: object) -> str:
    hdr: dict[str, object] = {"kid": env.keystore.kid, "typ": "at+jwt"}
    hdr.update(header)
    return jwt.encode(claims, env.keystore.signing_key, algorithm="EdDSA", headers=hdr)


def _access_claims(env: AuthEnv, **overrides: object) -> dict[str, object]:
    now = env.clock.epoch
    claims: dict[str, object] = {
        "iss": ISSUER,
        "aud": ISSUER,
        "sub": "sys-ed",
        "client_id": "sys-ed",
        "dept": "rsj",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
    }
    for name, value in overrides.items():
        if value is DROP:
            claims.pop(name)
        else:
            claims[name] = value
    return claims


def test_hand_built_access_token_passes(env: AuthEnv) -> None:
    # Guards the refusal tests below: the same construction without a defect is accepted.
    token = _gateway_signed(env, _access_claims(env))
    assert env.service.authenticate(f"Bearer {token}").system == "sys-ed"
    token = _gateway_signed(env, _access_claims(env), typ="application/at+jwt")
    assert env.service.authenticate(f"Bearer {token}").system == "sys-ed"


def test_tampered_access_token_payload(env: AuthEnv) -> None:
    header, _, sig = env.access_token("sys-ed").split(".")
    forged = b64url(
        json.dumps(_access_claims(env, sub="sys-ec", client_id="sys-ec", dept="ybj")).encode()
    )
    refused(
        lambda: env.service.authenticate(f"Bearer {header}.{forged}.{sig}"), "signature invalid"
    )


def test_access_token_expiry_with_bounded_skew(env: AuthEnv) -> None:
    token = env.access_token()
    env.clock.advance(600 + 29)
    env.service.authenticate(f"Bearer {token}")
    env.clock.advance(1)
    refused(lambda: env.service.authenticate(f"Bearer {token}"), "access token expired")


def test_access_token_not_yet_valid(env: AuthEnv) -> None:
    now = env.clock.epoch
    token = _gateway_signed(env, _access_claims(env, nbf=now + 31))
    refused(lambda: env.service.authenticate(f"Bearer {token}"), "not valid before")
    token = _gateway_signed(env, _access_claims(env, iat=now + 31))
    refused(lambda: env.service.authenticate(f"Bearer {token}"), "iat")
    token = _gateway_signed(env, _access_claims(env, nbf=now + 29, iat=now + 29))
    env.service.authenticate(f"Bearer {token}")


def test_access_token_signed_by_non_gateway_key(env: AuthEnv) -> None:
    system_key = env.systems["sys-ed"]
    claims = _access_claims(env)
    # A consumer's own EdDSA key, claiming the gateway's kid.
    forged = jwt.encode(
        claims,
        system_key.private_key,
        algorithm="EdDSA",
        headers={"kid": env.keystore.kid, "typ": "at+jwt"},
    )
    refused(lambda: env.service.authenticate(f"Bearer {forged}"), "signature invalid")
    # ... or its own kid.
    forged = jwt.encode(
        claims,
        system_key.private_key,
        algorithm="EdDSA",
        headers={"kid": system_key.kid, "typ": "at+jwt"},
    )
    refused(lambda: env.service.authenticate(f"Bearer {forged}"), "is not a gateway key")
    # ES256 from a consumer key.
    ec = env.systems["sys-ec"]
    forged = jwt.encode(
        claims, ec.private_key, algorithm="ES256", headers={"kid": ec.kid, "typ": "at+jwt"}
    )
    refused(lambda: env.service.authenticate(f"Bearer {forged}"), "alg 'ES256' is not EdDSA")


def test_access_token_alg_none_and_confusion(env: AuthEnv) -> None:
    claims = _access_claims(env)
    none = raw_jwt({"alg": "none", "typ": "at+jwt", "kid": env.keystore.kid}, claims, b"")
    refused(lambda: env.service.authenticate(f"Bearer {none}"), "alg 'none' is not EdDSA")
    public_pem = env.keystore.signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs = hs256_jwt({"alg": "HS256", "typ": "at+jwt", "kid": env.keystore.kid}, claims, public_pem)
    refused(lambda: env.service.authenticate(f"Bearer {hs}"), "alg 'HS256' is not EdDSA")


def test_retired_key_accepted_while_in_jwks(env: AuthEnv, tmp_path: Path) -> None:
    retired_kid = next(k for k in env.keystore.verification_keys if k != env.keystore.kid)
    token = jwt.encode(
        _access_claims(env),
        env.retired_private,
        algorithm="EdDSA",
        headers={"kid": retired_kid, "typ": "at+jwt"},
    )
    assert env.service.authenticate(f"Bearer {token}").system == "sys-ed"
    assert retired_kid in {k["kid"] for k in env.keystore.jwks()["keys"]}

    # Rotation finished: the retired public key is deleted, its tokens stop working.
    for path in env.settings.key_dir.glob("gateway-signing-*.pub.pem"):
        path.unlink()
    after = env.new_service(keystore=GatewayKeyStore.load(env.settings.key_dir))
    refused(lambda: after.authenticate(f"Bearer {token}"), "is not a gateway key")


@pytest.mark.parametrize("typ", [DROP, "JWT", "jwt", "", 7, "at+jwt+x"])
def test_access_token_typ_required(env: AuthEnv, typ: object) -> None:
    hdr: dict[str, object] = {"kid": env.keystore.kid}
    if typ is not DROP:
        hdr["typ"] = typ
    token = jwt.encode(
        _access_claims(env), env.keystore.signing_key, algorithm="EdDSA", headers=hdr
    )
    if typ is DROP:
        # PyJWT adds typ "JWT" by default; strip it to test a truly missing typ.
        token = jwt.encode(
            _access_claims(env),
            env.keystore.signing_key,
            algorithm="EdDSA",
            headers={"kid": env.keystore.kid, "typ": None},
        )
        assert "typ" not in jwt.get_unverified_header(token)
    refused(lambda: env.service.authenticate(f"Bearer {token}"), "is not at+jwt")


def test_client_assertion_is_not_an_access_token(env: AuthEnv) -> None:
    refused(lambda: env.service.authenticate(f"Bearer {env.assertion()}"), "is not at+jwt")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"iss": "https://evil.example"}, "iss"),
        ({"iss": DROP}, "iss"),
        ({"aud": "https://evil.example"}, "aud"),
        ({"aud": [ISSUER, 1]}, "aud"),
        ({"aud": DROP}, "aud"),
        ({"exp": DROP}, "no exp claim"),
        ({"iat": DROP}, "no iat claim"),
        ({"exp": float("nan")}, "exp is not finite"),
        ({"sub": DROP}, "sub/client_id"),
        ({"client_id": "sys-ec"}, "sub/client_id"),
        ({"dept": DROP}, "dept missing"),
        ({"jti": DROP}, "jti missing"),
        ({"officer": 5}, "officer is not a string"),
        ({"sub": "ghost", "client_id": "ghost"}, "system 'ghost' is not registered"),
        ({"dept": "gaj"}, "no longer matches"),
    ],
)
def test_access_token_claim_checks(env: AuthEnv, overrides: dict[str, object], reason: str) -> None:
    token = _gateway_signed(env, _access_claims(env, **overrides))
    refused(lambda: env.service.authenticate(f"Bearer {token}"), reason)


def test_suspension_takes_effect_at_once(env: AuthEnv) -> None:
    token = env.access_token("sys-ed")
    env.service.authenticate(f"Bearer {token}")
    suspended = env.write_systems(SYSTEMS_TOML.format(ed_status="suspended"))
    service = env.new_service(registry=suspended)
    refused(lambda: service.authenticate(f"Bearer {token}"), "sys-ed is suspended")
    refused(lambda: service.exchange(env.form(env.assertion("sys-ed"))), "sys-ed is suspended")


def test_token_of_a_deregistered_system_is_refused(env: AuthEnv) -> None:
    token = env.access_token("sys-ed")
    without = SystemRegistry.parse({"systems": {}}, base_dir=env.root)
    refused(
        lambda: env.new_service(registry=without).authenticate(f"Bearer {token}"),
        "is not registered",
    )


def test_verified_token_cache_skips_only_the_signature(env: AuthEnv) -> None:
    cache = VerifiedTokenCache(max_entries=8)
    service = env.new_service(token_cache=cache)
    token = env.access_token()
    first = service.authenticate(f"Bearer {token}")
    assert len(cache) == 1
    assert service.authenticate(f"Bearer {token}") == first
    assert len(cache) == 1
    # Expiry is still enforced for a cached token ...
    env.clock.advance(631)
    refused(lambda: service.authenticate(f"Bearer {token}"), "expired")
    # ... and so is suspension (a new service sharing the cache, new registry).
    env.clock.advance(-631)
    suspended = env.write_systems(SYSTEMS_TOML.format(ed_status="suspended"))
    refused(
        lambda: env.new_service(registry=suspended, token_cache=cache).authenticate(
            f"Bearer {token}"
        ),
        "suspended",
    )
    # Invalid tokens are never cached.
    with pytest.raises(AuthenticationError):
        service.authenticate(f"Bearer {token[:-4]}AAAA")
    assert len(cache) == 1


def test_verified_token_cache_is_bounded(env: AuthEnv) -> None:
    cache = VerifiedTokenCache(max_entries=2)
    service = env.new_service(token_cache=cache)
    tokens = [env.access_token() for _ in range(3)]
    for token in tokens:
        service.authenticate(f"Bearer {token}")
    assert len(cache) == 2
    assert cache.get(tokens[0]) is None
    assert cache.get(tokens[2]) is not None
    with pytest.raises(ConfigurationError):
        VerifiedTokenCache(max_entries=0)


def test_demo_setup_end_to_end(root_dir: Path, policy_dir: Path) -> None:
    """The committed demo keys and systems.toml work together: every active demo system
    can obtain and use a token; the suspended one cannot."""
    from gateway.auth import MemoryReplayCache, load_private_key
    from gateway.catalog import load_catalog
    from gateway.settings import Settings
    from tests.unit.auth.support import FakeClock

    catalog = load_catalog(policy_dir / "catalog.toml")
    registry = SystemRegistry.load(
        policy_dir / "systems.toml",
        base_dir=root_dir,
        known_departments=catalog.departments,
        known_purposes=catalog.purposes,
    )
    settings = Settings(key_dir=root_dir / "keys" / "demo")
    clock = FakeClock()
    keystore = GatewayKeyStore.load(settings.key_dir)
    assert keystore.is_demo
    from gateway.auth import TokenService

    service = TokenService(settings, registry, keystore, MemoryReplayCache(clock=clock), clock)
    for system in registry.all():
        (key,) = system.keys.values()
        private = load_private_key(root_dir / "keys" / "demo" / f"{system.system_id}.demo.key.pem")
        assertion = make_client_assertion(
            system.system_id, private, key.alg, key.kid, service.token_endpoint, clock.now
        )
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }
        if not system.is_active:
            with pytest.raises(AuthenticationError) as info:
                service.exchange(form)
            assert "suspended" in info.value.reason
            continue
        token = service.exchange(form).access_token
        principal = service.authenticate(f"Bearer {token}")
        assert principal.system == system.system_id
        assert principal.department == system.department
        assert dict(principal.attributes) == dict(system.attributes)
