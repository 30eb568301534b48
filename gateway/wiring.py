"""Build the gateway's services from settings: the only place that knows how the seams
are plugged together. Everything is constructed once at start-up and passed down.

Start-up fails closed: a catalog, policy, key or audit store that does not load stops
the gateway with a ConfigurationError instead of serving with a partial configuration.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.audit import open_audit_store
from gateway.audit.commit import GroupCommitter
from gateway.audit.evidence import EvidenceKeys, load_audit_secret
from gateway.audit.signing import CheckpointSigner, load_log_signer
from gateway.audit.store.protocol import AuditStore
from gateway.audit.witness import SqliteWitnessState, Witness, load_witness
from gateway.auth.keys import GatewayKeyStore, load_pseudonym_secret
from gateway.auth.replay import ReplayCache, open_replay_cache
from gateway.auth.systems import SystemRegistry
from gateway.auth.tokens import TokenService, VerifiedTokenCache
from gateway.backends import Backend, BackendConfig, load_backend_configs, open_backend
from gateway.catalog import Catalog, load_catalog
from gateway.domain import Principal
from gateway.errors import ConfigurationError
from gateway.policy.engine import CasbinPolicyEngine, PolicyFiles
from gateway.query.pipeline import QueryService
from gateway.query.plan import Planner
from gateway.query.rewrite.masks import (
    MaskContext,
    check_mask_spec,
    derive_pseudonym_key,
    sqlite_functions,
)
from gateway.settings import Settings
from gateway.telemetry import Telemetry

__all__ = ["PolicyBundle", "Services", "build_services", "load_policy_bundle"]

POLICY_FILES = ("catalog.toml", "systems.toml", "backends.toml", "model.conf", "policy.csv")


@dataclass(frozen=True, slots=True)
class PolicyBundle:
    """Everything read from the policy directory, validated, with its version."""

    catalog: Catalog
    registry: SystemRegistry
    backends: Mapping[str, BackendConfig]
    engine: CasbinPolicyEngine
    #: ``sha256:<hex>`` over the policy files; recorded with every decision.
    version: str


def policy_version(policy_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in POLICY_FILES:
        data = (policy_dir / name).read_bytes()
        digest.update(name.encode() + b"\x00" + len(data).to_bytes(8, "big") + data)
    return "sha256:" + digest.hexdigest()


def load_policy_bundle(settings: Settings, env: Mapping[str, str] | None = None) -> PolicyBundle:
    """Load and cross-check the policy directory. Raises ConfigurationError."""
    policy_dir = settings.policy_dir
    catalog = load_catalog(policy_dir / "catalog.toml")
    registry = SystemRegistry.load(
        policy_dir / "systems.toml",
        base_dir=policy_dir.resolve().parent,
        known_departments=catalog.departments.keys(),
        known_purposes=catalog.purposes.keys(),
    )
    backends = load_backend_configs(
        policy_dir / "backends.toml",
        env=dict(os.environ if env is None else env),
        overrides=settings.backend_dsns,
    )
    version = policy_version(policy_dir)
    for ds in catalog.datasets.values():
        if ds.backend not in backends:
            raise ConfigurationError(
                f"dataset {ds.name} names backend {ds.backend!r}, which backends.toml lacks"
            )
    engine = CasbinPolicyEngine(
        catalog,
        PolicyFiles(
            model_text=(policy_dir / "model.conf").read_text(encoding="utf-8"),
            policy_text=(policy_dir / "policy.csv").read_text(encoding="utf-8"),
        ),
        version=version,
        check_mask=check_mask_spec,
    )
    return PolicyBundle(catalog, registry, backends, engine, version)


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    bundle: PolicyBundle
    keystore: GatewayKeyStore
    tokens: TokenService
    query: QueryService
    planner: Planner
    audit: AuditStore
    #: Group commit in front of ``audit``: what the request path appends through.
    audit_log: GroupCommitter
    audit_signer: CheckpointSigner
    evidence: EvidenceKeys
    #: Cosigns other gateways' checkpoints when the key directory holds a witness key.
    witness: Witness | None
    backends: Mapping[str, Backend]
    telemetry: Telemetry
    replay: ReplayCache

    def close(self) -> None:
        for backend in self.backends.values():
            backend.close()
        self.audit_log.close()
        self.audit.close()
        self.replay.close()
        self.telemetry.shutdown()


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_services(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utc_now,
    audit: AuditStore | None = None,
    telemetry: Telemetry | None = None,
    replay: ReplayCache | None = None,
    backends: Mapping[str, Backend] | None = None,
) -> Services:
    """Construct every service. Optional arguments replace a seam (tests, benchmarks)."""
    bundle = load_policy_bundle(settings)
    keystore = GatewayKeyStore.load(settings.key_dir)
    secret = load_pseudonym_secret(settings.key_dir)
    telemetry = telemetry or Telemetry.from_settings(settings.telemetry)
    replay = replay or open_replay_cache(settings.replay_location, clock=clock)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    signer = load_log_signer(settings.key_dir)
    evidence = EvidenceKeys.from_secret(load_audit_secret(settings.key_dir))
    audit = audit or open_audit_store(settings.audit_location, signer)
    witness = load_witness(
        settings.key_dir,
        lambda: SqliteWitnessState(settings.state_dir / "witness.sqlite"),
        lambda: int(clock().timestamp()),
    )
    audit_log = GroupCommitter(
        audit,
        max_batch=settings.audit_batch_max,
        max_wait_s=settings.audit_batch_wait_ms / 1000,
    )
    if backends is None:
        udfs = sqlite_functions()
        backends = {
            name: open_backend(cfg, sqlite_functions=udfs) for name, cfg in bundle.backends.items()
        }
    contexts: dict[str, MaskContext] = {}

    def mask_context(principal: Principal) -> MaskContext:
        # One key per consumer department: tokens link within a department, not across.
        ctx = contexts.get(principal.department)
        if ctx is None:
            ctx = MaskContext(
                pseudonym_key=derive_pseudonym_key(secret, principal.department),
                regions=bundle.catalog.regions,
            )
            contexts[principal.department] = ctx
        return ctx

    planner = Planner(
        bundle.catalog,
        backend_dialects={name: b.dialect for name, b in backends.items()},
        mask_context=mask_context,
        default_max_rows=settings.default_max_rows,
        max_rows_ceiling=settings.max_rows_ceiling,
        cache_size=settings.plan_cache_size,
    )
    tokens = TokenService(
        settings, bundle.registry, keystore, replay, clock, token_cache=VerifiedTokenCache()
    )
    query = QueryService(
        catalog=bundle.catalog,
        engine=bundle.engine,
        planner=planner,
        backends=backends,
        audit=audit_log,
        evidence=evidence,
        telemetry=telemetry,
        clock=clock,
        statement_timeout_s=settings.statement_timeout_s,
    )
    return Services(
        settings=settings,
        bundle=bundle,
        keystore=keystore,
        tokens=tokens,
        query=query,
        planner=planner,
        audit=audit,
        audit_log=audit_log,
        audit_signer=signer,
        evidence=evidence,
        witness=witness,
        backends=backends,
        telemetry=telemetry,
        replay=replay,
    )
