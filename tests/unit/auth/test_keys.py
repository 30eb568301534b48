"""Key generation, loading, JWK thumbprints, the gateway key store and the pseudonym
secret."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from gateway.auth import (
    GatewayKeyStore,
    generate_keypair,
    jwk_thumbprint,
    load_private_key,
    load_pseudonym_secret,
    load_public_key,
    public_jwk,
    write_keypair,
    write_pseudonym_secret,
)
from gateway.errors import ConfigurationError


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ------------------------------------------------------------------ generation / loading


def test_generate_eddsa_keypair_pem_formats(tmp_path: Path) -> None:
    private_pem, public_pem = generate_keypair("EdDSA")
    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")  # SPKI
    (tmp_path / "k.pem").write_bytes(private_pem)
    private = load_private_key(tmp_path / "k.pem")
    assert isinstance(private, Ed25519PrivateKey)
    public = load_public_key(public_pem)
    assert isinstance(public, Ed25519PublicKey)
    assert jwk_thumbprint(private) == jwk_thumbprint(public)


def test_generate_es256_keypair(tmp_path: Path) -> None:
    private_pem, public_pem = generate_keypair("ES256")
    (tmp_path / "k.pem").write_bytes(private_pem)
    private = load_private_key(tmp_path / "k.pem")
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert isinstance(private.curve, ec.SECP256R1)
    assert jwk_thumbprint(load_public_key(public_pem.decode())) == jwk_thumbprint(private)


def test_generate_rejects_other_algorithms() -> None:
    with pytest.raises(ConfigurationError, match="unsupported"):
        generate_keypair("RS256")  # type: ignore[arg-type]


def _pem(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, password: bytes | None = None
) -> bytes:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def test_load_private_key_refusals(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read private key"):
        load_private_key(tmp_path / "missing.pem")
    cases = {
        "garbage.pem": b"not a key",
        "rsa.pem": _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "p384.pem": _pem(ec.generate_private_key(ec.SECP384R1())),
        "encrypted.pem": _pem(ec.generate_private_key(ec.SECP256R1()), b"secret"),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ConfigurationError, match=name):
            load_private_key(tmp_path / name)


def test_load_public_key_refusals() -> None:
    private_pem, _ = generate_keypair("EdDSA")
    rsa_public = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for pem in (b"garbage", private_pem, rsa_public):
        with pytest.raises(ConfigurationError):
            load_public_key(pem)


def test_write_keypair(tmp_path: Path) -> None:
    directory = tmp_path / "new" / "dir"
    private_path, public_path = write_keypair(directory, "gateway-signing", "EdDSA")
    assert private_path.name == "gateway-signing.key.pem"
    assert public_path.name == "gateway-signing.pub.pem"
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert jwk_thumbprint(load_private_key(private_path)) == jwk_thumbprint(
        load_public_key(public_path.read_bytes())
    )
    before = private_path.read_bytes()
    with pytest.raises(ConfigurationError, match="already exists"):
        write_keypair(directory, "gateway-signing", "EdDSA")
    assert private_path.read_bytes() == before
    for bad in ("", "../escape", "a/b", ".hidden"):
        with pytest.raises(ConfigurationError, match="plain file name"):
            write_keypair(directory, bad, "ES256")


# ------------------------------------------------------------------ JWK / thumbprint


def test_rfc8037_thumbprint_test_vector() -> None:
    # RFC 8037 Appendix A.2/A.3: this Ed25519 public key has the thumbprint below.
    raw = _b64url_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
    key = Ed25519PublicKey.from_public_bytes(raw)
    assert jwk_thumbprint(key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_ec_thumbprint_uses_required_members_in_order() -> None:
    # RFC 7638 §3.2 + RFC 7518 §6.2.1: {"crv","kty","x","y"}, fixed 32-byte coordinates.
    for _ in range(20):
        private = ec.generate_private_key(ec.SECP256R1())
        jwk = public_jwk(private, "ES256")
        assert len(_b64url_decode(jwk["x"])) == 32
        assert len(_b64url_decode(jwk["y"])) == 32
        canonical = f'{{"crv":"P-256","kty":"EC","x":"{jwk["x"]}","y":"{jwk["y"]}"}}'
        digest = hashlib.sha256(canonical.encode()).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        assert jwk["kid"] == expected == jwk_thumbprint(private.public_key())


def test_public_jwk_has_no_private_members() -> None:
    private = Ed25519PrivateKey.generate()
    jwk = public_jwk(private, "EdDSA")
    assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert jwk["kty"] == "OKP"
    assert jwk["crv"] == "Ed25519"
    ec_jwk = public_jwk(ec.generate_private_key(ec.SECP256R1()), "ES256")
    assert set(ec_jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}


def test_public_jwk_alg_must_fit_key() -> None:
    with pytest.raises(ConfigurationError, match="not ES256"):
        public_jwk(Ed25519PrivateKey.generate(), "ES256")
    with pytest.raises(ConfigurationError, match="unsupported algorithm"):
        public_jwk(Ed25519PrivateKey.generate(), "HS256")


# ------------------------------------------------------------------ gateway key store


def _keydir(tmp_path: Path) -> Path:
    key_dir = tmp_path / "keys"
    write_keypair(key_dir, "gateway-signing", "EdDSA")
    return key_dir


def test_keystore_loads_current_and_retired_keys(tmp_path: Path) -> None:
    key_dir = _keydir(tmp_path)
    _, old_pub = write_keypair(tmp_path / "old", "old", "EdDSA")
    old_pub.rename(key_dir / "gateway-signing-2024-12.pub.pem")
    store = GatewayKeyStore.load(key_dir)

    assert not store.is_demo
    assert store.kid == jwk_thumbprint(store.signing_key)
    assert len(store.verification_keys) == 2
    jwks = store.jwks()
    kids = [k["kid"] for k in jwks["keys"]]
    assert kids[0] == store.kid
    retired = kids[1]
    assert store.public_key(retired) is not None
    assert store.public_key("nope") is None
    for jwk in jwks["keys"]:
        assert "d" not in jwk
        assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}
        assert jwk["alg"] == "EdDSA"
    json.dumps(jwks)  # serialisable as-is


def test_keystore_refusals(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no gateway signing key"):
        GatewayKeyStore.load(tmp_path)

    both = _keydir(tmp_path / "both")
    write_keypair(both, "gateway-signing.demo", "EdDSA")
    with pytest.raises(ConfigurationError, match="remove the demo key"):
        GatewayKeyStore.load(both)

    es = tmp_path / "es"
    write_keypair(es, "gateway-signing", "ES256")
    with pytest.raises(ConfigurationError, match="must be Ed25519"):
        GatewayKeyStore.load(es)

    retired_ec = _keydir(tmp_path / "retired-ec")
    _, pub = write_keypair(tmp_path / "x", "x", "ES256")
    pub.rename(retired_ec / "gateway-signing-old.pub.pem")
    with pytest.raises(ConfigurationError, match=r"gateway-signing-old\.pub\.pem"):
        GatewayKeyStore.load(retired_ec)

    dup = _keydir(tmp_path / "dup")
    (dup / "gateway-signing.pub.pem").rename(dup / "gateway-signing-again.pub.pem")
    with pytest.raises(ConfigurationError, match="already loaded"):
        GatewayKeyStore.load(dup)

    garbage = _keydir(tmp_path / "garbage")
    (garbage / "gateway-signing-bad.pub.pem").write_text("garbage")
    with pytest.raises(ConfigurationError, match="gateway-signing-bad"):
        GatewayKeyStore.load(garbage)


# ------------------------------------------------------------------ pseudonym secret


def test_pseudonym_secret_hex_and_raw(tmp_path: Path) -> None:
    path = write_pseudonym_secret(tmp_path / "hex")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = load_pseudonym_secret(tmp_path / "hex")
    assert len(secret) == 32
    assert secret.hex() == path.read_text().strip()
    with pytest.raises(ConfigurationError, match="already exists"):
        write_pseudonym_secret(tmp_path / "hex")

    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    raw = bytes(range(200, 232))  # 32 bytes, not hex text
    (raw_dir / "pseudonym-secret.bin").write_bytes(raw)
    assert load_pseudonym_secret(raw_dir) == raw


def test_pseudonym_secret_refusals(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"pseudonym-secret\.bin"):
        load_pseudonym_secret(tmp_path)
    (tmp_path / "pseudonym-secret.bin").write_text("00" * 16)  # 16 bytes
    with pytest.raises(ConfigurationError, match="at least 32"):
        load_pseudonym_secret(tmp_path)
    (tmp_path / "pseudonym-secret.bin").write_text("")
    with pytest.raises(ConfigurationError, match="at least 32"):
        load_pseudonym_secret(tmp_path)
    (tmp_path / "pseudonym-secret.bin").write_text("ab" * 32)
    (tmp_path / "pseudonym-secret.demo.bin").write_text("cd" * 32)
    with pytest.raises(ConfigurationError, match="both"):
        load_pseudonym_secret(tmp_path)


# ------------------------------------------------------------------ committed demo keys


def test_demo_key_directory(root_dir: Path) -> None:
    demo = root_dir / "keys" / "demo"
    files = sorted(p.name for p in demo.iterdir())
    assert files, "keys/demo must hold the demo keys"
    assert all(".demo." in name for name in files), files
    store = GatewayKeyStore.load(demo)
    assert store.is_demo
    assert len(load_pseudonym_secret(demo)) == 32
    for private_path in demo.glob("*.demo.key.pem"):
        public_path = private_path.with_name(private_path.name.replace(".key.", ".pub."))
        assert jwk_thumbprint(load_private_key(private_path)) == jwk_thumbprint(
            load_public_key(public_path.read_bytes())
        )


def test_keys_readme_warns_about_demo_keys(root_dir: Path) -> None:
    readme = (root_dir / "keys" / "README.md").read_text(encoding="utf-8")
    assert "**" in readme
    bold = readme.split("**")[1]
    assert "PUBLIC DEMO KEY" in bold
    assert "NEVER use them in production" in bold
    assert "GATEWAY_KEY_DIR" in readme
    assert "Rotating the gateway signing key" in readme
