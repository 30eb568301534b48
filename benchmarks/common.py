"""What the benchmark sections share: the demo world on each backend, the two queries,
gateway wiring, direct driver connections, timing budgets, statistics and tables."""

from __future__ import annotations

import itertools
import math
import sqlite3
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import psycopg
from psycopg import sql

from gateway.audit.signing import CheckpointSigner, load_log_signer
from gateway.audit.store.protocol import AuditStore
from gateway.auth.keys import jwk_thumbprint, load_private_key
from gateway.auth.replay import MemoryReplayCache
from gateway.auth.tokens import make_client_assertion
from gateway.demo.generate import DEMO_TABLES
from gateway.demo.load import ensure_demo_database, load_demo
from gateway.demo.sharing import seed_sharing
from gateway.domain import Principal
from gateway.errors import GatewayError
from gateway.query.rewrite.masks import sqlite_functions
from gateway.query.state import QueryOutcome, QueryRequest
from gateway.settings import Settings
from gateway.telemetry import Telemetry
from gateway.wiring import Services, build_services

ROOT = Path(__file__).resolve().parents[1]
POLICY_DIR = ROOT / "policies"
KEY_DIR = ROOT / "keys" / "demo"
RESULTS_DIR = ROOT / "benchmarks" / "results"

#: The consumer every query runs as: 人社局's subsidy review system, whose policy masks
#: names, phones and addresses, pseudonymises ID numbers and filters people and grants
#: to its district (policies/policy.csv).
SYSTEM = "rsj-subsidy"
PURPOSE = "employment_subsidy_review"
ISSUER = "http://127.0.0.1:8000"
PG_SCHEMA = "gw_bench"
DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# ------------------------------------------------------------------------------ queries


@dataclass(frozen=True, slots=True)
class BenchQuery:
    """A consumer query and its plain equivalent.

    ``consumer`` is what a consumer sends (catalog names, PostgreSQL dialect); ``plain``
    is the same question asked directly of the physical tables, with the policy's row
    filters spelled out (so both return the same rows) but no masks. ``{n}`` is a literal
    that does not change the result: ``warm`` runs keep it at 0, ``cold`` runs give every
    query a fresh negative value, so that each SQL text is new to every cache.
    """

    name: str
    title: str
    consumer: str
    plain: str

    def consumer_sql(self, n: int) -> str:
        return self.consumer.format(n=n)

    def plain_sql(self, n: int, district: str) -> str:
        return self.plain.format(n=n, district=district.replace("'", "''"))


SIMPLE = BenchQuery(
    name="simple",
    title="simple select",
    consumer=(
        "SELECT name, id_number, phone, district FROM population.people"
        " WHERE person_id <> {n} ORDER BY person_id LIMIT 20"
    ),
    plain=(
        "SELECT name, id_number, phone, district FROM population_people"
        " WHERE district = '{district}' AND person_id <> {n} ORDER BY person_id LIMIT 20"
    ),
)

JOIN3 = BenchQuery(
    name="join3",
    title="3-table join",
    consumer=(
        "SELECT p.name, p.district, g.program, g.amount, e.name AS enterprise"
        " FROM population.people p"
        " JOIN subsidies.grants g ON g.recipient_id_number = p.id_number"
        " JOIN legal_person.enterprises e ON e.legal_rep_id_number = p.id_number"
        " WHERE g.amount > {n} ORDER BY g.grant_id, e.enterprise_id LIMIT 50"
    ),
    plain=(
        "SELECT p.name, p.district, g.program, g.amount, e.name AS enterprise"
        " FROM population_people p"
        " JOIN civil_subsidies g ON g.recipient_id_number = p.id_number"
        " JOIN market_enterprises e ON e.legal_rep_id_number = p.id_number"
        " WHERE p.district = '{district}' AND g.district = '{district}' AND g.amount > {n}"
        " ORDER BY g.grant_id, e.enterprise_id LIMIT 50"
    ),
)

QUERIES: tuple[BenchQuery, ...] = (SIMPLE, JOIN3)
MODES: tuple[str, ...] = ("cold", "warm")


class Literals:
    """Fresh negative literals for cold runs (never repeated within a process)."""

    def __init__(self) -> None:
        self._count = itertools.count(1)

    def next(self) -> int:
        return -next(self._count)


def literal_for(mode: str, literals: Literals) -> int:
    return 0 if mode == "warm" else literals.next()


# ------------------------------------------------------------------------------ budgets


@dataclass(frozen=True, slots=True)
class Budget:
    """How long to measure. In-process sections run ``rounds`` interleaved rounds; in each
    round every configuration gets one batch of at least ``batch_min`` and at most
    ``batch_max`` iterations, stopping once ``batch_s`` seconds have passed."""

    rounds: int
    batch_s: float
    batch_min: int
    batch_max: int
    #: Untimed calls per configuration before the first round.
    warmup_calls: int
    #: Cold plans made in a row by one fresh planner (section 1b).
    drift_plans: int
    #: wrk: threads, connections, seconds per measured run, seconds of warm-up.
    wrk_threads: int
    wrk_connections: int
    wrk_seconds: int
    wrk_warmup_s: int
    http_rounds: int


FULL = Budget(
    rounds=5,
    batch_s=1.0,
    batch_min=3,
    batch_max=400,
    warmup_calls=2,
    drift_plans=2000,
    wrk_threads=2,
    wrk_connections=32,
    wrk_seconds=10,
    wrk_warmup_s=2,
    http_rounds=3,
)
QUICK = Budget(
    rounds=1,
    batch_s=0.1,
    batch_min=1,
    batch_max=40,
    warmup_calls=0,
    drift_plans=300,
    wrk_threads=2,
    wrk_connections=8,
    wrk_seconds=1,
    wrk_warmup_s=0,
    http_rounds=1,
)


def run_batch(budget: Budget, step: Callable[[], None]) -> int:
    """Call ``step`` per the batch rules of ``budget``; return how many times."""
    deadline = time.perf_counter() + budget.batch_s
    done = 0
    while done < budget.batch_max and (done < budget.batch_min or time.perf_counter() < deadline):
        step()
        done += 1
    return done


# ------------------------------------------------------------------------------ statistics


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``samples``; NaN when empty."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else math.nan


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """n, p50, p90, p99, min and max of durations in seconds, reported in µs."""
    return {
        "n": len(samples),
        "p50_us": median(samples) * 1e6,
        "p90_us": percentile(samples, 90) * 1e6,
        "p99_us": percentile(samples, 99) * 1e6,
        "min_us": (min(samples) if samples else math.nan) * 1e6,
        "max_us": (max(samples) if samples else math.nan) * 1e6,
    }


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def print_table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], note: str = ""
) -> None:
    """A plain text table: first column left-aligned, the others right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [
            cells[i].ljust(widths[i]) if i == 0 else cells[i].rjust(widths[i])
            for i in range(len(cells))
        ]
        return "  ".join(parts).rstrip()

    print(f"\n{title}")
    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
    if note:
        print(note)


# ------------------------------------------------------------------------------ backends


@dataclass(frozen=True, slots=True)
class Target:
    """One backend holding the demo world."""

    kind: str  # sqlite | postgres
    dsn: str
    #: Name in tables and results: sqlite, postgres, postgres-nostats.
    label: str
    description: str = ""


#: PostgreSQL targets: (label, schema, with planner statistics?). With statistics is what
#: production has (autovacuum analyses fresh tables within minutes); without is what
#: ``gateway demo-data`` leaves behind on a server whose autovacuum is off, like the
#: development server. The two can pick very different plans for the same gateway SQL.
PG_TARGETS: tuple[tuple[str, str, bool], ...] = (
    ("postgres", PG_SCHEMA, True),
    ("postgres-nostats", f"{PG_SCHEMA}_nostats", False),
)


def pg_bench_dsn(base: str, schema: str = PG_SCHEMA) -> str:
    """``base`` with ``search_path`` set to ``schema`` (the demo tables load there)."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


def postgres_reachable(dsn: str) -> str | None:
    """None if PostgreSQL answers at ``dsn``, else why not."""
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    return None


def _has_statistics(dsn: str, schema: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stats WHERE schemaname = %s", (schema,)
        ).fetchone()
    return bool(row and row[0])


def prepare_targets(tmp: Path, pg_base: str | None, log: Callable[[str], None]) -> list[Target]:
    """Load the demo world (once; later runs find it current) into a SQLite file under
    ``tmp`` and, unless ``pg_base`` is None, into the PostgreSQL schemas of PG_TARGETS."""
    targets = []
    sqlite_dsn = f"sqlite:{tmp / 'demo.sqlite'}"
    started = time.perf_counter()
    loaded = ensure_demo_database(sqlite_dsn)
    log(
        f"demo data: {sqlite_dsn} ({'loaded' if loaded else 'current'}, "
        f"{time.perf_counter() - started:.1f} s)"
    )
    targets.append(Target("sqlite", sqlite_dsn, "sqlite", "SQLite file"))
    if pg_base is None:
        return targets
    for label, schema, analyze in PG_TARGETS:
        dsn = pg_bench_dsn(pg_base, schema)
        started = time.perf_counter()
        loaded = ensure_demo_database(dsn)
        if analyze:
            with psycopg.connect(dsn, autocommit=True) as conn:
                for table in DEMO_TABLES:
                    conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table.name)))
            state = "ANALYZE run"
        else:
            if _has_statistics(dsn, schema):  # someone analysed it: start afresh
                load_demo(dsn)
                loaded = True
            state = "no planner statistics"
        log(
            f"demo data: PostgreSQL schema {schema} ({'loaded' if loaded else 'current'}, "
            f"{state}, {time.perf_counter() - started:.1f} s)"
        )
        targets.append(Target("postgres", dsn, label, f"PostgreSQL schema {schema}, {state}"))
    return targets


def statistics_appeared(target: Target) -> bool:
    """For a no-statistics target: did something (autovacuum) analyse it meanwhile?"""
    if target.kind != "postgres" or target.label != "postgres-nostats":
        return False
    schema = next(schema for label, schema, _ in PG_TARGETS if label == target.label)
    return _has_statistics(target.dsn, schema)


class Failures:
    """(target label, query name) pairs whose gateway call failed (e.g. hit the statement
    timeout): later configurations of the pair are skipped instead of failing again."""

    def __init__(self) -> None:
        self._reasons: dict[tuple[str, str], str] = {}

    def add(self, target: Target, query: BenchQuery, exc: GatewayError) -> str:
        reason = f"{type(exc).__name__}: {exc.detail}"
        self._reasons[(target.label, query.name)] = reason
        return reason

    def get(self, target: Target, query: BenchQuery) -> str | None:
        return self._reasons.get((target.label, query.name))

    def items(self) -> list[tuple[str, str, str]]:
        return [(label, query, reason) for (label, query), reason in self._reasons.items()]


def sqlite_path(dsn: str) -> Path:
    return Path(dsn.removeprefix("sqlite:"))


class Direct(Protocol):
    """A plain driver connection to a backend, for the "direct query" baselines."""

    def query(self, sql: str) -> list[tuple[Any, ...]]: ...

    def close(self) -> None: ...


class DirectSqlite:
    """sqlite3, read-only, with the gateway's SQL functions (the rewritten SQL calls
    them) but none of the backend's guards (authorizer, progress handler, pool)."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        for name, nargs, func in sqlite_functions():
            self._conn.create_function(name, nargs, func, deterministic=True)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql).fetchall()

    def close(self) -> None:
        self._conn.close()


class DirectPostgres:
    """psycopg 3, one autocommit connection, no server-side prepare (the gateway sends
    raw text too), no transaction wrapper or statement timeout."""

    def __init__(self, dsn: str) -> None:
        self._conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=None)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql).fetchall()

    def close(self) -> None:
        self._conn.close()


def open_direct(target: Target) -> Direct:
    if target.kind == "sqlite":
        return DirectSqlite(sqlite_path(target.dsn))
    return DirectPostgres(target.dsn)


def backend_version(target: Target) -> str:
    if target.kind == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    with psycopg.connect(target.dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0] if row else '?'}"


# ------------------------------------------------------------------------------ gateway


def gateway_settings(target: Target, state_dir: Path, issuer: str = ISSUER) -> Settings:
    return Settings(
        policy_dir=POLICY_DIR,
        key_dir=KEY_DIR,
        state_dir=state_dir,
        issuer=issuer,
        backend_dsns={"demo": target.dsn},
    )


def demo_signer() -> CheckpointSigner:
    """The demo audit log key (keys/demo/audit-log.demo.key)."""
    return load_log_signer(Path(__file__).resolve().parents[1] / "keys" / "demo")


def build_gateway(
    target: Target,
    state_dir: Path,
    *,
    audit: AuditStore,
    telemetry: Telemetry | None = None,
) -> Services:
    """The gateway's services as ``gateway serve`` builds them, except for the audit store
    (shared, passed in) and the replay cache (in memory: assertions are not measured).
    ``state_dir`` must be used with one audit store only: it pins that log's head."""
    services = build_services(
        gateway_settings(target, state_dir),
        audit=audit,
        telemetry=telemetry,
        replay=MemoryReplayCache(),
    )
    # The demo's approved applications (conditional datasets need one), as `gateway demo`
    # seeds them; a no-op when the state directory has them already.
    seed_sharing(services.admin, services.bundle.catalog, now=datetime.now(UTC))
    return services


def client_assertion(system: str, audience: str) -> str:
    key = load_private_key(KEY_DIR / f"{system}.demo.key.pem")
    alg = "EdDSA" if type(key).__name__.startswith("Ed25519") else "ES256"
    return make_client_assertion(system, key, alg, jwk_thumbprint(key), audience, datetime.now(UTC))


def issue_token(services: Services, system: str = SYSTEM) -> str:
    """An access token for ``system``, issued in-process exactly as POST /v1/token does."""
    issued = services.tokens.exchange(
        {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(system, services.tokens.token_endpoint),
        }
    )
    return str(issued.to_json()["access_token"])


def principal_of(services: Services, token: str) -> Principal:
    return services.tokens.authenticate(f"Bearer {token}")


def run_query(
    services: Services, bearer: str, sql: str, request_id: str, purpose: str = PURPOSE
) -> QueryOutcome:
    """One consumer query through ``QueryService.run`` as the HTTP route calls it: a
    fresh request context from the audit trail, the bearer token, the purpose."""
    context = services.trail.begin(request_id=request_id, client_ip="127.0.0.1")
    return services.query.run(QueryRequest(sql=sql, purpose=purpose), context, bearer)


def served(outcome: QueryOutcome) -> bytes:
    """The body of a served query; raises the refusal's error otherwise."""
    if outcome.error is not None:
        raise outcome.error
    if outcome.body is None:
        raise AssertionError("a served query without a body")
    return outcome.body


def district_of(services: Services, system: str = SYSTEM) -> str:
    registered = services.bundle.registry.get(system)
    assert registered is not None, f"{system} is not registered"
    return registered.attributes["district"]


def sqlglot_compiled() -> bool:
    import sqlglot.parser

    return str(sqlglot.parser.__file__).endswith(".so")
