"""Settings: one frozen tree, built once at start-up from the environment (``GATEWAY_*``)
and passed to whatever needs it. Nothing reads the environment at import time.

Every setting is documented in README.md ("Settings"); a test checks that.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from gateway.errors import ConfigurationError

N = TypeVar("N", int, float)

__all__ = ["Settings", "TelemetrySettings"]


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    #: ``none`` | ``console`` | ``otlp``
    traces_exporter: str = "none"
    #: ``none`` | ``console`` | ``otlp`` | ``prometheus`` (served at ``GET /metrics``)
    metrics_exporter: str = "none"
    otlp_endpoint: str = "http://127.0.0.1:4318"
    #: Parent-based ratio sampling of traces (0..1).
    sample_ratio: float = 1.0
    service_name: str = "gateway"


@dataclass(frozen=True, slots=True)
class Settings:
    #: Directory holding catalog.toml, systems.toml, backends.toml, model.conf, policy.csv.
    policy_dir: Path = Path("policies")
    #: Writable directory for the embedded demo database, audit log, replay cache.
    state_dir: Path = Path("state")
    #: Directory with the gateway's signing key(s) and the pseudonym secret.
    key_dir: Path = Path("keys/demo")
    #: Public URL of the gateway: the ``iss`` of access tokens and the ``aud`` of assertions.
    issuer: str = "http://127.0.0.1:8000"
    access_token_ttl_s: int = 600
    #: Longest lifetime accepted for a client assertion (RFC 7523 §3: short-lived).
    assertion_max_ttl_s: int = 300
    clock_skew_s: int = 30
    #: Largest request body accepted, bytes.
    max_body_bytes: int = 64 * 1024
    max_sql_chars: int = 20_000
    #: Upper bound for every query whatever the policy says. (The row limit of a table no
    #: ``p3`` line limits is policy: ``default_max_rows`` in catalog.toml.)
    max_rows_ceiling: int = 10_000
    statement_timeout_s: float = 5.0
    plan_cache_size: int = 2_048
    #: ``sqlite:<path>`` or a ``postgresql://`` DSN. Empty: ``state_dir/audit.sqlite``.
    audit_dsn: str = ""
    #: Group commit: most records per audit batch (one transaction, one signature).
    audit_batch_max: int = 256
    #: Group commit: how long a batch may wait for more records, milliseconds. 0 commits
    #: whatever is queued as soon as the writer is free (batches still form under load).
    audit_batch_wait_ms: float = 0.0
    #: Keep audit records at least this many days (PIPL practice: 3 years or more).
    #: ``gateway audit prune`` refuses anything younger.
    audit_retention_days: int = 1096
    #: Witnesses this gateway pushes its checkpoints to: ``<base URL> <witness vkey>``
    #: entries separated by ``;`` (gateway/audit/witnessing.py).
    audit_witnesses: str = ""
    #: How often checkpoints are pushed to the witnesses (and the head pinned), seconds.
    audit_witness_interval_s: float = 5.0
    #: Cosignatures every batch needs before its responses leave; 0: eventual cosigning.
    audit_witness_quorum: int = 0
    #: Longest wait for one witness's answer, seconds.
    audit_witness_timeout_s: float = 5.0
    #: ``sqlite:<path>`` or a ``postgresql://`` DSN for the assertion replay cache.
    replay_dsn: str = ""
    #: ``sqlite:<path>`` or a ``postgresql://`` DSN for the administration store (accounts,
    #: applications, grants, quotas). Empty: ``state_dir/admin.sqlite``.
    admin_dsn: str = ""
    #: Lifetime of a person's API bearer session, seconds.
    person_token_ttl_s: int = 900
    #: Lifetime of a console (cookie) session, seconds.
    console_session_ttl_s: int = 8 * 3600
    #: Consecutive failed logins before an account is locked.
    login_max_failures: int = 5
    #: First lock-out after too many failed logins, seconds (doubles after each further failure).
    login_lockout_s: int = 900
    #: OpenID Connect identity provider of the deployment (optional): issuer, the audience
    #: its ID tokens name, and a JWKS file with its public keys (offline deployments).
    oidc_issuer: str = ""
    oidc_audience: str = ""
    oidc_jwks_file: str = ""
    #: Working days a provider has to answer an application (a dataset's ``reply_days``
    #: in the catalog overrides it; 山东: 10, 山西: 5).
    reply_days: int = 10
    #: Holiday arrangements for years the bundled calendar lacks (TOML, see
    #: gateway/admin/holidays.toml).
    holidays_file: str = ""
    #: Remind the holders this many working days before a grant ends.
    reminder_days: int = 5
    #: How often each process escalates overdue applications and ends expired grants.
    sweep_interval_s: float = 60.0
    #: Deliver every notification to this URL as well (JSON POST), if set.
    webhook_url: str = ""
    #: Departments whose policy changes need a second officer's approval before they are
    #: activated (four eyes); ``*``: every department and configuration changes.
    two_person_departments: frozenset[str] = frozenset()
    #: How often each process looks for a newly activated policy version, seconds.
    policy_poll_s: float = 0.25
    #: Overrides of ``backends.toml``: name → DSN (``GATEWAY_BACKEND_<NAME>_DSN``).
    backend_dsns: Mapping[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    #: On SIGTERM, how long in-flight requests may still run before the server stops
    #: waiting for them (the audit committer is flushed either way), seconds.
    shutdown_timeout_s: float = 30.0
    #: When set, ``GET /metrics`` requires ``Authorization: Bearer <token>``.
    metrics_token: str = field(default="", repr=False)
    log_level: str = "INFO"
    #: One JSON ``gateway.access`` log line per HTTP request (gateway/logs.py).
    access_log: bool = False
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    #: The environment the settings were built from, for ``${VAR}`` references in the
    #: policy files (backends.toml). Captured once here so that nothing below the entry
    #: points reads ``os.environ``; out of ``repr`` because it holds secrets.
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def audit_location(self) -> str:
        return self.audit_dsn or f"sqlite:{self.state_dir / 'audit.sqlite'}"

    @property
    def admin_location(self) -> str:
        return self.admin_dsn or f"sqlite:{self.state_dir / 'admin.sqlite'}"

    @property
    def replay_location(self) -> str:
        return self.replay_dsn or f"sqlite:{self.state_dir / 'replay.sqlite'}"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``GATEWAY_*`` variables; unknown values raise
        ConfigurationError naming the variable."""
        env = os.environ if env is None else env
        d = cls()
        t = d.telemetry

        def s(name: str, default: str) -> str:
            return env.get(f"GATEWAY_{name}", default)

        def i(name: str, default: int) -> int:
            return _parsed(env, name, default, int, "an integer")

        def f(name: str, default: float) -> float:
            return _parsed(env, name, default, float, "a number")

        def b(name: str, default: bool) -> bool:
            raw = env.get(f"GATEWAY_{name}")
            if raw is None:
                return default
            value = raw.strip().lower()
            if value in {"1", "true", "yes", "on"}:
                return True
            if value in {"0", "false", "no", "off", ""}:
                return False
            raise ConfigurationError(
                f"GATEWAY_{name} must be true or false (1/0, yes/no, on/off), got {raw!r}"
            )

        backend_dsns = {
            key[len("GATEWAY_BACKEND_") : -len("_DSN")].lower(): value
            for key, value in env.items()
            if key.startswith("GATEWAY_BACKEND_") and key.endswith("_DSN")
        }
        telemetry = TelemetrySettings(
            traces_exporter=s("TRACES_EXPORTER", t.traces_exporter),
            metrics_exporter=s("METRICS_EXPORTER", t.metrics_exporter),
            otlp_endpoint=s("OTLP_ENDPOINT", t.otlp_endpoint),
            sample_ratio=f("TRACE_SAMPLE_RATIO", t.sample_ratio),
            service_name=s("SERVICE_NAME", t.service_name),
        )
        if "GATEWAY_DEFAULT_MAX_ROWS" in env:
            # Ignoring it would silently *raise* the limits of a deployment that lowered
            # them with it: refuse to start and say where the setting lives now.
            raise ConfigurationError(
                "GATEWAY_DEFAULT_MAX_ROWS is no longer read: the default row limit is policy, "
                "set default_max_rows in catalog.toml"
            )
        if telemetry.traces_exporter not in {"none", "console", "otlp"}:
            raise ConfigurationError("GATEWAY_TRACES_EXPORTER must be none, console or otlp")
        if telemetry.metrics_exporter not in {"none", "console", "otlp", "prometheus"}:
            raise ConfigurationError(
                "GATEWAY_METRICS_EXPORTER must be none, console, otlp or prometheus"
            )
        policy_dir = Path(s("POLICY_DIR", str(d.policy_dir)))
        # A deployment's own policy directory (GATEWAY_POLICY_DIR) never falls back to the
        # demo's keys: its keys and state live next to it unless said otherwise (the
        # layout `gateway init` writes).
        own = "GATEWAY_POLICY_DIR" in env
        settings = cls(
            policy_dir=policy_dir,
            state_dir=Path(s("STATE_DIR", str(policy_dir / "state" if own else d.state_dir))),
            key_dir=Path(s("KEY_DIR", str(policy_dir / "keys" if own else d.key_dir))),
            issuer=s("ISSUER", d.issuer),
            access_token_ttl_s=i("ACCESS_TOKEN_TTL", d.access_token_ttl_s),
            assertion_max_ttl_s=i("ASSERTION_MAX_TTL", d.assertion_max_ttl_s),
            clock_skew_s=i("CLOCK_SKEW", d.clock_skew_s),
            max_body_bytes=i("MAX_BODY_BYTES", d.max_body_bytes),
            max_sql_chars=i("MAX_SQL_CHARS", d.max_sql_chars),
            max_rows_ceiling=i("MAX_ROWS_CEILING", d.max_rows_ceiling),
            statement_timeout_s=f("STATEMENT_TIMEOUT", d.statement_timeout_s),
            plan_cache_size=i("PLAN_CACHE_SIZE", d.plan_cache_size),
            audit_dsn=s("AUDIT_DSN", d.audit_dsn),
            audit_batch_max=i("AUDIT_BATCH_MAX", d.audit_batch_max),
            audit_batch_wait_ms=f("AUDIT_BATCH_WAIT_MS", d.audit_batch_wait_ms),
            audit_retention_days=i("AUDIT_RETENTION_DAYS", d.audit_retention_days),
            audit_witnesses=s("AUDIT_WITNESSES", d.audit_witnesses),
            audit_witness_interval_s=f("AUDIT_WITNESS_INTERVAL", d.audit_witness_interval_s),
            audit_witness_quorum=i("AUDIT_WITNESS_QUORUM", d.audit_witness_quorum),
            audit_witness_timeout_s=f("AUDIT_WITNESS_TIMEOUT", d.audit_witness_timeout_s),
            replay_dsn=s("REPLAY_DSN", d.replay_dsn),
            admin_dsn=s("ADMIN_DSN", d.admin_dsn),
            person_token_ttl_s=i("PERSON_TOKEN_TTL", d.person_token_ttl_s),
            console_session_ttl_s=i("CONSOLE_SESSION_TTL", d.console_session_ttl_s),
            login_max_failures=i("LOGIN_MAX_FAILURES", d.login_max_failures),
            login_lockout_s=i("LOGIN_LOCKOUT", d.login_lockout_s),
            oidc_issuer=s("OIDC_ISSUER", d.oidc_issuer),
            oidc_audience=s("OIDC_AUDIENCE", d.oidc_audience),
            oidc_jwks_file=s("OIDC_JWKS_FILE", d.oidc_jwks_file),
            reply_days=i("REPLY_DAYS", d.reply_days),
            holidays_file=s("HOLIDAYS_FILE", d.holidays_file),
            reminder_days=i("REMINDER_DAYS", d.reminder_days),
            sweep_interval_s=f("SWEEP_INTERVAL", d.sweep_interval_s),
            webhook_url=s("WEBHOOK_URL", d.webhook_url),
            two_person_departments=frozenset(
                d.strip() for d in s("TWO_PERSON_DEPARTMENTS", "").split(",") if d.strip()
            ),
            policy_poll_s=f("POLICY_POLL", d.policy_poll_s),
            backend_dsns=backend_dsns,
            host=s("HOST", d.host),
            port=i("PORT", d.port),
            workers=i("WORKERS", d.workers),
            shutdown_timeout_s=f("SHUTDOWN_TIMEOUT", d.shutdown_timeout_s),
            metrics_token=s("METRICS_TOKEN", d.metrics_token),
            log_level=s("LOG_LEVEL", d.log_level),
            access_log=b("ACCESS_LOG", d.access_log),
            telemetry=telemetry,
            environment=dict(env),
        )
        if not 1 <= settings.audit_batch_max <= 10_000:
            raise ConfigurationError("GATEWAY_AUDIT_BATCH_MAX must be between 1 and 10000")
        if not 0 <= settings.audit_batch_wait_ms <= 1_000:
            raise ConfigurationError("GATEWAY_AUDIT_BATCH_WAIT_MS must be between 0 and 1000")
        if not 1 <= settings.reply_days <= 60:
            raise ConfigurationError("GATEWAY_REPLY_DAYS must be between 1 and 60 working days")
        if not 0 < settings.shutdown_timeout_s <= 3600:
            raise ConfigurationError("GATEWAY_SHUTDOWN_TIMEOUT must be between 0 and 3600 seconds")
        if not 0.1 <= settings.audit_witness_interval_s <= 3600:
            raise ConfigurationError("GATEWAY_AUDIT_WITNESS_INTERVAL must be 0.1..3600 seconds")
        if settings.audit_witness_quorum < 0:
            raise ConfigurationError("GATEWAY_AUDIT_WITNESS_QUORUM must not be negative")
        if not 0 < settings.audit_witness_timeout_s <= 120:
            raise ConfigurationError("GATEWAY_AUDIT_WITNESS_TIMEOUT must be 0..120 seconds")
        if settings.audit_retention_days < 1:
            raise ConfigurationError("GATEWAY_AUDIT_RETENTION_DAYS must be a positive number")
        return settings


def _parsed(
    env: Mapping[str, str], name: str, default: N, parse: Callable[[str], N], what: str
) -> N:
    """``GATEWAY_<name>`` parsed, or ``default`` when unset. Raises ConfigurationError."""
    raw = env.get(f"GATEWAY_{name}")
    if raw is None:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ConfigurationError(f"GATEWAY_{name} must be {what}, got {raw!r}") from None
