"""A policy version loaded and cross-checked: catalog, registry, engine (and the
deployment's backend configurations it is checked against)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.auth.systems import SystemRegistry
from gateway.backends import BackendConfig, load_backend_configs
from gateway.catalog import Catalog
from gateway.catalog.load import parse_catalog, parse_search_path
from gateway.errors import ConfigurationError
from gateway.policy.engine import CasbinPolicyEngine, PolicyFiles
from gateway.policy.grants import GrantSource
from gateway.policy.versions import PolicySource
from gateway.query.rewrite.masks import check_mask_spec
from gateway.settings import Settings

__all__ = ["PolicyBundle", "bundle_from_source", "deployment_backends", "load_policy_bundle"]


@dataclass(frozen=True, slots=True)
class PolicyBundle:
    """One policy version, validated, ready to decide with."""

    catalog: Catalog
    registry: SystemRegistry
    backends: Mapping[str, BackendConfig]
    engine: CasbinPolicyEngine
    #: ``sha256:<hex>`` of the version (PolicySource.id); recorded with every decision.
    version: str
    source: PolicySource


def deployment_backends(settings: Settings) -> dict[str, BackendConfig]:
    """The deployment's backends (``backends.toml`` in the policy directory, with
    ``${VAR}`` references and ``GATEWAY_BACKEND_<NAME>_DSN`` overrides)."""
    return load_backend_configs(
        settings.policy_dir / "backends.toml",
        env=settings.environment,
        overrides=settings.backend_dsns,
    )


def _toml(text: str, name: str) -> dict[str, object]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"cannot read {name}: {exc}") from exc


def bundle_from_source(
    source: PolicySource,
    *,
    backends: Mapping[str, BackendConfig],
    grants: GrantSource | None = None,
    key_base: Path = Path(),
) -> PolicyBundle:
    """Load and cross-check a policy version. Raises ConfigurationError naming the file
    and entry at fault."""
    catalog = parse_catalog(
        _toml(source.files["catalog.toml"], "catalog.toml"), origin="catalog.toml"
    )
    registry = SystemRegistry.parse(
        _toml(source.files["systems.toml"], "systems.toml"),
        base_dir=key_base,
        known_departments=catalog.departments.keys(),
        known_purposes=catalog.purposes.keys(),
    )
    for system in registry.all():
        parse_search_path(
            list(system.search_path), catalog.datasets, f"systems.{system.system_id}.search_path"
        )
    for ds in catalog.datasets.values():
        if ds.backend not in backends:
            raise ConfigurationError(
                f"dataset {ds.name} names backend {ds.backend!r}, which backends.toml lacks"
            )
    engine = CasbinPolicyEngine(
        catalog,
        PolicyFiles(model_text=source.files["model.conf"], policy_text=source.files["policy.csv"]),
        version=source.id,
        check_mask=check_mask_spec,
        grants=grants,
    )
    return PolicyBundle(catalog, registry, dict(backends), engine, source.id, source)


def load_policy_bundle(settings: Settings, grants: GrantSource | None = None) -> PolicyBundle:
    """The policy directory's files as a version (``gateway check``, bootstrapping the
    store). Raises ConfigurationError."""
    source = PolicySource.from_directory(settings.policy_dir)
    return bundle_from_source(
        source,
        backends=deployment_backends(settings),
        grants=grants,
        key_base=settings.policy_dir.resolve(),
    )
