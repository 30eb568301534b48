"""Section 2b: a random mix of analysts' queries, gateway vs the direct query.

About 510 legitimate queries, generated from templates with random literals (seeded, so
every run sends the same texts), as three demo systems with different policies:

``rsj-subsidy``
    people (names, phones, addresses masked; ID numbers pseudonymised) and grants, both
    filtered to its district; enterprises (legal representative masked, ID pseudonymised).
    Filters on masked and unmasked columns, pseudonym joins, subqueries, CTEs, windows.
``tjj-stats``
    statistics over the whole city: aggregates over masked (year, bucket, city) and
    unmasked columns, windows, CTEs.
``swj-tax``
    enterprises: lookups, ranges, windows, a pseudonym self-join.

Each query runs twice, in alternating order: through ``QueryService.run`` (decide, plan,
execute, respond, durable audit; every literal is new, so a cache keyed on the SQL text
misses) and **directly** on the same connection kind with the same driver: the physical
tables, the system's row filter written out, no masks. ``added = gateway − direct`` per
query; the table gives its p50 and p99 over the mix and the ratio of the medians.
A predicate on a masked column compares the mask's output through the gateway and the raw
value directly, so those two may return different rows: the direct query is the cost
floor, not an oracle (the e2e tests are the oracle).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from benchmarks.common import (
    Budget,
    Direct,
    Target,
    build_gateway,
    demo_signer,
    fmt,
    issue_token,
    open_direct,
    percentile,
    print_table,
    run_query,
    served,
)
from gateway.audit import open_audit_store
from gateway.demo.generate import DISTRICTS
from gateway.errors import GatewayError

#: Per-system queries of a full run (3 systems: 510); --quick sends a tenth.
PER_SYSTEM = 170
SEED = 20261205
#: Targets of issue 14.
TARGET_ADDED_P50_MS = 2.0
TARGET_RATIO_P50 = 2.0

_PROGRAMS = ("最低生活保障", "特困人员救助供养", "临时救助", "高龄津贴")
_STATUSES = ("存续", "在业", "吊销", "注销")
_SURNAMES = "王李张刘陈杨赵黄周吴"


@dataclass(frozen=True, slots=True)
class System:
    name: str
    purpose: str
    #: Catalog table -> (physical table, row filter of this system or "").
    tables: dict[str, tuple[str, str]]
    templates: tuple[Callable[[random.Random], str], ...]


def _district(rng: random.Random) -> str:
    return rng.choice(DISTRICTS).name


def _date(rng: random.Random, first: int = 1940, last: int = 2005) -> str:
    return f"{rng.randint(first, last)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


_RSJ: tuple[Callable[[random.Random], str], ...] = (
    # unmasked filters: point, range, conjunction
    lambda r: (
        f"SELECT person_id, name, phone FROM {{people}} WHERE person_id = {r.randint(1, 12000)}"
    ),
    lambda r: (
        "SELECT person_id, name, birth_date FROM {people} "
        f"WHERE birth_date >= '{_date(r)}' AND gender = '{r.choice('男女')}' "
        "ORDER BY person_id LIMIT 20"
    ),
    lambda r: (
        "SELECT grant_id, program, amount FROM {grants} "
        f"WHERE amount > {r.randint(100, 2000)} ORDER BY grant_id LIMIT 20"
    ),
    # masked filters (compared through the mask)
    lambda r: (
        f"SELECT person_id, name FROM {{people}} WHERE name LIKE '{r.choice(_SURNAMES)}%' "
        "ORDER BY person_id LIMIT 20"
    ),
    lambda r: (
        "SELECT person_id, phone FROM {people} "
        f"WHERE phone LIKE '13{r.randint(0, 9)}%' ORDER BY person_id LIMIT 20"
    ),
    # OR across masked and unmasked
    lambda r: (
        "SELECT person_id, name FROM {people} "
        f"WHERE person_id < {r.randint(50, 3000)} OR name LIKE '{r.choice(_SURNAMES)}%' "
        "ORDER BY person_id LIMIT 20"
    ),
    # pseudonym joins
    lambda r: (
        "SELECT p.person_id, g.program, g.amount FROM {people} p "
        "JOIN {grants} g ON g.recipient_id_number = p.id_number "
        f"WHERE p.person_id BETWEEN {(a := r.randint(1, 11000))} AND {a + 500} "
        "ORDER BY g.grant_id LIMIT 50"
    ),
    lambda r: (
        "SELECT p.name, p.district, g.program, g.amount, e.name AS enterprise "
        "FROM {people} p JOIN {grants} g ON g.recipient_id_number = p.id_number "
        "JOIN {enterprises} e ON e.legal_rep_id_number = p.id_number "
        f"WHERE g.amount > {r.randint(100, 1500)} ORDER BY g.grant_id, e.enterprise_id LIMIT 50"
    ),
    # aggregates
    lambda r: (
        "SELECT program, count(*) AS n, sum(amount) AS total FROM {grants} "
        f"WHERE granted_date >= '{_date(r, 2020, 2025)}' GROUP BY program ORDER BY program"
    ),
    lambda r: (
        "SELECT gender, count(*) AS n FROM {people} "
        f"WHERE birth_date < '{_date(r)}' GROUP BY gender ORDER BY gender"
    ),
    # windows
    lambda r: (
        "SELECT grant_id, program, amount, "
        "rank() OVER (PARTITION BY program ORDER BY amount DESC) AS rk FROM {grants} "
        f"WHERE amount > {r.randint(100, 2000)} ORDER BY grant_id LIMIT 50"
    ),
    # subqueries
    lambda r: (
        "SELECT person_id, name FROM {people} WHERE id_number IN "
        f"(SELECT recipient_id_number FROM {{grants}} WHERE amount > {r.randint(500, 3000)}) "
        "ORDER BY person_id LIMIT 50"
    ),
    lambda r: (
        "SELECT person_id FROM {people} p WHERE EXISTS (SELECT 1 FROM {grants} g "
        f"WHERE g.recipient_id_number = p.id_number AND g.program = '{r.choice(_PROGRAMS)}') "
        "ORDER BY person_id LIMIT 50"
    ),
    # CTEs
    lambda r: (
        "WITH big AS (SELECT recipient_id_number, sum(amount) AS total FROM {grants} "
        "GROUP BY recipient_id_number) SELECT p.person_id, b.total FROM {people} p "
        f"JOIN big b ON b.recipient_id_number = p.id_number WHERE b.total > {r.randint(500, 5000)} "
        "ORDER BY b.total DESC, p.person_id LIMIT 20"
    ),
)

_TJJ: tuple[Callable[[random.Random], str], ...] = (
    lambda r: (
        "SELECT gender, count(*) AS n FROM {people} "
        f"WHERE district = '{_district(r)}' GROUP BY gender ORDER BY gender"
    ),
    lambda r: (
        "SELECT district, count(*) AS n FROM {people} "
        f"WHERE CAST(birth_date AS TEXT) LIKE '{r.randint(194, 200)}%' "
        "GROUP BY district ORDER BY district"
    ),
    lambda r: (
        "SELECT program, count(*) AS n, count(DISTINCT district) AS cities FROM {grants} "
        f"WHERE granted_date >= '{_date(r, 2020, 2025)}' GROUP BY program ORDER BY program"
    ),
    lambda r: (
        "SELECT amount, count(*) AS n FROM {grants} "
        f"WHERE CAST(amount AS TEXT) LIKE '{r.randint(1, 9)}%' GROUP BY amount ORDER BY amount"
    ),
    lambda r: (
        "SELECT status, count(*) AS n, max(registered_capital) AS top FROM {enterprises} "
        f"WHERE registered_capital > {r.randint(10, 5000) * 10000} GROUP BY status ORDER BY status"
    ),
    lambda r: (
        "SELECT district, n, rank() OVER (ORDER BY n DESC) AS rk FROM "
        "(SELECT district, count(*) AS n FROM {enterprises} "
        f"WHERE established_date >= '{_date(r, 1990, 2024)}' GROUP BY district) t ORDER BY district"
    ),
    lambda r: (
        "WITH y AS (SELECT birth_date AS yr, count(*) AS n FROM {people} "
        f"WHERE gender = '{r.choice('男女')}' GROUP BY birth_date) "
        "SELECT yr, n FROM y ORDER BY n DESC, yr LIMIT 10"
    ),
    lambda r: (
        f"SELECT enterprise_id, name FROM {{enterprises}} WHERE legal_rep LIKE "
        f"'{r.choice(_SURNAMES)}%' ORDER BY enterprise_id LIMIT 20"
    ),
)

_SWJ: tuple[Callable[[random.Random], str], ...] = (
    lambda r: (
        "SELECT enterprise_id, name, legal_rep, status FROM {enterprises} "
        f"WHERE enterprise_id = {r.randint(1, 3000)}"
    ),
    lambda r: (
        "SELECT enterprise_id, name, registered_capital FROM {enterprises} "
        f"WHERE district = '{_district(r)}' AND status = '{r.choice(_STATUSES)}' "
        "ORDER BY enterprise_id LIMIT 20"
    ),
    lambda r: (
        "SELECT enterprise_id, name FROM {enterprises} "
        f"WHERE established_date BETWEEN '{_date(r, 1990, 2010)}' AND '{_date(r, 2011, 2024)}' "
        "ORDER BY enterprise_id LIMIT 50"
    ),
    lambda r: (
        "SELECT district, count(*) AS n, sum(registered_capital) AS capital "
        f"FROM {{enterprises}} WHERE status = '{r.choice(_STATUSES)}' GROUP BY district "
        "ORDER BY district"
    ),
    lambda r: (
        "SELECT enterprise_id, registered_capital, row_number() OVER "
        "(PARTITION BY district ORDER BY registered_capital DESC) AS rn FROM {enterprises} "
        f"WHERE registered_capital > {r.randint(100, 5000) * 10000} ORDER BY enterprise_id LIMIT 50"
    ),
    lambda r: (
        "SELECT a.enterprise_id, b.enterprise_id AS other FROM {enterprises} a "
        "JOIN {enterprises} b ON b.legal_rep_id_number = a.legal_rep_id_number "
        f"AND b.enterprise_id <> a.enterprise_id WHERE a.enterprise_id < {r.randint(50, 2000)} "
        "ORDER BY a.enterprise_id, b.enterprise_id LIMIT 20"
    ),
    lambda r: (
        "SELECT enterprise_id, name FROM {enterprises} WHERE legal_rep_id_number IN "
        "(SELECT legal_rep_id_number FROM {enterprises} "
        f"WHERE enterprise_id = {r.randint(1, 3000)}) ORDER BY enterprise_id"
    ),
)

_PEOPLE = "population_people"
_GRANTS = "civil_subsidies"
_ENTERPRISES = "market_enterprises"


def systems() -> tuple[System, ...]:
    """The three systems; row filters as policies/policy.csv binds them."""
    return (
        System(
            "rsj-subsidy",
            "employment_subsidy_review",
            {
                "people": (_PEOPLE, "district = '历下区'"),
                "grants": (_GRANTS, "district = '历下区'"),
                "enterprises": (_ENTERPRISES, ""),
            },
            _RSJ,
        ),
        System(
            "tjj-stats",
            "statistics",
            {"people": (_PEOPLE, ""), "grants": (_GRANTS, ""), "enterprises": (_ENTERPRISES, "")},
            _TJJ,
        ),
        System("swj-tax", "tax_administration", {"enterprises": (_ENTERPRISES, "")}, _SWJ),
    )


_CATALOG = {
    "people": "population.people",
    "grants": "subsidies.grants",
    "enterprises": "legal_person.enterprises",
}


@dataclass(frozen=True, slots=True)
class MixQuery:
    system: str
    template: int
    consumer: str
    direct: str


def direct_sql(consumer: str, physical: dict[str, tuple[str, str]]) -> str:
    """``consumer`` on the physical tables: each catalog table becomes its source, or
    ``(SELECT * FROM source WHERE row filter) AS alias`` when the system has one (both
    engines merge such a subquery into the outer query)."""
    tree = sqlglot.parse_one(consumer, read="postgres")
    for table in list(tree.find_all(exp.Table)):
        name = f"{table.db}.{table.name}"
        if name not in physical:
            continue
        source, where = physical[name]
        alias = table.alias_or_name
        if where:
            inner = sqlglot.parse_one(f"SELECT * FROM {source} WHERE {where}", read="postgres")
            table.replace(
                exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(alias)))
            )
        else:
            table.replace(exp.to_table(source).as_(alias))
    return tree.sql(dialect="postgres")


def generate(per_system: int, seed: int = SEED) -> list[MixQuery]:
    """``per_system`` queries of each system, templates in turn, literals random."""
    rng = random.Random(seed)
    out: list[MixQuery] = []
    for system in systems():
        physical = {_CATALOG[key]: table for key, table in system.tables.items()}
        for i in range(per_system):
            index = i % len(system.templates)
            text = system.templates[index](rng)
            out.append(
                MixQuery(
                    system.name,
                    index,
                    text.format(**_CATALOG),
                    direct_sql(text.format(**_CATALOG), physical),
                )
            )
    rng.shuffle(out)
    return out


def run(
    targets: list[Target], budget: Budget, workdir: Path, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    per_system = PER_SYSTEM if budget.rounds > 1 else PER_SYSTEM // 10
    queries = generate(per_system)
    purposes = {s.name: s.purpose for s in systems()}
    audit = open_audit_store(f"sqlite:{workdir / 'mix-audit.sqlite'}", demo_signer())
    results: list[dict[str, Any]] = []
    try:
        for target in targets:
            if target.label == "postgres-nostats":
                continue  # the mix is about plans with statistics, as in production
            results.append(_run_target(target, queries, purposes, workdir, audit, log))
    finally:
        audit.close()
    _print(results)
    return results


def _run_target(
    target: Target,
    queries: list[MixQuery],
    purposes: dict[str, str],
    workdir: Path,
    audit: Any,
    log: Callable[[str], None],
) -> dict[str, Any]:
    services = build_gateway(target, workdir / "mix-state", audit=audit)
    direct = open_direct(target)
    try:
        bearers = {name: f"Bearer {issue_token(services, name)}" for name in purposes}
        # One untimed query per system: token, snapshot and schema caches warm, as in
        # a running gateway; every plan of the mix is still new.
        for name in purposes:
            first = next(q for q in queries if q.system == name)
            run_query(services, bearers[name], first.consumer, "mix-warm", purposes[name])
        added: list[float] = []
        gateway_s: list[float] = []
        direct_s: list[float] = []
        refused: dict[str, str] = {}
        by_template: dict[str, list[float]] = {}
        for i, q in enumerate(queries):
            timings: dict[str, float] = {}

            def via_gateway(q: MixQuery = q) -> None:
                served(
                    run_query(services, bearers[q.system], q.consumer, "mix", purposes[q.system])
                )

            def via_direct(q: MixQuery = q, d: Direct = direct) -> None:
                d.query(q.direct)

            calls = [("gateway", via_gateway), ("direct", via_direct)]
            if i % 2:
                calls.reverse()
            try:
                for name, call in calls:
                    started = time.perf_counter()
                    call()
                    timings[name] = time.perf_counter() - started
            except GatewayError as exc:
                refused[q.consumer] = f"{type(exc).__name__}: {exc.detail}"
                continue
            gateway_s.append(timings["gateway"])
            direct_s.append(timings["direct"])
            added.append(timings["gateway"] - timings["direct"])
            by_template.setdefault(f"{q.system}#{q.template}", []).append(
                timings["gateway"] - timings["direct"]
            )
        log(f"mix: {target.label}: {len(added)} queries, {len(refused)} refused")
    finally:
        direct.close()
        for backend in services.backends.values():
            backend.close()
    worst = sorted(((percentile(v, 50) * 1000, k) for k, v in by_template.items()), reverse=True)[
        :3
    ]
    return {
        "backend": target.label,
        "n": len(added),
        "refused": refused,
        "direct_p50_ms": percentile(direct_s, 50) * 1000,
        "gateway_p50_ms": percentile(gateway_s, 50) * 1000,
        "added_p50_ms": percentile(added, 50) * 1000,
        "added_p99_ms": percentile(added, 99) * 1000,
        "added_mean_ms": sum(added) / len(added) * 1000 if added else float("nan"),
        "ratio_p50": percentile(gateway_s, 50) / percentile(direct_s, 50),
        "worst_templates_p50_ms": [[k, round(ms, 2)] for ms, k in worst],
    }


def _print(results: list[dict[str, Any]]) -> None:
    headers = [
        "backend",
        "n",
        "refused",
        "direct p50",
        "gateway p50",
        "added p50",
        "added p99",
        "added mean",
        "× p50",
        "slowest templates (added p50)",
    ]
    rows = [
        [
            r["backend"],
            str(r["n"]),
            str(len(r["refused"])),
            fmt(r["direct_p50_ms"], 2),
            fmt(r["gateway_p50_ms"], 2),
            fmt(r["added_p50_ms"], 2),
            fmt(r["added_p99_ms"], 1),
            fmt(r["added_mean_ms"], 2),
            fmt(r["ratio_p50"], 1),
            ", ".join(f"{k} {ms}" for k, ms in r["worst_templates_p50_ms"]),
        ]
        for r in results
    ]
    refusals = "".join(
        f"\n   refused on {r['backend']}: {sql[:90]}… — {why}"
        for r in results
        for sql, why in list(r["refused"].items())[:5]
    )
    print_table(
        "2b. Random mix: generated queries as rsj-subsidy, tjj-stats, swj-tax, "
        "gateway vs direct (ms)",
        headers,
        rows,
        note=(
            "   added = gateway − direct per query (new literal each: cold for a text-keyed "
            f"cache); target added p50 ≤ {TARGET_ADDED_P50_MS:g} ms and "
            f"× p50 ≤ {TARGET_RATIO_P50:g}" + refusals
        ),
    )
