"""Token endpoint and bearer-token authentication.

Two kinds of JWT pass through here:

* **Client assertions** (RFC 7523 §2.2, client authentication): a consumer system signs a
  short-lived JWT with its registered key (EdDSA or ES256) and exchanges it at
  ``POST /v1/token`` (``grant_type=client_credentials``) for an access token.
* **Access tokens** (RFC 9068 JWT profile): signed by the gateway's Ed25519 key, ``typ``
  ``at+jwt``, presented as ``Authorization: Bearer …`` (RFC 6750 §2.1) on every query.

Security rules applied to both (RFC 8725 "JWT Best Current Practices"):

* size is bounded *before* anything is parsed;
* the verification algorithm comes from the key, never from the token header, so
  ``alg: none``, HS* with a public key as secret, and RS* are refused (RFC 8725 §2.1, §3.1);
* every time claim is checked against the injected clock with a bounded skew;
* claim values are strictly typed (a NaN ``exp`` must not compare as "not expired").

Every refusal raises :class:`AuthenticationError` whose ``reason`` says exactly why (for the
audit log); the client only ever sees the one vague public message. Malformed *requests*
to the token endpoint (wrong ``grant_type``, missing fields) raise
:class:`InvalidRequestError` instead, as RFC 6749 §5.2 separates ``invalid_request`` and
``unsupported_grant_type`` from ``invalid_client``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from jwt import PyJWTError
from jwt import encode as jwt_encode
from jwt.api_jws import PyJWS
from jwt.exceptions import InvalidSignatureError

from gateway.auth.keys import ALGORITHMS, GatewayKeyStore, PrivateKey, check_key_matches_alg
from gateway.auth.replay import ReplayCache
from gateway.auth.systems import RegisteredSystem, SystemRegistry
from gateway.cache import LruCache
from gateway.clock import Clock
from gateway.domain import Principal
from gateway.errors import AuthenticationError, ConfigurationError, InvalidRequestError
from gateway.settings import Settings

__all__ = [
    "ACCESS_TOKEN_TYP",
    "ASSERTION_TYPE",
    "MAX_TOKEN_BYTES",
    "TokenResponse",
    "TokenService",
    "VerifiedTokenCache",
    "make_client_assertion",
]

#: RFC 7523 §2.2 value of ``client_assertion_type``.
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: RFC 9068 §2.1 media type of JWT access tokens (the ``typ`` header).
ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105 - a media type, not a secret
_ACCEPTED_TYP = frozenset({"at+jwt", "application/at+jwt"})  # RFC 9068 §4 step 1
#: Largest client assertion or access token looked at; ours are well under 1 KiB.
MAX_TOKEN_BYTES = 8 * 1024
_MAX_ID_CHARS = 256
_MAX_OFFICER_CHARS = 128
# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_GATEWAY_ALG = "EdDSA"


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """Successful token response (RFC 6749 §5.1)."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - RFC 6750 token type, not a secret
    expires_in: int = 0
    #: Who the token was issued to (for the audit record; not part of the JSON).
    system: str = ""
    department: str = ""
    officer: str | None = None

    def to_json(self) -> dict[str, str | int]:
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }


@dataclass(frozen=True, slots=True)
class _AccessClaims:
    """The claims of an access token whose signature, issuer and audience were verified;
    the time claims still have to be checked on every use."""

    sub: str
    dept: str
    jti: str
    officer: str | None
    iat: float
    exp: float
    nbf: float | None
    #: The gateway key that signed it (a retired key stops verifying at its deadline).
    kid: str = ""


class VerifiedTokenCache:
    """Bounded LRU of access tokens whose signature and static claims were verified.

    Keyed by the SHA-256 of the token, so memory per entry is small whatever the token
    size. Only the signature check is skipped on a hit: expiry and the system's status are
    re-checked on every request. Thread-safe. Pass one to :class:`TokenService`.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        if max_entries < 1:
            raise ConfigurationError("VerifiedTokenCache needs max_entries >= 1")
        self._entries: LruCache[bytes, _AccessClaims] = LruCache(max_entries)

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8")).digest()

    def get(self, token: str) -> _AccessClaims | None:
        return self._entries.get(self._key(token))

    def put(self, token: str, claims: _AccessClaims) -> None:
        self._entries.put(self._key(token), claims)

    def __len__(self) -> int:
        return len(self._entries)


def _new_token_id() -> str:
    return str(uuid.uuid4())


class TokenService:
    """Issues access tokens for client assertions and turns access tokens into Principals.

    Immutable after construction apart from the injected replay cache and the optional
    verified-token cache; safe to share between threads.
    """

    def __init__(
        self,
        settings: Settings,
        registry: SystemRegistry | Callable[[], SystemRegistry],
        keystore: GatewayKeyStore,
        replay: ReplayCache,
        clock: Clock,
        *,
        token_cache: VerifiedTokenCache | None = None,
        new_token_id: Callable[[], str] = _new_token_id,
    ) -> None:
        self._settings = settings
        # The registry of the active policy version (it can change while serving).
        self._registry_of: Callable[[], SystemRegistry] = (
            registry if callable(registry) else lambda: registry
        )
        self._keystore = keystore
        self._replay = replay
        self._clock = clock
        self._cache = token_cache
        self._new_token_id = new_token_id
        self._skew = float(settings.clock_skew_s)
        issuer = settings.issuer
        #: The token endpoint URL, the ``aud`` a client assertion must name (RFC 7523 §3 item 3).
        self.token_endpoint = f"{issuer.rstrip('/')}/v1/token"
        # RFC 7523 §3 item 3 lets the authorization server's issuer identify it too.
        self._assertion_audiences = frozenset({self.token_endpoint, issuer})
        # A PyJWS that knows only our two algorithms: even if a check above were wrong,
        # "none", HS* and RS* are not implemented by this instance.
        self._jws = PyJWS(algorithms=sorted(ALGORITHMS))

    # ------------------------------------------------------------------ token endpoint

    def exchange(self, form: Mapping[str, str]) -> TokenResponse:
        """Handle a token request: verify the client assertion, issue an access token.

        ``form`` holds the decoded ``application/x-www-form-urlencoded`` body: ``grant_type``
        (must be ``client_credentials``), ``client_assertion_type`` (RFC 7523 §2.2 URN),
        ``client_assertion`` (the JWT), optional ``client_id`` (must equal the assertion's
        ``iss``/``sub``) and optional ``officer`` (the person acting, for the audit log).

        Guarantees: a token is issued only if the assertion is signed by an active
        system's registered key with that key's algorithm, is addressed to this gateway,
        is inside its (short) validity window, and its ``jti`` was never used before; the
        ``jti`` is then remembered until the assertion expires.

        Raises InvalidRequestError for a malformed request, AuthenticationError (precise
        ``reason``) for any assertion problem, and whatever the replay cache raises when it
        is unavailable (BackendUnavailableError): no replay check, no token.
        """
        grant_type = form.get("grant_type")
        if grant_type != "client_credentials":
            raise InvalidRequestError(
                "grant_type must be client_credentials",
                extra={"error": "unsupported_grant_type"},
            )
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise InvalidRequestError(
                f"client_assertion_type must be {ASSERTION_TYPE}",
                extra={"error": "invalid_request"},
            )
        assertion = form.get("client_assertion")
        if not assertion:
            raise InvalidRequestError(
                "client_assertion is required", extra={"error": "invalid_request"}
            )
        officer = _officer(form.get("officer"))
        client_id = form.get("client_id") or None

        system_id, department = self._verify_assertion(assertion, client_id)

        now = self._now()
        iat = int(now)
        ttl = self._settings.access_token_ttl_s
        claims: dict[str, Any] = {
            "iss": self._settings.issuer,
            "aud": self._settings.issuer,
            "sub": system_id,
            "client_id": system_id,
            "dept": department,
            "iat": iat,
            "nbf": iat,
            "exp": iat + ttl,
            "jti": self._new_token_id(),
        }
        if officer is not None:
            claims["officer"] = officer
        token = self._jws.encode(
            json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
            key=self._keystore.signing_key,
            algorithm=_GATEWAY_ALG,
            headers={"kid": self._keystore.kid, "typ": ACCESS_TOKEN_TYP},
        )
        return TokenResponse(
            access_token=token,
            token_type="Bearer",  # noqa: S106 - RFC 6750 token type
            expires_in=ttl,
            system=system_id,
            department=department,
            officer=officer,
        )

    def _verify_assertion(self, assertion: str, client_id: str | None) -> tuple[str, str]:
        """RFC 7523 §3 processing. Returns (system id, department)."""
        if len(assertion.encode("utf-8")) > MAX_TOKEN_BYTES:
            raise AuthenticationError(f"client assertion larger than {MAX_TOKEN_BYTES} bytes")
        try:
            header = self._jws.get_unverified_header(assertion)
        except PyJWTError as exc:
            raise AuthenticationError(f"malformed client assertion: {exc}") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            raise AuthenticationError(f"client assertion alg {_short(alg)} is not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationError("client assertion has no kid header")
        found = self._registry_of().find_key(kid)
        if found is None:
            raise AuthenticationError(f"client assertion kid {_short(kid)} is not registered")
        system, key = found
        if not system.is_active:
            raise AuthenticationError(f"system {system.system_id} is {system.status}")
        if alg != key.alg:
            # RFC 8725 §3.1: the key decides the algorithm; a mismatch is an attack or a bug.
            raise AuthenticationError(
                f"client assertion alg {alg} does not match the {key.alg} key {kid}"
            )
        try:
            decoded = self._jws.decode_complete(assertion, key=key.public_key, algorithms=[key.alg])
        except InvalidSignatureError:
            raise AuthenticationError(
                f"client assertion signature invalid (kid {kid}, system {system.system_id})"
            ) from None
        except PyJWTError as exc:
            raise AuthenticationError(f"malformed client assertion: {exc}") from None
        claims = _json_object(decoded["payload"], "client assertion")

        # RFC 7523 §3 items 1-2: iss and sub both name the client, i.e. the key's owner.
        iss, sub = claims.get("iss"), claims.get("sub")
        if not isinstance(iss, str) or not isinstance(sub, str):
            raise AuthenticationError("client assertion iss/sub missing or not strings")
        if iss != sub:
            raise AuthenticationError(f"client assertion iss {_short(iss)} != sub {_short(sub)}")
        if iss != system.system_id:
            known = self._registry_of().get(iss) is not None
            raise AuthenticationError(
                f"client assertion kid {kid} belongs to {system.system_id}, not to "
                f"{'system' if known else 'unknown system'} {_short(iss)}"
            )
        # RFC 7521 §4.2: a client_id sent alongside must identify the same client.
        if client_id is not None and client_id != system.system_id:
            raise AuthenticationError(
                f"client_id {_short(client_id)} does not match assertion iss {system.system_id}"
            )
        # RFC 7523 §3 item 3: aud must identify this authorization server.
        if not _audience_matches(claims.get("aud"), self._assertion_audiences):
            raise AuthenticationError(
                f"client assertion aud {_short(claims.get('aud'))} does not name "
                f"{self.token_endpoint}"
            )

        now = self._now()
        skew = self._skew
        # RFC 7523 §3 item 4: exp is required; reject at or after exp (RFC 7519 §4.1.4).
        exp = _numeric(claims, "exp", "client assertion", required=True)
        assert exp is not None  # noqa: S101 - required=True
        if now >= exp + skew:
            raise AuthenticationError(f"client assertion expired at {_iso(exp)}")
        # iat is optional in RFC 7523 §3 item 6 but required here: without it the
        # lifetime bound below could not be checked.
        iat = _numeric(claims, "iat", "client assertion", required=True)
        assert iat is not None  # noqa: S101 - required=True
        if iat > now + skew:
            raise AuthenticationError(f"client assertion iat {_iso(iat)} is in the future")
        max_ttl = self._settings.assertion_max_ttl_s
        if exp <= iat:
            raise AuthenticationError("client assertion exp is not after iat")
        if exp - iat > max_ttl or exp - now > max_ttl + skew:
            raise AuthenticationError(
                f"client assertion lifetime {exp - iat:.0f}s exceeds {max_ttl}s"
            )
        # RFC 7523 §3 item 5: nbf honoured when present.
        nbf = _numeric(claims, "nbf", "client assertion", required=False)
        if nbf is not None and nbf > now + skew:
            raise AuthenticationError(f"client assertion not valid before {_iso(nbf)}")
        # RFC 7523 §3 item 7: jti required here, and never accepted twice. Remembered
        # until exp + skew, the last instant the assertion could pass the checks above.
        # Done last, so only fully verified assertions can occupy the cache.
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > _MAX_ID_CHARS:
            raise AuthenticationError("client assertion jti missing or invalid")
        self._replay.remember(jti, system.system_id, datetime.fromtimestamp(exp + skew, UTC))
        return system.system_id, system.department

    # ------------------------------------------------------------------ resource side

    def authenticate(self, authorization: str | None) -> Principal:
        """Turn an ``Authorization`` header value into the Principal it authenticates.

        Accepts ``Bearer <access token>`` (scheme case-insensitive, RFC 7235 §2.1). The
        token must be one this gateway issued: ``typ`` at+jwt, EdDSA, a ``kid`` in the
        key store (current or retired), valid signature, ``iss`` and ``aud`` this gateway,
        inside ``nbf``/``iat``/``exp`` with ``clock_skew_s`` leeway (RFC 9068 §4). The
        system must still be registered, active and in the same department, so a
        suspension takes effect at once. Attributes and purposes come from the current
        registry, not from the token.

        Raises AuthenticationError (precise ``reason``) on any failure.
        """
        token = _bearer_token(authorization)
        claims = self._cache.get(token) if self._cache is not None else None
        if claims is None:
            claims = self._verify_access_token(token)
            if self._cache is not None:
                self._cache.put(token, claims)

        now = self._now()
        skew = self._skew
        if self._keystore.is_expired(claims.kid, datetime.fromtimestamp(now, UTC)):
            # Checked on every use, not only at signature verification: the verified-token
            # cache must not keep a retired key alive past its deadline.
            raise AuthenticationError(f"access token kid {claims.kid} was retired")
        if now >= claims.exp + skew:
            raise AuthenticationError(f"access token expired at {_iso(claims.exp)}")
        if claims.nbf is not None and claims.nbf > now + skew:
            raise AuthenticationError(f"access token not valid before {_iso(claims.nbf)}")
        if claims.iat > now + skew:
            raise AuthenticationError(f"access token iat {_iso(claims.iat)} is in the future")

        system = self._active_system(claims.sub)
        if system.department != claims.dept:
            raise AuthenticationError(
                f"access token department {_short(claims.dept)} no longer matches "
                f"{system.system_id}'s department {system.department}"
            )
        return system.principal(officer=claims.officer, token_id=claims.jti)

    def system_principal(self, system_id: str, *, department: str, officer: str) -> Principal:
        """The Principal of registered system ``system_id`` acting for ``officer`` (a person
        of ``department`` signed in to the console), with the same registry checks as a
        token: registered, active, of that department. Raises AuthenticationError."""
        system = self._active_system(system_id)
        if system.department != department:
            raise AuthenticationError(
                f"system {system.system_id} is of department {system.department}, "
                f"not {_short(department)}"
            )
        return system.principal(officer=officer)

    def _active_system(self, system_id: str) -> RegisteredSystem:
        """The registered, active system ``system_id``; AuthenticationError otherwise."""
        system = self._registry_of().get(system_id)
        if system is None:
            raise AuthenticationError(f"system {_short(system_id)} is not registered")
        if not system.is_active:
            raise AuthenticationError(f"system {system.system_id} is {system.status}")
        return system

    def _verify_access_token(self, token: str) -> _AccessClaims:
        """Signature and time-independent claim checks of an access token."""
        try:
            header = self._jws.get_unverified_header(token)
        except PyJWTError as exc:
            raise AuthenticationError(f"malformed access token: {exc}") from None
        typ = header.get("typ")
        # RFC 9068 §4 / RFC 8725 §3.11: explicit typing keeps other JWTs signed by the
        # same key (or a client assertion) from being accepted as access tokens.
        if not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYP:
            raise AuthenticationError(f"access token typ {_short(typ)} is not at+jwt")
        alg = header.get("alg")
        if alg != _GATEWAY_ALG:
            raise AuthenticationError(f"access token alg {_short(alg)} is not EdDSA")
        kid = header.get("kid")
        key = self._keystore.public_key(kid) if isinstance(kid, str) else None
        if key is None:
            raise AuthenticationError(f"access token kid {_short(kid)} is not a gateway key")
        try:
            decoded = self._jws.decode_complete(token, key=key, algorithms=[_GATEWAY_ALG])
        except InvalidSignatureError:
            raise AuthenticationError(f"access token signature invalid (kid {kid})") from None
        except PyJWTError as exc:
            raise AuthenticationError(f"malformed access token: {exc}") from None
        claims = _json_object(decoded["payload"], "access token")

        if claims.get("iss") != self._settings.issuer:
            raise AuthenticationError(f"access token iss {_short(claims.get('iss'))} is not ours")
        if not _audience_matches(claims.get("aud"), frozenset({self._settings.issuer})):
            raise AuthenticationError(f"access token aud {_short(claims.get('aud'))} is not ours")
        sub, client_id = claims.get("sub"), claims.get("client_id")
        if not isinstance(sub, str) or not sub or client_id != sub:
            raise AuthenticationError("access token sub/client_id missing or inconsistent")
        dept, jti, officer = claims.get("dept"), claims.get("jti"), claims.get("officer")
        if not isinstance(dept, str) or not dept:
            raise AuthenticationError("access token dept missing")
        if not isinstance(jti, str) or not jti or len(jti) > _MAX_ID_CHARS:
            raise AuthenticationError("access token jti missing or invalid")
        if officer is not None and not isinstance(officer, str):
            raise AuthenticationError("access token officer is not a string")
        exp = _numeric(claims, "exp", "access token", required=True)
        iat = _numeric(claims, "iat", "access token", required=True)
        assert exp is not None and iat is not None  # noqa: S101 - required=True
        nbf = _numeric(claims, "nbf", "access token", required=False)
        return _AccessClaims(
            sub=sub, dept=dept, jti=jti, officer=officer, iat=iat, exp=exp, nbf=nbf, kid=str(kid)
        )

    def _now(self) -> float:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ConfigurationError("the clock must return timezone-aware datetimes")
        return now.timestamp()


# --------------------------------------------------------------------------- helpers


def _bearer_token(authorization: str | None) -> str:
    if not authorization or not authorization.strip():
        raise AuthenticationError("missing Authorization header")
    # Bound before any work; the scheme and separator add a handful of bytes.
    if len(authorization) > MAX_TOKEN_BYTES + 64:
        raise AuthenticationError(f"Authorization header longer than {MAX_TOKEN_BYTES} bytes")
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthenticationError(f"Authorization scheme {_short(scheme)} is not Bearer")
    token = rest.strip()
    if not token:
        raise AuthenticationError("empty bearer token")
    if not _B64TOKEN.fullmatch(token):
        raise AuthenticationError("bearer token is not an RFC 6750 b64token")
    if len(token) > MAX_TOKEN_BYTES:
        raise AuthenticationError(f"access token larger than {MAX_TOKEN_BYTES} bytes")
    return token


def _officer(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > _MAX_OFFICER_CHARS or not value.isprintable() or value != value.strip():
        raise InvalidRequestError(
            f"officer must be at most {_MAX_OFFICER_CHARS} printable characters",
            extra={"error": "invalid_request"},
        )
    return value


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # RFC 7519 §4: a JWT with duplicate claim names MUST be rejected or take the last
    # value; rejecting avoids parsers disagreeing on which one counts.
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"duplicate member {name!r}")
        result[name] = value
    return result


def _json_object(payload: bytes, what: str) -> Mapping[str, Any]:
    try:
        claims = json.loads(payload, object_pairs_hook=_reject_duplicates)
    except (ValueError, RecursionError) as exc:
        raise AuthenticationError(f"{what} payload is not valid JSON: {exc}") from None
    if not isinstance(claims, dict):
        raise AuthenticationError(f"{what} payload is not a JSON object")
    return MappingProxyType(claims)


def _numeric(claims: Mapping[str, Any], name: str, what: str, *, required: bool) -> float | None:
    """A NumericDate (RFC 7519 §2): a finite JSON number, not a bool or string."""
    value = claims.get(name)
    if value is None:
        if required:
            raise AuthenticationError(f"{what} has no {name} claim")
        return None
    # bool is an int subclass; NaN/Infinity parse from JSON and defeat every comparison.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthenticationError(f"{what} {name} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise AuthenticationError(f"{what} {name} is not finite")
    return number


def _audience_matches(aud: Any, accepted: frozenset[str]) -> bool:
    # RFC 7519 §4.1.3: aud is a string or an array of strings; one match suffices.
    if isinstance(aud, str):
        return aud in accepted
    if isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        return any(a in accepted for a in aud)
    return False


def _iso(epoch: float) -> str:
    try:
        return datetime.fromtimestamp(epoch, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return repr(epoch)


def _short(value: Any) -> str:
    # Reasons are logged: keep attacker-chosen values short and quoted.
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------------- clients


def make_client_assertion(
    system_id: str,
    private_key: PrivateKey,
    alg: str,
    kid: str,
    audience: str,
    now: datetime,
    ttl_s: int = 60,
    jti: str | None = None,
) -> str:
    """Build an RFC 7523 client assertion for ``system_id``, for the CLI, demo and tests.

    Claims: ``iss`` = ``sub`` = ``system_id``, ``aud`` = ``audience`` (the token endpoint
    URL), ``iat`` = ``now``, ``exp`` = ``now + ttl_s``, ``jti`` (a fresh UUID unless
    given). Header: ``alg``, ``kid``. Raises ConfigurationError if ``alg`` does not fit
    the key or ``now`` is naive.
    """
    checked = check_key_matches_alg(private_key, alg)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ConfigurationError("now must be a timezone-aware datetime")
    iat = int(now.timestamp())
    claims = {
        "iss": system_id,
        "sub": system_id,
        "aud": audience,
        "iat": iat,
        "exp": iat + ttl_s,
        "jti": jti if jti is not None else str(uuid.uuid4()),
    }
    return jwt_encode(claims, private_key, algorithm=checked, headers={"kid": kid})
