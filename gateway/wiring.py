"""Build the gateway's services from settings: the only place that knows how the seams
are plugged together. Everything is constructed once at start-up and passed down.

Start-up fails closed: a catalog, policy, key or audit store that does not load stops
the gateway with a ConfigurationError instead of serving with a partial configuration.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import argon2

from gateway.admin.accounts import AccountStore, LoginPolicy
from gateway.admin.applications import ApplicationStore, StoredGrants
from gateway.admin.calendar import WorkingCalendar
from gateway.admin.db import AdminDb, open_admin_db
from gateway.admin.identity import LocalIdentity, OidcIdentity, load_oidc_identity
from gateway.admin.outbox import Outbox, WebhookSender
from gateway.admin.policies import PolicyVersionStore
from gateway.admin.quotas import QuotaMeter
from gateway.admin.sessions import SessionStore
from gateway.admin.sweeper import Sweeper
from gateway.audit import open_audit_store
from gateway.audit.commit import GroupCommitter
from gateway.audit.evidence import EvidenceKeys, load_audit_secret
from gateway.audit.signing import CheckpointSigner, load_log_signer
from gateway.audit.store.memory import MemoryAuditStore
from gateway.audit.store.protocol import AuditStore
from gateway.audit.trail import AuditTrail
from gateway.audit.witness import SqliteWitnessState, Witness, load_witness
from gateway.audit.witnessing import PIN_FILE, HeadPin, Witnessing, http_post, parse_targets
from gateway.auth.callers import Callers
from gateway.auth.keys import (
    PSEUDONYM_SECRET_FILE,
    PSEUDONYM_SECRET_FILE_DEMO,
    GatewayKeyStore,
    load_pseudonym_secret,
)
from gateway.auth.replay import ReplayCache, open_replay_cache
from gateway.auth.tokens import TokenService, VerifiedTokenCache
from gateway.backends import Backend, open_backend
from gateway.backends.base import ReportsPool
from gateway.cache import LruCache
from gateway.clock import Clock, utc_now
from gateway.domain import Principal
from gateway.errors import ConfigurationError
from gateway.policy.bundle import (
    PolicyBundle,
    bundle_from_source,
    deployment_backends,
    load_policy_bundle,
)
from gateway.policy.review import PolicyReviewer
from gateway.policy.runtime import ActivePolicy, PolicyRuntime
from gateway.policy.versions import PolicySource
from gateway.query.explain import Explainer
from gateway.query.pipeline import QueryDeps, QueryService
from gateway.query.plan import Planner
from gateway.query.rewrite.masks import (
    MaskContext,
    check_mask_spec,
    derive_pseudonym_key,
    sqlite_functions,
)
from gateway.settings import Settings
from gateway.telemetry import Observation, Reading, Telemetry, build_telemetry

_log = logging.getLogger("gateway.wiring")

__all__ = [
    "AdminServices",
    "PolicyBundle",
    "Services",
    "build_admin",
    "build_services",
    "load_policy_bundle",
    "observations",
]


@dataclass(frozen=True, slots=True)
class AdminServices:
    """The administration plane: its store and what is built on it."""

    db: AdminDb
    accounts: AccountStore
    sessions: SessionStore
    local_identity: LocalIdentity
    #: The deployment's OpenID Connect provider, when configured.
    oidc: OidcIdentity | None
    applications: ApplicationStore
    #: The grants as the policy engine sees them.
    grants: StoredGrants
    outbox: Outbox
    calendar: WorkingCalendar
    webhook: WebhookSender | None
    #: Policy versions: proposals, approvals, activations.
    versions: PolicyVersionStore
    #: The quota meter every replica shares.
    quotas: QuotaMeter

    def close(self) -> None:
        if self.webhook is not None:
            self.webhook.close()
        self.db.close()


def build_admin(
    settings: Settings,
    policies: PolicyRuntime,
    *,
    clock: Clock,
    db: AdminDb,
    grants: StoredGrants,
    versions: PolicyVersionStore,
    hasher: argon2.PasswordHasher | None = None,
) -> AdminServices:
    accounts = AccountStore(
        db,
        policy=LoginPolicy(
            max_failures=settings.login_max_failures,
            lockout=timedelta(seconds=settings.login_lockout_s),
        ),
        hasher=hasher,
    )
    sessions = SessionStore(
        db,
        accounts,
        bearer_ttl=timedelta(seconds=settings.person_token_ttl_s),
        cookie_ttl=timedelta(seconds=settings.console_session_ttl_s),
    )
    oidc = load_oidc_identity(
        accounts,
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        jwks_file=settings.oidc_jwks_file,
    )
    calendar = WorkingCalendar.load(
        [Path(settings.holidays_file)] if settings.holidays_file else []
    )

    def reply_days(dataset: str) -> int:
        described = policies.current().catalog.datasets.get(dataset)
        return (described.reply_days if described else None) or settings.reply_days

    applications = ApplicationStore(
        db,
        catalog=lambda: policies.current().catalog,
        registry=lambda: policies.current().registry,
        calendar=calendar,
        check_mask=check_mask_spec,
        reply_days=reply_days,
        reminder_days=settings.reminder_days,
    )
    webhook = WebhookSender(db, settings.webhook_url, clock=clock) if settings.webhook_url else None
    return AdminServices(
        db=db,
        accounts=accounts,
        sessions=sessions,
        local_identity=LocalIdentity(accounts),
        oidc=oidc,
        applications=applications,
        grants=grants,
        outbox=Outbox(db),
        calendar=calendar,
        webhook=webhook,
        versions=versions,
        quotas=QuotaMeter(db),
    )


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    #: The active policy version (catalog, registry, engine, planner), followed live.
    policies: PolicyRuntime
    keystore: GatewayKeyStore
    tokens: TokenService
    query: QueryService
    #: The query path's planning steps, without execution (POST /v1/explain, replays).
    explainer: Explainer
    audit: AuditStore
    #: Group commit in front of ``audit``: what the request path appends through.
    audit_log: GroupCommitter
    audit_signer: CheckpointSigner
    #: The one way any request writes its audit record.
    trail: AuditTrail
    evidence: EvidenceKeys
    #: Cosigns other gateways' checkpoints when the key directory holds a witness key.
    witness: Witness | None
    #: Has this log's checkpoints cosigned, pins its head, refused a rolled-back start.
    witnessing: Witnessing
    backends: Mapping[str, Backend]
    telemetry: Telemetry
    replay: ReplayCache
    admin: AdminServices
    #: Who is calling: systems (access tokens) and people (sessions).
    callers: Callers
    clock: Clock
    #: Escalations, expiries and reminders of the sharing workflow, in the background.
    sweeper: Sweeper

    @property
    def bundle(self) -> PolicyBundle:
        """The active policy version's bundle (it may change while serving)."""
        return self.policies.current().bundle

    @property
    def planner(self) -> Planner:
        return self.policies.current().planner

    def start(self) -> None:
        """Start the background work (on application start-up)."""
        self.sweeper.start()
        self.witnessing.start()
        if self.admin.webhook is not None:
            self.admin.webhook.start()

    def close(self) -> None:
        self.sweeper.close()
        for backend in self.backends.values():
            backend.close()
        self.audit_log.close()
        self.witnessing.close()
        self.audit.close()
        self.replay.close()
        self.admin.close()
        self.telemetry.shutdown()


DEMO_KEYS_WARNING = (
    "!!! DEMO KEYS IN USE: the token-signing key of this gateway is a PUBLIC DEMO KEY "
    "(keys/demo/): anyone can sign access tokens for it. Never serve real data with it; "
    "generate a deployment with `gateway init DIR` (see README 'Deploying on your own "
    "data') !!!"
)


def _pseudonym_secret_if_any(key_dir: Path) -> bytes | None:
    """The pseudonym secret, or None when the key directory has none (only a policy
    using the pseudonym mask needs one)."""
    if not any((key_dir / n).exists() for n in (PSEUDONYM_SECRET_FILE, PSEUDONYM_SECRET_FILE_DEMO)):
        return None
    return load_pseudonym_secret(key_dir)


def uses_pseudonym(bundle: PolicyBundle) -> bool:
    """Whether a policy version can apply the pseudonym mask: a rule naming it, or a
    catalog default mask that a ``mask`` rule would apply (counted conservatively)."""
    if any("pseudonym" in line[6] for line in bundle.engine.policy_lines("p")):
        return True
    return any(
        c.default_mask is not None and c.default_mask.kind == "pseudonym"
        for t in bundle.catalog.tables()
        for c in t.columns.values()
    )


def build_services(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    audit: AuditStore | None = None,
    telemetry: Telemetry | None = None,
    replay: ReplayCache | None = None,
    backends: Mapping[str, Backend] | None = None,
    admin_db: AdminDb | None = None,
    password_hasher: argon2.PasswordHasher | None = None,
) -> Services:
    """Construct every service. Optional arguments replace a seam (tests, benchmarks)."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    admin_db = admin_db or open_admin_db(settings.admin_location)
    grants = StoredGrants(admin_db, clock=time.monotonic)
    backend_configs = deployment_backends(settings)
    versions = PolicyVersionStore(
        admin_db,
        review=PolicyReviewer(backend_configs, clock=clock),
        two_person=two_person_rule(settings.two_person_departments),
    )
    # The policy directory is the first version; later ones are changed through the API
    # (or `gateway policy import`): the store is the truth from then on.
    files = PolicySource.from_directory(settings.policy_dir)
    versions.bootstrap(files, now=clock(), origin=str(settings.policy_dir))
    keystore = GatewayKeyStore.load(settings.key_dir)
    if keystore.is_demo:
        _log.warning(DEMO_KEYS_WARNING, extra={"key_dir": str(settings.key_dir)})
    secret = _pseudonym_secret_if_any(settings.key_dir)
    telemetry = telemetry or build_telemetry(settings.telemetry)
    replay = replay or open_replay_cache(settings.replay_location, clock=clock)
    signer = load_log_signer(settings.key_dir)
    evidence = EvidenceKeys.from_secret(load_audit_secret(settings.key_dir))
    audit = audit or open_audit_store(settings.audit_location, signer)
    witness = load_witness(
        settings.key_dir,
        lambda: SqliteWitnessState(settings.state_dir / "witness.sqlite"),
        lambda: int(clock().timestamp()),
    )
    witnessing = build_witnessing(settings, audit)
    # Before anything can append: a rolled-back or replaced log must not be forked.
    witnessing.check_start()
    audit_log = GroupCommitter(
        audit,
        max_batch=settings.audit_batch_max,
        max_wait_s=settings.audit_batch_wait_ms / 1000,
        cosign=witnessing.cosign_batch if witnessing.quorum else None,
    )
    if backends is None:
        udfs = sqlite_functions()
        backends = {
            name: open_backend(cfg, sqlite_functions=udfs) for name, cfg in backend_configs.items()
        }
    dialects = {name: b.dialect for name, b in backends.items()}
    # Without a pseudonym secret no policy file may use the mask (checked per version);
    # a grant that imposes it anyway gets tokens under a random key of this process —
    # unlinkable, never weaker.
    unused_secret = secrets.token_bytes(32)
    # Derived once per department (an eviction only means deriving the same key again).
    keys: LruCache[str, bytes] = LruCache(256)

    def load_version(version_id: str) -> ActivePolicy:
        bundle = bundle_from_source(
            versions.get(version_id).source, backends=backend_configs, grants=grants
        )
        regions = bundle.catalog.regions
        if secret is None and uses_pseudonym(bundle):
            raise ConfigurationError(
                f"the policy uses the pseudonym mask but {settings.key_dir} holds no "
                "pseudonym secret: create it with `gateway keys secret` (and back it up)"
            )
        master = secret if secret is not None else unused_secret

        def mask_context(principal: Principal) -> MaskContext:
            # One key per consumer department: tokens link within a department, not across.
            key = keys.get_or_compute(
                principal.department,
                lambda: derive_pseudonym_key(master, principal.department),
            )
            return MaskContext(pseudonym_key=key, regions=regions)

        planner = Planner(
            bundle.catalog,
            backend_dialects=dialects,
            mask_context=mask_context,
            max_rows_ceiling=settings.max_rows_ceiling,
            cache_size=settings.plan_cache_size,
        )
        return ActivePolicy(bundle, planner)

    policies = PolicyRuntime(
        active_version=versions.active_version,
        load=load_version,
        epoch=lambda: admin_db.epoch("policy"),
        clock=time.monotonic,
        poll_s=settings.policy_poll_s,
    )
    active = policies.current()  # fail at start, not at the first request
    if active.version != files.id:
        _log.warning(
            "the policy directory differs from the active policy version",
            extra={"active": active.version, "files": files.id, "dir": str(settings.policy_dir)},
        )
    tokens = TokenService(
        settings,
        lambda: policies.current().registry,
        keystore,
        replay,
        clock,
        token_cache=VerifiedTokenCache(),
    )
    admin = build_admin(
        settings,
        policies,
        clock=clock,
        db=admin_db,
        grants=grants,
        hasher=password_hasher,
        versions=versions,
    )
    callers = Callers(tokens, admin.sessions, clock)
    trail = AuditTrail(
        audit_log, evidence, telemetry, clock=clock, policy_version=policies.version_or_unknown
    )
    telemetry.observe(observations(audit_log, policies, backends))
    query = QueryService.build(
        QueryDeps(
            tokens=tokens,
            policies=policies,
            backends=backends,
            trail=trail,
            telemetry=telemetry,
            row_key=evidence.row_key,
            max_sql_chars=settings.max_sql_chars,
            statement_timeout_s=settings.statement_timeout_s,
            quota_meter=admin.quotas,
            grants=grants,
        )
    )
    return Services(
        settings=settings,
        policies=policies,
        keystore=keystore,
        tokens=tokens,
        query=query,
        explainer=Explainer(max_sql_chars=settings.max_sql_chars, stage=telemetry.stage),
        audit=audit,
        audit_log=audit_log,
        audit_signer=signer,
        trail=trail,
        evidence=evidence,
        witness=witness,
        witnessing=witnessing,
        backends=backends,
        telemetry=telemetry,
        replay=replay,
        admin=admin,
        callers=callers,
        clock=clock,
        sweeper=Sweeper(
            admin.applications,
            admin.grants,
            trail,
            clock=clock,
            interval_s=settings.sweep_interval_s,
        ),
    )


def build_witnessing(settings: Settings, audit: AuditStore) -> Witnessing:
    """The log's witnessing (gateway/audit/witnessing.py) as the settings configure it."""
    try:
        targets = parse_targets(settings.audit_witnesses)
    except ValueError as exc:
        raise ConfigurationError(f"GATEWAY_AUDIT_WITNESSES: {exc}") from exc
    # A memory log starts empty by design (tests, demos): there is nothing to pin.
    durable = not isinstance(audit, MemoryAuditStore)
    return Witnessing(
        audit,
        targets,
        HeadPin(settings.state_dir / PIN_FILE) if durable else None,
        post=http_post(settings.audit_witness_timeout_s),
        quorum=settings.audit_witness_quorum,
        interval_s=settings.audit_witness_interval_s,
    )


def observations(
    audit_log: GroupCommitter, policies: PolicyRuntime, backends: Mapping[str, Backend]
) -> list[Observation]:
    """What the metrics read from the services when they are collected (nothing per
    request): the audit committer's batches (its ``BatchStats``), the plan cache, and the
    backends' connection pools (database-client semantic conventions). Audit commit
    *latency* is the ``gateway.stage.duration`` histogram of stage ``audit``: the time a
    request waits for its record to be durable and signed, queueing included. The plan
    cache is the active policy version's (a new version starts a new cache)."""
    stats = audit_log.stats
    pools = {name: b for name, b in backends.items() if isinstance(b, ReportsPool)}

    def one(value: float) -> list[Reading]:
        return [(value, {})]

    def lookups() -> list[Reading]:
        return [
            (policies.current().planner.cache_stats.hits, {"gateway.cache.result": "hit"}),
            (policies.current().planner.cache_stats.misses, {"gateway.cache.result": "miss"}),
        ]

    def connections() -> list[Reading]:
        readings: list[Reading] = []
        for name, backend in pools.items():
            pool = backend.pool_stats()
            readings.append(
                (
                    pool.in_use,
                    {"db.client.connection.pool.name": name, "db.client.connection.state": "used"},
                )
            )
            readings.append(
                (
                    pool.size - pool.in_use,
                    {"db.client.connection.pool.name": name, "db.client.connection.state": "idle"},
                )
            )
        return readings

    def max_connections() -> list[Reading]:
        return [
            (b.pool_stats().max_size, {"db.client.connection.pool.name": name})
            for name, b in pools.items()
        ]

    return [
        Observation(
            "gateway.audit.batches",
            "counter",
            "{batch}",
            "Audit batches committed (one transaction and one signed checkpoint each).",
            lambda: one(stats.batches),
        ),
        Observation(
            "gateway.audit.records",
            "counter",
            "{record}",
            "Audit records committed; divided by batches, the mean batch size.",
            lambda: one(stats.records),
        ),
        Observation(
            "gateway.audit.batch.largest",
            "gauge",
            "{record}",
            "Largest audit batch committed since the process started.",
            lambda: one(stats.largest),
        ),
        Observation(
            "gateway.audit.batch.failures",
            "counter",
            "{batch}",
            "Audit batches that failed to commit (their requests got 503).",
            lambda: one(stats.failures),
        ),
        Observation(
            "gateway.plan_cache.lookups",
            "counter",
            "{lookup}",
            "Plan-cache lookups by result (hit or miss); hits / all is the hit rate.",
            lookups,
        ),
        Observation(
            "gateway.plan_cache.entries",
            "updown",
            "{plan}",
            "Plans in the plan cache.",
            lambda: one(policies.current().planner.cached_plans),
        ),
        Observation(
            "db.client.connection.count",
            "updown",
            "{connection}",
            "Backend connections by pool and state (used or idle).",
            connections,
        ),
        Observation(
            "db.client.connection.max",
            "updown",
            "{connection}",
            "Most connections a backend's pool may open.",
            max_connections,
        ),
    ]


def two_person_rule(departments: frozenset[str]) -> Callable[[Iterable[str]], bool]:
    """Whether a change touching these departments needs a second officer's approval
    (``*``: every department, and configuration changes too)."""

    def needs(touched: Iterable[str]) -> bool:
        names = set(touched)
        return "*" in departments or bool(names & departments)

    return needs
