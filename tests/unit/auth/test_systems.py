"""The consumer-system registry: the demo systems.toml, validation, registration."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gateway.auth import (
    SystemRegistry,
    jwk_thumbprint,
    load_private_key,
    register_system,
    write_keypair,
)
from gateway.catalog import load_catalog
from gateway.errors import ConfigurationError

DEPARTMENTS = {"rsj", "ybj", "mzj"}
PURPOSES = {"employment_subsidy_review", "statistics"}


def test_demo_registry_loads_against_the_catalog(root_dir: Path, policy_dir: Path) -> None:
    catalog = load_catalog(policy_dir / "catalog.toml")
    registry = SystemRegistry.load(
        policy_dir / "systems.toml",
        base_dir=root_dir,
        known_departments=catalog.departments,
        known_purposes=catalog.purposes,
    )
    expected = {
        "rsj-subsidy": ("rsj", {"district": "历下区", "city": "济南市"},
                        {"employment_subsidy_review"}, "EdDSA", "active"),
        "rsj-portal": ("rsj", {"district": "天桥区", "city": "济南市"},
                       {"employment_subsidy_review"}, "ES256", "active"),
        "ybj-insurance": ("ybj", {"district": "市中区", "city": "济南市"},
                          {"medical_insurance_enrollment"}, "ES256", "active"),
        "swj-tax": ("swj", {"district": "槐荫区", "city": "济南市"},
                    {"tax_administration"}, "EdDSA", "active"),
        "tjj-stats": ("tjj", {"city": "济南市"}, {"statistics"}, "EdDSA", "active"),
        "mzj-suspended": ("mzj", {"city": "济南市"}, {"statistics"}, "EdDSA", "suspended"),
        "mzj-assist": ("mzj", {"district": "历下区", "city": "济南市"},
                       {"social_assistance_review"}, "EdDSA", "active"),
        "sjj-audit": ("sjj", {}, {"audit_supervision"}, "EdDSA", "active"),
        "gaj-officer": ("gaj", {}, {"audit_supervision"}, "EdDSA", "active"),
    }  # fmt: skip
    assert {s.system_id for s in registry.all()} == set(expected)
    roles = {s.system_id: s.roles for s in registry.all() if s.roles}
    assert roles == {"sjj-audit": {"auditor"}, "gaj-officer": {"provider_officer"}}
    assert registry.get("rsj-subsidy") is not None
    assert registry.get("rsj-subsidy").name.zh == "人社局就业补贴审核系统"  # type: ignore[union-attr]
    for system_id, (dept, attrs, purposes, alg, status) in expected.items():
        system = registry.get(system_id)
        assert system is not None
        assert system.department == dept
        assert dict(system.attributes) == attrs
        assert system.purposes == purposes
        assert system.status == status
        (key,) = system.keys.values()
        assert key.alg == alg
        # The committed demo private key belongs to the registered public key.
        private = load_private_key(root_dir / "keys" / "demo" / f"{system_id}.demo.key.pem")
        assert key.kid == jwk_thumbprint(private)
        assert registry.find_key(key.kid) == (system, key)
    assert registry.find_key("nope") is None


# ------------------------------------------------------------------ validation


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    write_keypair(tmp_path / "k", "a", "EdDSA")
    write_keypair(tmp_path / "k", "b", "ES256")
    return tmp_path


def _system(
    system_id: str = "sys-a",
    *,
    department: str = '"rsj"',
    name: str = '{ zh = "甲", en = "A" }',
    attributes: str = '{ district = "历下区" }',
    purposes: str = '["statistics"]',
    status: str = '"active"',
    key_alg: str = '"EdDSA"',
    key_ref: str = '"k/a.pub.pem"',
    extra: str = "",
    key_extra: str = "",
) -> str:
    return (
        f"[systems.{system_id}]\ndepartment = {department}\nname = {name}\n"
        f"attributes = {attributes}\npurposes = {purposes}\nstatus = {status}\n{extra}\n"
        f"[[systems.{system_id}.keys]]\nalg = {key_alg}\npublic_key = {key_ref}\n{key_extra}\n"
    )


def _load(tmp_path: Path, text: str) -> SystemRegistry:
    path = tmp_path / "systems.toml"
    path.write_text(text, encoding="utf-8")
    return SystemRegistry.load(
        path, base_dir=tmp_path, known_departments=DEPARTMENTS, known_purposes=PURPOSES
    )


def test_minimal_valid_registry(keys: Path) -> None:
    registry = _load(keys, _system())
    system = registry.get("sys-a")
    assert system is not None
    assert system.is_active
    (kid,) = system.keys
    assert system.key(kid) is not None
    assert system.key("other") is None


def test_inline_pem_key(keys: Path) -> None:
    pem = (keys / "k" / "b.pub.pem").read_text()
    registry = _load(keys, _system(key_alg='"ES256"', key_ref=f'"""\n{pem}"""'))
    system = registry.get("sys-a")
    assert system is not None
    (key,) = system.keys.values()
    assert key.source == "inline"
    assert key.alg == "ES256"


def test_absolute_key_path(keys: Path) -> None:
    path = (keys / "k" / "a.pub.pem").resolve()
    assert _load(keys, _system(key_ref=f'"{path}"')).get("sys-a") is not None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"department": '"gaj"'}, r"systems\.sys-a\.department: unknown department 'gaj'"),
        ({"department": '""'}, r"systems\.sys-a\.department is required"),
        ({"purposes": '["statistics", "marketing"]'}, r"systems\.sys-a\.purposes: unknown purpose"),
        ({"purposes": "[]"}, r"systems\.sys-a\.purposes must be a non-empty list"),
        ({"purposes": '["statistics", "statistics"]'}, "twice"),
        ({"purposes": '"statistics"'}, r"systems\.sys-a\.purposes"),
        ({"status": '"paused"'}, r"systems\.sys-a\.status"),
        ({"name": '"甲"'}, r"systems\.sys-a\.name"),
        ({"name": '{ zh = "甲" }'}, r"systems\.sys-a\.name"),
        ({"attributes": '{ department = "x" }'}, r"systems\.sys-a\.attributes\.department"),
        ({"attributes": '{ District = "x" }'}, r"systems\.sys-a\.attributes\.District"),
        ({"attributes": "{ district = 3 }"}, r"systems\.sys-a\.attributes\.district"),
        ({"attributes": '"x"'}, r"systems\.sys-a\.attributes"),
        ({"extra": 'purpose = "typo"'}, r"systems\.sys-a: unknown field.*purpose"),
        ({"key_alg": '"RS256"'}, r"systems\.sys-a\.keys\[0\]\.public_key.*RS256"),
        ({"key_alg": '"ES256"'}, r"systems\.sys-a\.keys\[0\]\.public_key.*key is for EdDSA"),
        ({"key_ref": '"k/missing.pub.pem"'}, r"systems\.sys-a\.keys\[0\]\.public_key: cannot read"),
        ({"key_ref": '"k/a.key.pem"'}, r"systems\.sys-a\.keys\[0\]\.public_key.*not a PEM public"),
        ({"key_ref": '"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----"'},
         r"keys\[0\]\.public_key \(inline\)"),
        ({"key_extra": 'kid = "mine"'}, r"systems\.sys-a\.keys\[0\]: unknown field"),
        ({"system_id": "Sys_A"}, r"systems\.Sys_A: id must be"),
    ],
)  # fmt: skip
def test_validation_errors_name_the_key(keys: Path, kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        _load(keys, _system(**kwargs))


def test_duplicate_key_within_a_system(keys: Path) -> None:
    text = _system() + '[[systems.sys-a.keys]]\nalg = "EdDSA"\npublic_key = "k/a.pub.pem"\n'
    with pytest.raises(ConfigurationError, match=r"systems\.sys-a\.keys\[1\]: duplicate key"):
        _load(keys, text)


def test_same_key_for_two_systems(keys: Path) -> None:
    text = _system("sys-a") + _system("sys-b")
    with pytest.raises(ConfigurationError, match=r"systems\.sys-b\.keys.*already registered"):
        _load(keys, text)


def test_active_system_needs_a_key_suspended_may_have_none(keys: Path) -> None:
    head = '[systems.sys-a]\ndepartment = "rsj"\nname = { zh = "甲", en = "A" }\n'
    head += 'purposes = ["statistics"]\n'
    with pytest.raises(ConfigurationError, match="at least one key"):
        _load(keys, head + 'status = "active"\n')
    registry = _load(keys, head + 'status = "suspended"\n')
    system = registry.get("sys-a")
    assert system is not None
    assert not system.is_active
    assert dict(system.attributes) == {}


def test_structural_errors(keys: Path) -> None:
    with pytest.raises(ConfigurationError, match="invalid TOML"):
        _load(keys, "[systems.a\n")
    with pytest.raises(ConfigurationError, match="unknown top-level"):
        _load(keys, "[system.sys-a]\n")
    with pytest.raises(ConfigurationError, match="must be a table"):
        _load(keys, 'systems = "x"\n')
    with pytest.raises(ConfigurationError, match="cannot read"):
        SystemRegistry.load(keys / "nope.toml", base_dir=keys)


def test_unknown_departments_are_only_checked_when_known(keys: Path) -> None:
    path = keys / "systems.toml"
    path.write_text(_system(department='"anything"'), encoding="utf-8")
    assert SystemRegistry.load(path, base_dir=keys).get("sys-a") is not None


# ------------------------------------------------------------------ register_system


def test_register_system_appends_a_valid_block(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    path = policies / "systems.toml"
    path.write_text("# header comment\nversion = 1\n", encoding="utf-8")
    _, pub = write_keypair(tmp_path / "keys", "new-sys", "ES256")

    system = register_system(
        path,
        "new-sys",
        "rsj",
        '新系统 "引号" \\ 反斜杠',
        "New system\ttab",
        {"district": "历下区", "city": "济南市"},
        ["employment_subsidy_review"],
        pub,
        "ES256",
        known_departments=DEPARTMENTS,
        known_purposes=PURPOSES,
    )

    assert system.system_id == "new-sys"
    assert system.name.zh == '新系统 "引号" \\ 反斜杠'
    assert system.name.en == "New system\ttab"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# header comment\nversion = 1\n\n[systems.new-sys]\n")
    raw = tomllib.loads(text)
    # Stored relative to systems.toml itself: the file that names it.
    assert raw["systems"]["new-sys"]["keys"][0]["public_key"] == "../keys/new-sys.pub.pem"
    registry = SystemRegistry.load(path, base_dir=policies, known_departments=DEPARTMENTS)
    assert registry.get("new-sys") == system

    # A second registration of the same id is refused and leaves the file alone.
    _, pub2 = write_keypair(tmp_path / "keys", "other", "EdDSA")
    with pytest.raises(ConfigurationError, match="already registered"):
        register_system(path, "new-sys", "rsj", "x", "x", {}, ["statistics"], pub2, "EdDSA")
    assert path.read_text(encoding="utf-8") == text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"department": "gaj"}, "unknown department"),
        ({"purposes": ["marketing"]}, "unknown purpose"),
        ({"alg": "EdDSA"}, "key is for ES256"),
        ({"system_id": "Bad_Id"}, "id must be"),
        ({"attributes": {"Bad": "x"}}, "bad name"),
    ],
)
def test_register_system_refusals_leave_file_unchanged(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    path = tmp_path / "policies" / "systems.toml"
    _, pub = write_keypair(tmp_path / "keys", "k", "ES256")
    args: dict[str, object] = {
        "system_id": "sys-x",
        "department": "rsj",
        "name_zh": "甲",
        "name_en": "A",
        "attributes": {},
        "purposes": ["statistics"],
        "public_key_path": pub,
        "alg": "ES256",
    }
    args.update(change)
    with pytest.raises(ConfigurationError, match=message):
        register_system(
            path,
            known_departments=DEPARTMENTS,
            known_purposes=PURPOSES,
            **args,  # type: ignore[arg-type]
        )
    assert not path.exists()


def test_register_system_refuses_a_key_of_another_system(tmp_path: Path) -> None:
    path = tmp_path / "policies" / "systems.toml"
    _, pub = write_keypair(tmp_path / "keys", "k", "EdDSA")
    register_system(path, "sys-a", "rsj", "甲", "A", {}, ["statistics"], pub, "EdDSA")
    before = path.read_text(encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"already registered for systems\.sys-a"):
        register_system(path, "sys-b", "rsj", "乙", "B", {}, ["statistics"], pub, "EdDSA")
    assert path.read_text(encoding="utf-8") == before
    registry = SystemRegistry.load(path, base_dir=path.parent)  # paths relative to the file
    system = registry.get("sys-a")
    assert system is not None
    assert dict(system.attributes) == {}


def test_unknown_role_is_refused(root_dir: Path, policy_dir: Path, tmp_path: Path) -> None:
    text = (policy_dir / "systems.toml").read_text(encoding="utf-8")
    bad = tmp_path / "systems.toml"
    bad.write_text(text.replace('roles = ["auditor"]', 'roles = ["superuser"]'), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="unknown role"):
        SystemRegistry.load(bad, base_dir=root_dir)
