"""How people prove who they are: the seam for a deployment's own identity provider.

:class:`LocalIdentity` (the default) checks a username, password and TOTP code against
the local accounts. :class:`OidcIdentity` accepts an OpenID Connect ID token from the
deployment's provider (统一身份认证), verified offline against the provider's public
keys (a JWKS file: government networks are often isolated), and maps it to the local
account with the same username: roles and departments are decided here, never by the
provider. Either way the result is an :class:`~gateway.admin.accounts.Account`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt

from gateway.admin.accounts import Account, AccountStore
from gateway.errors import AuthenticationError, ConfigurationError, NotFoundError

__all__ = ["LocalIdentity", "OidcIdentity", "load_oidc_identity"]

#: Algorithms accepted from an identity provider (never ``none`` or HMAC).
_OIDC_ALGORITHMS = ["RS256", "ES256", "EdDSA", "PS256"]


@dataclass(frozen=True, slots=True)
class LocalIdentity:
    accounts: AccountStore

    def login(self, username: str, password: str, totp: str | None, *, now: datetime) -> Account:
        return self.accounts.login(username, password, totp, now=now)


class OidcIdentity:
    """ID tokens of one OpenID Connect provider (OIDC Core §3.1.3.7 checks: signature,
    ``iss``, ``aud``, ``exp``, ``iat``)."""

    def __init__(
        self,
        accounts: AccountStore,
        *,
        issuer: str,
        audience: str,
        jwks: dict[str, Any],
        username_claim: str = "preferred_username",
        leeway_s: int = 30,
    ) -> None:
        self._accounts = accounts
        self._issuer = issuer
        self._audience = audience
        try:
            self._keys = jwt.PyJWKSet.from_dict(jwks)
        except jwt.PyJWTError as exc:
            raise ConfigurationError(f"the OIDC JWKS does not load: {exc}") from exc
        self._claim = username_claim
        self._leeway = leeway_s

    def login(self, id_token: str, *, now: datetime) -> Account:
        """The local account the ID token names. Raises AuthenticationError."""
        try:
            header = jwt.get_unverified_header(id_token)
            key = next((k for k in self._keys.keys if k.key_id == header.get("kid")), None)
            if key is None:
                raise AuthenticationError(f"oidc: unknown key id {header.get('kid')!r}")
            claims = jwt.decode(
                id_token,
                key=key.key,
                algorithms=_OIDC_ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"], "verify_iat": True},
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"oidc: {type(exc).__name__}: {exc}") from None
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or now.timestamp() >= exp + self._leeway:
            raise AuthenticationError("oidc: the ID token expired")
        username = claims.get(self._claim)
        if not isinstance(username, str) or not username:
            raise AuthenticationError(f"oidc: the ID token has no {self._claim!r} claim")
        try:
            account = self._accounts.get(username)
        except NotFoundError:
            raise AuthenticationError(f"oidc: no local account {username!r}") from None
        if not account.is_active:
            raise AuthenticationError(f"oidc: account {username} is {account.status}")
        return account


def load_oidc_identity(
    accounts: AccountStore, *, issuer: str, audience: str, jwks_file: str
) -> OidcIdentity | None:
    """The configured provider, or None when ``issuer`` is empty. Raises
    ConfigurationError for a half configuration or an unreadable JWKS file."""
    if not issuer:
        return None
    if not audience or not jwks_file:
        raise ConfigurationError(
            "GATEWAY_OIDC_ISSUER needs GATEWAY_OIDC_AUDIENCE and GATEWAY_OIDC_JWKS_FILE"
        )
    try:
        jwks = json.loads(Path(jwks_file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"GATEWAY_OIDC_JWKS_FILE: {exc}") from exc
    return OidcIdentity(accounts, issuer=issuer, audience=audience, jwks=jwks)
