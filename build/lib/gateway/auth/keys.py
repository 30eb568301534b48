"""Key material: consumer-system keys, the gateway's token-signing keys, the pseudonym secret.

Only two signature algorithms exist in the gateway, each bound to exactly one key type:

========  ==========================  ==================================
``alg``   key type                    where
========  ==========================  ==================================
EdDSA     Ed25519 (RFC 8037)          gateway access tokens, consumers
ES256     ECDSA on P-256 (RFC 7518)   consumers
========  ==========================  ==================================

Pinning the algorithm to the key type (never to the token header) is what makes
algorithm-confusion attacks impossible (RFC 8725 §2.1, §3.1).

Key directory layout (``Settings.key_dir``, see keys/README.md)::

    gateway-signing.key.pem              current Ed25519 signing key (PKCS#8 PEM)
    gateway-signing.next.key.pem         next signing key: published, verifies, never signs
    gateway-signing-retired-until-<UTC>.pub.pem
                                         previous keys: verify until the time in the name
    gateway-signing-<label>.pub.pem      previous keys retired by hand: verify until deleted
    pseudonym-secret.bin                 32-byte pseudonym master secret (raw or hex)

Rotation without downtime (:func:`rotate_signing_key`, ``gateway keys rotate``): the next
key is published in the JWKS one rotation *before* it signs, so when replicas restart one
by one after a rotation, every replica already accepts what any other signs — the
restarted ones sign with the former next key, which the others published as next; the
others still sign with the former current key, which the restarted ones keep as
previous until its deadline (a token lifetime plus the roll-out time).

Demo directories may use ``gateway-signing.demo.key.pem`` and ``pseudonym-secret.demo.bin``
instead, so that a demo key is recognisable by its file name;
:attr:`GatewayKeyStore.is_demo` then says so and the server can warn loudly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Literal, TypeAlias

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from gateway.errors import ConfigurationError

__all__ = [
    "ALGORITHMS",
    "PSEUDONYM_SECRET_FILE",
    "PSEUDONYM_SECRET_FILE_DEMO",
    "SIGNING_KEY_FILE",
    "SIGNING_KEY_FILE_DEMO",
    "SIGNING_KEY_FILE_NEXT",
    "Algorithm",
    "GatewayKeyStore",
    "PrivateKey",
    "PublicKey",
    "Rotation",
    "algorithm_for_key",
    "check_key_matches_alg",
    "generate_keypair",
    "jwk_thumbprint",
    "load_private_key",
    "load_pseudonym_secret",
    "load_public_key",
    "load_secret",
    "public_jwk",
    "rotate_signing_key",
    "write_keypair",
    "write_private",
    "write_pseudonym_secret",
    "write_secret",
]

Algorithm: TypeAlias = Literal["EdDSA", "ES256"]
#: Every JWS ``alg`` the gateway accepts or produces. Anything else is refused.
ALGORITHMS: frozenset[str] = frozenset({"EdDSA", "ES256"})

PrivateKey: TypeAlias = Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = Ed25519PublicKey | ec.EllipticCurvePublicKey

SIGNING_KEY_FILE = "gateway-signing.key.pem"
SIGNING_KEY_FILE_DEMO = "gateway-signing.demo.key.pem"
#: The next signing key: published and trusted, signs nothing until the next rotation.
SIGNING_KEY_FILE_NEXT = "gateway-signing.next.key.pem"
#: The current key's public half (informational; derived from the private key).
SIGNING_PUBLIC_FILE = "gateway-signing.pub.pem"
#: Glob of retired signing public keys kept in the JWKS during a rotation.
RETIRED_KEY_GLOB = "gateway-signing-*.pub.pem"
#: A retired key with a deadline: ``gateway-signing-retired-until-20270101T000000Z.pub.pem``.
_RETIRED_UNTIL = re.compile(r"gateway-signing-retired-until-(\d{8}T\d{6}Z)(?:-\d+)?\.pub\.pem")
_STAMP = "%Y%m%dT%H%M%SZ"
# File names, not secrets (ruff S105 keys on the word "secret").
PSEUDONYM_SECRET_FILE = "pseudonym-secret.bin"  # noqa: S105
PSEUDONYM_SECRET_FILE_DEMO = "pseudonym-secret.demo.bin"  # noqa: S105
PSEUDONYM_SECRET_BYTES = 32


# --------------------------------------------------------------------------- generation


def generate_keypair(alg: Algorithm) -> tuple[bytes, bytes]:
    """Generate a fresh key pair for ``alg``.

    Returns ``(private_pem, public_pem)``: the private key as unencrypted PKCS#8 PEM and
    the public key as SubjectPublicKeyInfo PEM. Raises ConfigurationError for an
    algorithm other than EdDSA or ES256.
    """
    private: PrivateKey
    if alg == "EdDSA":
        private = Ed25519PrivateKey.generate()
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ConfigurationError(f"unsupported key algorithm {alg!r}; use EdDSA or ES256")
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def write_keypair(directory: Path, name: str, alg: Algorithm) -> tuple[Path, Path]:
    """Generate a key pair and write ``<name>.key.pem`` (mode 0600) and ``<name>.pub.pem``.

    Used by ``gateway keys generate``. ``directory`` is created if needed. Never
    overwrites: raises ConfigurationError if either file exists or ``name`` is not a plain
    file-name stem. Returns ``(private_path, public_path)``.
    """
    _check_file_stem(name)
    private_path = directory / f"{name}.key.pem"
    public_path = directory / f"{name}.pub.pem"
    for path in (private_path, public_path):
        if path.exists():
            raise ConfigurationError(f"{path} already exists; refusing to overwrite a key")
    private_pem, public_pem = generate_keypair(alg)
    directory.mkdir(parents=True, exist_ok=True)
    write_private(private_path, private_pem)
    public_path.write_bytes(public_pem)
    return private_path, public_path


def write_pseudonym_secret(directory: Path, name: str = PSEUDONYM_SECRET_FILE) -> Path:
    """Write a new random pseudonym master secret (32 bytes, hex, mode 0600).

    Never overwrites: changing the secret changes every pseudonym ever served, so an
    existing file raises ConfigurationError.
    """
    return write_secret(directory, name)


def write_secret(directory: Path, name: str) -> Path:
    """Write a new random 32-byte secret as hex (mode 0600) to ``directory/name``.

    Never overwrites (a secret in use keys data that must stay verifiable): an existing
    file raises ConfigurationError.
    """
    _check_file_stem(name)
    path = directory / name
    if path.exists():
        raise ConfigurationError(f"{path} already exists; refusing to overwrite the secret")
    directory.mkdir(parents=True, exist_ok=True)
    write_private(path, secrets.token_hex(PSEUDONYM_SECRET_BYTES).encode("ascii") + b"\n")
    return path


def write_private(path: Path, data: bytes) -> None:
    # O_EXCL: never clobber a key written concurrently; 0600 from creation, not chmod after,
    # so the secret is never readable by others even for an instant.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _check_file_stem(name: str) -> None:
    if not name or name.startswith(".") or "/" in name or "\\" in name or "\0" in name:
        raise ConfigurationError(f"key name {name!r} must be a plain file name")


# --------------------------------------------------------------------------- loading


def load_private_key(path: Path) -> PrivateKey:
    """Load an unencrypted PEM private key (Ed25519 or P-256) from ``path``.

    Raises ConfigurationError naming the file if it is missing, unreadable, encrypted or
    of another key type.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read private key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if isinstance(key, Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise ConfigurationError(f"{path}: only Ed25519 and P-256 keys are supported")


def load_public_key(pem: bytes | str) -> PublicKey:
    """Parse a SubjectPublicKeyInfo PEM public key (Ed25519 or P-256).

    Raises ConfigurationError if the text is not such a key (a private key is refused
    too: public-key slots must never hold secrets).
    """
    data = pem.encode("utf-8") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"not a PEM public key: {exc}") from None
    if isinstance(key, Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise ConfigurationError("only Ed25519 and P-256 public keys are supported")


def algorithm_for_key(key: PublicKey | PrivateKey) -> Algorithm:
    """The one ``alg`` a key may be used with: EdDSA for Ed25519, ES256 for P-256."""
    if isinstance(key, Ed25519PublicKey | Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    raise ConfigurationError(f"unsupported curve {key.curve.name}")


def check_key_matches_alg(key: PublicKey | PrivateKey, alg: str) -> Algorithm:
    """Return ``alg`` if ``key`` is of the type ``alg`` requires; else ConfigurationError."""
    if alg not in ALGORITHMS:
        raise ConfigurationError(f"unsupported algorithm {alg!r}; use EdDSA or ES256")
    actual = algorithm_for_key(key)
    if actual != alg:
        raise ConfigurationError(f"key is for {actual}, not {alg}")
    return actual


# --------------------------------------------------------------------------- JWK


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _required_jwk_members(key: PublicKey | PrivateKey) -> dict[str, str]:
    public = (
        key.public_key() if isinstance(key, Ed25519PrivateKey | ec.EllipticCurvePrivateKey) else key
    )
    if isinstance(public, Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        # RFC 8037 §2: an Ed25519 public key is kty OKP, crv Ed25519, x = raw 32 bytes.
        return {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}
    numbers = public.public_numbers()
    if not isinstance(public.curve, ec.SECP256R1):
        raise ConfigurationError(f"unsupported curve {public.curve.name}")
    # RFC 7518 §6.2.1: coordinates are fixed-length big-endian octet strings (32 for P-256).
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }


def jwk_thumbprint(key: PublicKey | PrivateKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url without padding) of the public key.

    RFC 7638 §3.2: only the required members, sorted lexicographically, no whitespace,
    UTF-8 — so the same key always gets the same ``kid``, whoever computes it.
    """
    members = _required_jwk_members(key)
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def public_jwk(key: PublicKey | PrivateKey, alg: str) -> dict[str, str]:
    """The public JWK of ``key`` with ``kid`` (RFC 7638 thumbprint), ``alg`` and ``use``.

    Only public members are ever emitted, even when given a private key (no ``d``).
    Raises ConfigurationError if ``alg`` does not fit the key type.
    """
    check_key_matches_alg(key, alg)
    jwk = _required_jwk_members(key)
    jwk.update({"kid": jwk_thumbprint(key), "alg": alg, "use": "sig"})
    return jwk


# --------------------------------------------------------------------------- gateway keys


@dataclass(frozen=True, slots=True)
class GatewayKeyStore:
    """The gateway's own token-signing keys, loaded once at start-up.

    Guarantees: :attr:`signing_key` is an Ed25519 key; every key in :meth:`jwks` and
    :meth:`public_key` is public only; the next key and retired keys verify but never
    sign; a retired key with a deadline verifies nothing from its deadline on
    (:meth:`is_expired`, checked on every use by the token service).
    """

    signing_key: Ed25519PrivateKey
    #: RFC 7638 thumbprint of the current signing key, sent as the ``kid`` header.
    kid: str
    #: kid → public key: the current key, the next one and every retired one.
    verification_keys: Mapping[str, Ed25519PublicKey]
    #: True when the signing key came from a ``*.demo.*`` file (never for production).
    is_demo: bool = False
    #: kid of the next signing key, when one is prepared.
    next_kid: str | None = None
    #: kid → the instant a retired key stops verifying (keys retired by ``rotate``).
    retired_until: Mapping[str, datetime] = field(default_factory=dict)

    @classmethod
    def load(cls, key_dir: Path) -> GatewayKeyStore:
        """Load the signing key and retired public keys from ``key_dir``.

        Raises ConfigurationError if there is no signing key, if both the production and the
        demo file exist (ambiguous), if any key is not Ed25519, or if two files hold the
        same key.
        """
        prod, demo = key_dir / SIGNING_KEY_FILE, key_dir / SIGNING_KEY_FILE_DEMO
        if prod.exists() and demo.exists():
            raise ConfigurationError(
                f"{key_dir} holds both {SIGNING_KEY_FILE} and {SIGNING_KEY_FILE_DEMO}; "
                "remove the demo key"
            )
        if not prod.exists() and not demo.exists():
            raise ConfigurationError(
                f"no gateway signing key in {key_dir}: expected {SIGNING_KEY_FILE} "
                "(generate one with `gateway keys generate`)"
            )
        path = prod if prod.exists() else demo
        private = _load_ed25519(path)
        kid = jwk_thumbprint(private)
        keys: dict[str, Ed25519PublicKey] = {kid: private.public_key()}
        next_kid: str | None = None
        next_path = key_dir / SIGNING_KEY_FILE_NEXT
        if next_path.exists():
            upcoming = _load_ed25519(next_path)
            next_kid = jwk_thumbprint(upcoming)
            if next_kid in keys:
                raise ConfigurationError(f"{next_path} holds the current signing key")
            keys[next_kid] = upcoming.public_key()
        retired_until: dict[str, datetime] = {}
        for retired_path in sorted(key_dir.glob(RETIRED_KEY_GLOB)):
            try:
                public = load_public_key(retired_path.read_bytes())
            except OSError as exc:
                raise ConfigurationError(f"cannot read {retired_path}: {exc.strerror}") from None
            except ConfigurationError as exc:
                raise ConfigurationError(f"{retired_path}: {exc.detail}") from None
            if not isinstance(public, Ed25519PublicKey):
                raise ConfigurationError(f"{retired_path}: gateway keys must be Ed25519")
            retired_kid = jwk_thumbprint(public)
            if retired_kid in keys:
                raise ConfigurationError(
                    f"{retired_path} holds a key already loaded (kid {retired_kid})"
                )
            keys[retired_kid] = public
            deadline = _retired_deadline(retired_path)
            if deadline is not None:
                retired_until[retired_kid] = deadline
        return cls(
            signing_key=private,
            kid=kid,
            verification_keys=MappingProxyType(keys),
            is_demo=path == demo,
            next_kid=next_kid,
            retired_until=MappingProxyType(retired_until),
        )

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        """The public key with this ``kid`` (current, next or retired), or None."""
        return self.verification_keys.get(kid)

    def is_expired(self, kid: str, now: datetime) -> bool:
        """Whether ``kid`` is a retired key whose deadline has passed at ``now``."""
        deadline = self.retired_until.get(kid)
        return deadline is not None and now >= deadline

    def jwks(self, now: datetime | None = None) -> dict[str, list[dict[str, str]]]:
        """The JWK Set (RFC 7517 §5) to publish, public members only: the current key
        first, then the next one, then the previous ones (without those past their
        deadline at ``now``, when given)."""
        ordered = [self.kid]
        if self.next_kid is not None:
            ordered.append(self.next_kid)
        ordered.extend(k for k in self.verification_keys if k not in ordered)
        if now is not None:
            ordered = [k for k in ordered if not self.is_expired(k, now)]
        return {"keys": [public_jwk(self.verification_keys[k], "EdDSA") for k in ordered]}


def _load_ed25519(path: Path) -> Ed25519PrivateKey:
    private = load_private_key(path)
    if not isinstance(private, Ed25519PrivateKey):
        raise ConfigurationError(f"{path}: the gateway signing key must be Ed25519")
    return private


def _retired_deadline(path: Path) -> datetime | None:
    match = _RETIRED_UNTIL.fullmatch(path.name)
    if match is None:
        return None  # retired by hand: verifies until the file is deleted
    return datetime.strptime(match.group(1), _STAMP).replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Rotation:
    """What :func:`rotate_signing_key` did (kids are RFC 7638 thumbprints)."""

    #: The key that signs from the next (re)start on; None when only a next key was prepared.
    promoted: str | None
    #: The key that signed until now and verifies until ``retired_until`` (None: dropped).
    retired: str | None
    retired_until: datetime | None
    #: The new next key, published from the next (re)start on.
    prepared: str
    #: Retired public key files deleted because their deadline had passed.
    pruned: tuple[str, ...]


def rotate_signing_key(
    key_dir: Path, *, now: datetime, grace: timedelta, compromised: bool = False
) -> Rotation:
    """One step of the gateway signing key's rotation, on the files of ``key_dir``.

    * With a next key prepared: the current key is retired (its public half is kept as
      ``gateway-signing-retired-until-<now + grace>.pub.pem``, its private half deleted),
      the next key becomes the current one, and a new next key is generated.
    * Without one (the first rotation): only a next key is generated; it is published
      from the next restart on and becomes current at the following rotation.
    * ``compromised``: the current key is dropped at once, not kept (every token it
      signed stops working after the restart); the next key, or a fresh one if there is
      none, becomes current.

    Retired keys whose deadline has passed are deleted in every case. ``grace`` must
    cover a token's lifetime, the clock skew and the time a rolling restart takes.
    Refuses (ConfigurationError) a demo directory or a key directory without a
    production signing key. Running processes are not affected until they restart.
    """
    if grace <= timedelta(0):
        raise ConfigurationError("the grace period of a retired key must be positive")
    current_path = key_dir / SIGNING_KEY_FILE
    if (key_dir / SIGNING_KEY_FILE_DEMO).exists():
        raise ConfigurationError(
            f"{key_dir} holds the public demo signing key: generate a production key "
            "(gateway keys generate --name gateway-signing) instead of rotating it"
        )
    if not current_path.exists():
        raise ConfigurationError(f"no {SIGNING_KEY_FILE} in {key_dir} to rotate")
    current = _load_ed25519(current_path)
    next_path = key_dir / SIGNING_KEY_FILE_NEXT
    pruned = _prune_retired(key_dir, now)
    if not next_path.exists() and not compromised:
        prepared = _write_signing_key(next_path)
        return Rotation(None, None, None, prepared, pruned)
    if next_path.exists():
        promoted_key = _load_ed25519(next_path)
    else:
        promoted_key = Ed25519PrivateKey.generate()
        _write_private_key(next_path, promoted_key)
    retired_kid = jwk_thumbprint(current)
    until: datetime | None = None
    if not compromised:
        until = (now + grace).astimezone(UTC).replace(microsecond=0)
        _write_retired(key_dir, current.public_key(), until)
    # The rename replaces the current private key file: the old private key is gone.
    next_path.replace(current_path)
    public_path = key_dir / SIGNING_PUBLIC_FILE
    public_path.write_bytes(
        promoted_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    prepared = _write_signing_key(next_path)
    return Rotation(
        jwk_thumbprint(promoted_key),
        None if compromised else retired_kid,
        until,
        prepared,
        pruned,
    )


def _write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    write_private(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _write_signing_key(path: Path) -> str:
    key = Ed25519PrivateKey.generate()
    _write_private_key(path, key)
    return jwk_thumbprint(key)


def _write_retired(key_dir: Path, public: Ed25519PublicKey, until: datetime) -> Path:
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    stem = f"gateway-signing-retired-until-{until.strftime(_STAMP)}"
    path = key_dir / f"{stem}.pub.pem"
    counter = 1
    while path.exists():  # two rotations within a second: keep both
        path = key_dir / f"{stem}-{counter}.pub.pem"
        counter += 1
    path.write_bytes(pem)
    return path


def _prune_retired(key_dir: Path, now: datetime) -> tuple[str, ...]:
    pruned = []
    for path in sorted(key_dir.glob(RETIRED_KEY_GLOB)):
        deadline = _retired_deadline(path)
        if deadline is not None and now >= deadline:
            path.unlink()
            pruned.append(path.name)
    return tuple(pruned)


def load_pseudonym_secret(key_dir: Path) -> bytes:
    """Load the pseudonym master secret from ``key_dir``.

    The file is ``pseudonym-secret.bin`` (or ``pseudonym-secret.demo.bin`` in a demo
    directory) and holds at least 32 bytes: either raw, or as hex text. Raises
    ConfigurationError if it is missing, ambiguous (both files), or too short.
    """
    return load_secret(
        key_dir, PSEUDONYM_SECRET_FILE, PSEUDONYM_SECRET_FILE_DEMO, "pseudonym secret"
    )


def load_secret(key_dir: Path, name: str, demo_name: str, what: str) -> bytes:
    """A secret of at least 32 bytes (raw, or as hex text) from ``key_dir/name``, or from
    ``key_dir/demo_name`` in a demo directory. Raises ConfigurationError if it is missing,
    ambiguous (both files), or too short."""
    prod, demo = key_dir / name, key_dir / demo_name
    if prod.exists() and demo.exists():
        raise ConfigurationError(f"{key_dir} holds both {name} and {demo_name}")
    if not prod.exists() and not demo.exists():
        raise ConfigurationError(f"no {what} in {key_dir} (expected {name})")
    path = prod if prod.exists() else demo
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc.strerror}") from None
    secret = _decode_secret(data)
    if secret is None or len(secret) < PSEUDONYM_SECRET_BYTES:
        raise ConfigurationError(
            f"{path} must hold at least {PSEUDONYM_SECRET_BYTES} random bytes, raw or as hex"
        )
    return secret


def _decode_secret(data: bytes) -> bytes | None:
    text = data.strip()
    # Hex is tried first: 64 hex digits are also 64 "raw" bytes, and hex is what we write.
    if text and len(text) % 2 == 0:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    return data if data else None
