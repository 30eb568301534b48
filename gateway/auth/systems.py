"""The registry of consumer systems (``systems.toml`` in the policy directory).

A consumer system is an application run by one department, registered with one or more
public keys. It authenticates with a JWT client assertion (RFC 7523) signed by one of
those keys; the ``kid`` of each key is its RFC 7638 thumbprint, computed here, never
written by hand. Format::

    [systems.rsj-subsidy]
    department = "rsj"
    name = { zh = "人社局就业补贴审核系统", en = "HRSS employment subsidy review" }
    attributes = { district = "历下区", city = "济南市" }
    purposes = ["employment_subsidy_review"]
    status = "active"                       # or "suspended"
    quotas = { queries_per_day = 10000, rows_per_month = 5000000 }   # optional

    [[systems.rsj-subsidy.keys]]
    alg = "EdDSA"                           # or "ES256"
    public_key = "keys/demo/rsj-subsidy.demo.pub.pem"   # relative to base_dir, or a PEM

Loading validates everything and raises ConfigurationError naming the offending key: a
registry that loads is complete and consistent.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from gateway.admin.quotas import parse_quotas
from gateway.auth.keys import (
    Algorithm,
    PublicKey,
    check_key_matches_alg,
    jwk_thumbprint,
    load_public_key,
)
from gateway.catalog.model import Text
from gateway.domain import Principal
from gateway.durable import write_durably
from gateway.errors import ConfigurationError
from gateway.policy.roles import SYSTEM_ROLES, Role

__all__ = ["RegisteredSystem", "SystemKey", "SystemRegistry", "register_system"]

Status = Literal["active", "suspended"]
_STATUSES: frozenset[str] = frozenset({"active", "suspended"})

# System ids travel in JWT iss/sub and as bare TOML keys: keep them plain.
_SYSTEM_ID = re.compile(r"^[a-z][a-z0-9-]{1,62}[a-z0-9]$")
# Attribute names become row-filter template names ({principal.<name>}).
_ATTRIBUTE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Template values the Principal itself provides; an attribute must not shadow them.
_RESERVED_ATTRIBUTES = frozenset({"department", "system"})
_SYSTEM_FIELDS = frozenset(
    {
        "department",
        "name",
        "attributes",
        "purposes",
        "status",
        "keys",
        "roles",
        "quotas",
        "search_path",
    }
)
_KEY_FIELDS = frozenset({"alg", "public_key"})


@dataclass(frozen=True, slots=True)
class SystemKey:
    """One registered public key of a consumer system."""

    #: RFC 7638 thumbprint of the public key; the assertion's ``kid`` header.
    kid: str
    #: The only algorithm this key verifies (RFC 8725 §3.1: pin per key).
    alg: Algorithm
    public_key: PublicKey
    #: Where the key came from (file path, or ``inline``), for messages.
    source: str


@dataclass(frozen=True, slots=True)
class RegisteredSystem:
    """A registered consumer system. Immutable; mappings are read-only views."""

    system_id: str
    department: str
    name: Text
    attributes: Mapping[str, str]
    purposes: frozenset[str]
    status: Status
    #: kid → key.
    keys: Mapping[str, SystemKey]
    #: Roles beyond consuming data (gateway.policy.roles); empty for a plain consumer.
    roles: frozenset[Role] = frozenset()
    #: Quotas over everything the system queries (gateway/admin/quotas.py), e.g.
    #: ``{"queries_per_day": 10000, "rows_per_month": 5000000}``.
    quotas: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    #: Datasets whose tables this system names without ``dataset.`` (replaces the
    #: catalog's ``search_path``; checked against the catalog when a version loads).
    search_path: tuple[str, ...] = ()

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def principal(self, *, officer: str | None = None, token_id: str = "") -> Principal:
        """The caller this system is: what the policy decides for (token holders, people
        acting through it, explain and replay all use this one mapping)."""
        return Principal(
            system=self.system_id,
            department=self.department,
            attributes=self.attributes,
            purposes=self.purposes,
            token_id=token_id,
            officer=officer,
            roles=self.roles,
            search_path=self.search_path,
        )

    def key(self, kid: str) -> SystemKey | None:
        """This system's key with ``kid``, or None (a key of another system is None)."""
        return self.keys.get(kid)


@dataclass(frozen=True, slots=True)
class SystemRegistry:
    """All registered systems, indexed by id and by key id."""

    systems: Mapping[str, RegisteredSystem]
    #: kid → owning system id; a kid is unique across the whole registry.
    key_owners: Mapping[str, str]

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        base_dir: Path,
        known_departments: Collection[str] | None = None,
        known_purposes: Collection[str] | None = None,
    ) -> SystemRegistry:
        """Parse and validate ``path``. Key paths are resolved against ``base_dir``.

        ``known_departments`` / ``known_purposes`` (from the catalog) are enforced when
        given. Raises ConfigurationError naming the offending key on any problem: syntax,
        unknown field, bad id, unknown department or purpose, missing or unreadable key,
        key type not matching ``alg``, or the same key registered twice.
        """
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path}: invalid TOML: {exc}") from None
        return cls.parse(
            raw,
            base_dir=base_dir,
            known_departments=known_departments,
            known_purposes=known_purposes,
        )

    @classmethod
    def parse(
        cls,
        raw: Mapping[str, Any],
        *,
        base_dir: Path,
        known_departments: Collection[str] | None = None,
        known_purposes: Collection[str] | None = None,
    ) -> SystemRegistry:
        """Validate an already-parsed TOML document; see :meth:`load`."""
        extra = set(raw) - {"version", "systems"}
        if extra:
            raise ConfigurationError(f"systems.toml: unknown top-level key(s) {sorted(extra)}")
        table = raw.get("systems", {})
        if not isinstance(table, dict):
            raise ConfigurationError("systems.toml: [systems] must be a table")
        systems: dict[str, RegisteredSystem] = {}
        key_owners: dict[str, str] = {}
        for system_id, sraw in table.items():
            system = _parse_system(system_id, sraw, base_dir, known_departments, known_purposes)
            for kid, key in system.keys.items():
                if kid in key_owners:
                    raise ConfigurationError(
                        f"systems.{system_id}.keys: key {key.source} (kid {kid}) is already "
                        f"registered for systems.{key_owners[kid]}"
                    )
                key_owners[kid] = system_id
            systems[system_id] = system
        return cls(systems=MappingProxyType(systems), key_owners=MappingProxyType(key_owners))

    def get(self, system_id: str) -> RegisteredSystem | None:
        """The system with this id, or None."""
        return self.systems.get(system_id)

    def all(self) -> tuple[RegisteredSystem, ...]:
        """Every registered system (active or not), sorted by id."""
        return tuple(self.systems[s] for s in sorted(self.systems))

    def find_key(self, kid: str) -> tuple[RegisteredSystem, SystemKey] | None:
        """The system owning ``kid`` and the key itself, or None if no system has it."""
        owner = self.key_owners.get(kid)
        if owner is None:
            return None
        system = self.systems[owner]
        return system, system.keys[kid]


def _parse_system(
    system_id: str,
    raw: Any,
    base_dir: Path,
    known_departments: Collection[str] | None,
    known_purposes: Collection[str] | None,
) -> RegisteredSystem:
    where = f"systems.{system_id}"
    if not _SYSTEM_ID.match(system_id):
        raise ConfigurationError(
            f"{where}: id must be 3-64 characters of a-z, 0-9 and '-', starting with a letter"
        )
    _check_table(where, raw, _SYSTEM_FIELDS)

    department = raw.get("department")
    if not isinstance(department, str) or not department:
        raise ConfigurationError(f"{where}.department is required (a department code)")
    if known_departments is not None and department not in known_departments:
        raise ConfigurationError(f"{where}.department: unknown department {department!r}")

    name = raw.get("name")
    if not (
        isinstance(name, dict)
        and set(name) == {"zh", "en"}
        and all(isinstance(v, str) and v for v in name.values())
    ):
        raise ConfigurationError(f'{where}.name must be {{ zh = "…", en = "…" }}')

    attributes = raw.get("attributes", {})
    if not isinstance(attributes, dict):
        raise ConfigurationError(f"{where}.attributes must be a table of strings")
    for attr, value in attributes.items():
        if not _ATTRIBUTE.match(attr) or attr in _RESERVED_ATTRIBUTES:
            raise ConfigurationError(
                f"{where}.attributes.{attr}: must be a lower-case identifier other than "
                "'department' and 'system'"
            )
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"{where}.attributes.{attr} must be a non-empty string")

    purposes = raw.get("purposes")
    if (
        not isinstance(purposes, list)
        or not purposes
        or not all(isinstance(p, str) and p for p in purposes)
    ):
        raise ConfigurationError(f"{where}.purposes must be a non-empty list of purpose codes")
    if len(set(purposes)) != len(purposes):
        raise ConfigurationError(f"{where}.purposes lists a purpose twice")
    if known_purposes is not None:
        for purpose in purposes:
            if purpose not in known_purposes:
                raise ConfigurationError(f"{where}.purposes: unknown purpose {purpose!r}")

    status = raw.get("status")
    if status not in _STATUSES:
        raise ConfigurationError(f'{where}.status must be "active" or "suspended"')

    roles = raw.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise ConfigurationError(f"{where}.roles must be a list of role names")
    known = sorted(r.value for r in SYSTEM_ROLES)
    unknown_roles = set(roles) - set(known)
    if unknown_roles:
        raise ConfigurationError(
            f"{where}.roles: unknown role(s) {sorted(unknown_roles)}; known: {known}"
        )

    keys_raw = raw.get("keys", [])
    if not isinstance(keys_raw, list):
        raise ConfigurationError(f"{where}.keys must be an array of tables ([[{where}.keys]])")
    if not keys_raw and status == "active":
        raise ConfigurationError(f"{where}: an active system needs at least one key")
    keys: dict[str, SystemKey] = {}
    for i, kraw in enumerate(keys_raw):
        key = _parse_key(f"{where}.keys[{i}]", kraw, base_dir)
        if key.kid in keys:
            raise ConfigurationError(
                f"{where}.keys[{i}]: duplicate key (kid {key.kid}, also {keys[key.kid].source})"
            )
        keys[key.kid] = key

    return RegisteredSystem(
        system_id=system_id,
        department=department,
        name=Text(zh=name["zh"], en=name["en"]),
        attributes=MappingProxyType(dict(attributes)),
        purposes=frozenset(purposes),
        status=status,
        keys=MappingProxyType(keys),
        roles=frozenset(Role(r) for r in roles),
        quotas=MappingProxyType(parse_quotas(raw.get("quotas"), f"{where}.quotas")),
        search_path=_search_path(raw.get("search_path", []), where),
    )


def _search_path(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigurationError(f"{where}.search_path must be a list of dataset names")
    return tuple(value)


def _check_table(where: str, raw: Any, fields: frozenset[str]) -> None:
    """Refuse ``raw`` unless it is a TOML table of only ``fields`` (a typo in a field
    name must not silently drop a setting)."""
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{where} must be a table")
    extra = set(raw) - fields
    if extra:
        raise ConfigurationError(f"{where}: unknown field(s) {sorted(extra)}")


def _parse_key(where: str, raw: Any, base_dir: Path) -> SystemKey:
    _check_table(where, raw, _KEY_FIELDS)
    alg = raw.get("alg")
    if not isinstance(alg, str):
        raise ConfigurationError(f'{where}.alg is required ("EdDSA" or "ES256")')
    ref = raw.get("public_key")
    if not isinstance(ref, str) or not ref.strip():
        raise ConfigurationError(f"{where}.public_key is required (a path or a PEM)")
    if ref.lstrip().startswith("-----BEGIN"):
        source, pem = "inline", ref.encode("utf-8")
    else:
        path = Path(ref)
        # Lexically normalised: ``../keys`` must not depend on the directories it climbs.
        path = path if path.is_absolute() else Path(os.path.normpath(base_dir / path))
        source = str(ref)
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"{where}.public_key: cannot read {path}: {exc.strerror}"
            ) from None
    try:
        public = load_public_key(pem)
        checked = check_key_matches_alg(public, alg)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}.public_key ({source}): {exc.detail}") from None
    return SystemKey(kid=jwk_thumbprint(public), alg=checked, public_key=public, source=source)


# --------------------------------------------------------------------------- registration


def register_system(
    path: Path,
    system_id: str,
    department: str,
    name_zh: str,
    name_en: str,
    attributes: Mapping[str, str],
    purposes: Iterable[str],
    public_key_path: Path,
    alg: Algorithm,
    *,
    base_dir: Path | None = None,
    known_departments: Collection[str] | None = None,
    known_purposes: Collection[str] | None = None,
    status: Status = "active",
) -> RegisteredSystem:
    """Append a new system block to ``path`` (created if missing); used by
    ``gateway systems register``.

    ``base_dir`` (default: the directory of ``path``) is what key paths are relative
    to; the key path is stored relative to it (``../keys/x.pub.pem`` is fine). The
    whole resulting file is validated with :meth:`SystemRegistry.parse` before anything
    is written, and written atomically (temporary file + rename), so a failed
    registration leaves the file as it was. Raises ConfigurationError if the id is
    already registered or anything is invalid (including a key already registered for
    another system). Returns the new system.
    """
    base = path.parent if base_dir is None else base_dir
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        current = tomllib.loads(existing)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: invalid TOML: {exc}") from None
    if system_id in current.get("systems", {}):
        raise ConfigurationError(f"systems.{system_id} is already registered in {path}")

    key_ref = public_key_path
    if not key_ref.is_absolute():
        key_ref = Path.cwd() / key_ref
    # Relative to the file that names it, so the directory can move as a whole.
    stored_ref = Path(os.path.relpath(key_ref.resolve(), base.resolve())).as_posix()

    block = _render_block(
        system_id,
        department,
        name_zh,
        name_en,
        attributes,
        list(purposes),
        stored_ref,
        alg,
        status,
    )
    separator = (
        ""
        if not existing or existing.endswith("\n\n")
        else ("\n" if existing.endswith("\n") else "\n\n")
    )
    new_text = existing + separator + block
    from gateway.policy.versions import inline_keys

    try:
        # The entries already there, with their key paths read as loading reads them:
        # relative to this file, then (the demo's layout) to the directory above it.
        earlier = inline_keys(existing, [base, path.parent.parent])
        parsed = tomllib.loads(earlier + separator + block)
    except tomllib.TOMLDecodeError as exc:  # pragma: no cover - _render_block emits valid TOML
        raise ConfigurationError(f"systems.{system_id}: cannot render entry: {exc}") from None
    registry = SystemRegistry.parse(
        parsed,
        base_dir=base,
        known_departments=known_departments,
        known_purposes=known_purposes,
    )
    write_durably(path, new_text)
    system = registry.get(system_id)
    assert system is not None  # noqa: S101 - just parsed from the text we wrote
    return system


def _toml_str(value: str) -> str:
    # A JSON string is a valid TOML basic string except that TOML also forbids a raw DEL
    # (TOML 1.0 "String": U+007F must be escaped).
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007F")


def _render_block(
    system_id: str,
    department: str,
    name_zh: str,
    name_en: str,
    attributes: Mapping[str, str],
    purposes: list[str],
    key_ref: str,
    alg: str,
    status: str,
) -> str:
    if not _SYSTEM_ID.match(system_id):
        raise ConfigurationError(
            f"systems.{system_id}: id must be 3-64 characters of a-z, 0-9 and '-'"
        )
    for attr in attributes:
        if not _ATTRIBUTE.match(attr):
            raise ConfigurationError(f"systems.{system_id}.attributes.{attr}: bad name")
    attrs = ", ".join(f"{k} = {_toml_str(v)}" for k, v in attributes.items())
    attrs_inline = f"{{ {attrs} }}" if attrs else "{}"
    return (
        f"[systems.{system_id}]\n"
        f"department = {_toml_str(department)}\n"
        f"name = {{ zh = {_toml_str(name_zh)}, en = {_toml_str(name_en)} }}\n"
        f"attributes = {attrs_inline}\n"
        f"purposes = [{', '.join(_toml_str(p) for p in purposes)}]\n"
        f"status = {_toml_str(status)}\n"
        f"\n[[systems.{system_id}.keys]]\n"
        f"alg = {_toml_str(alg)}\n"
        f"public_key = {_toml_str(key_ref)}\n"
    )
