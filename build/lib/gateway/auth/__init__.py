"""Authentication: consumer-system registry, key material, client assertions (RFC 7523),
access tokens (RFC 9068) and the assertion replay cache.

Typical start-up wiring::

    keystore = GatewayKeyStore.load(settings.key_dir)
    registry = SystemRegistry.load(
        settings.policy_dir / "systems.toml",
        base_dir=settings.policy_dir.parent,
        known_departments=catalog.departments,
        known_purposes=catalog.purposes,
    )
    replay = open_replay_cache(settings.replay_location, clock=clock)
    tokens = TokenService(settings, registry, keystore, replay, clock,
                          token_cache=VerifiedTokenCache())
"""

from gateway.auth.keys import (
    ALGORITHMS,
    Algorithm,
    GatewayKeyStore,
    PrivateKey,
    PublicKey,
    generate_keypair,
    jwk_thumbprint,
    load_private_key,
    load_pseudonym_secret,
    load_public_key,
    public_jwk,
    write_keypair,
    write_pseudonym_secret,
)
from gateway.auth.replay import (
    MemoryReplayCache,
    PostgresReplayCache,
    ReplayCache,
    SqliteReplayCache,
    open_replay_cache,
)
from gateway.auth.systems import RegisteredSystem, SystemKey, SystemRegistry, register_system
from gateway.auth.tokens import (
    ASSERTION_TYPE,
    TokenResponse,
    TokenService,
    VerifiedTokenCache,
    make_client_assertion,
)

__all__ = [
    "ALGORITHMS",
    "ASSERTION_TYPE",
    "Algorithm",
    "GatewayKeyStore",
    "MemoryReplayCache",
    "PostgresReplayCache",
    "PrivateKey",
    "PublicKey",
    "RegisteredSystem",
    "ReplayCache",
    "SqliteReplayCache",
    "SystemKey",
    "SystemRegistry",
    "TokenResponse",
    "TokenService",
    "VerifiedTokenCache",
    "generate_keypair",
    "jwk_thumbprint",
    "load_private_key",
    "load_pseudonym_secret",
    "load_public_key",
    "make_client_assertion",
    "open_replay_cache",
    "public_jwk",
    "register_system",
    "write_keypair",
    "write_pseudonym_secret",
]
