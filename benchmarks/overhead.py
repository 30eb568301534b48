"""Section 2: what the gateway adds over querying the backend directly, in-process.

Three ways to get the same rows, interleaved call by call (the order rotates):

``plain``
    The plain equivalent SQL (physical tables, the policy's row filter written out, no
    masks) with the same driver on one open connection.
``rewritten``
    The SQL the gateway actually sends (masks, filters, limit; from a second planner so
    the measured gateway's plan cache stays cold in cold runs), same driver, same
    connection as ``plain``.
``gateway``
    ``QueryService.run``: decide, plan, execute through the backend (pool, read-only
    guards, time limit), respond, durable SQLite audit append. Telemetry as configured by
    default (exporters ``none``). No HTTP and no token check (see section 1 and 3).

``gateway − plain`` is the overhead the consumer sees; ``rewritten − plain`` is what the
protected SQL costs the database; ``gateway − rewritten`` is the gateway's own work.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import (
    MODES,
    PURPOSE,
    QUERIES,
    BenchQuery,
    Budget,
    Direct,
    Failures,
    Literals,
    Target,
    build_gateway,
    demo_signer,
    district_of,
    fmt,
    issue_token,
    literal_for,
    open_direct,
    principal_of,
    print_table,
    run_batch,
    run_query,
    served,
    summarize,
)
from gateway.audit import open_audit_store
from gateway.domain import Principal
from gateway.errors import GatewayError
from gateway.wiring import Services

VARIANTS = ("plain", "rewritten", "gateway")
#: Columns of each query's result that no mask touches, compared gateway vs plain.
_UNMASKED = {"simple": (3,), "join3": (1, 2, 3, 4)}
#: The target of the brief: warm overhead below 1 ms at p50.
TARGET_WARM_P50_MS = 1.0


@dataclass
class _Config:
    target: Target
    query: BenchQuery
    mode: str
    services: Services
    helper: Services
    direct: Direct
    principal: Principal
    bearer: str
    district: str
    samples: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in VARIANTS})

    @property
    def key(self) -> str:
        return f"{self.target.label}/{self.query.name}/{self.mode}"

    def rewritten_sql(self, consumer_sql: str) -> str:
        snapshot = self.helper.bundle.engine.snapshot(self.principal, PURPOSE, datetime.now(UTC))
        plan, _hit = self.helper.planner.plan(consumer_sql, self.principal, snapshot)
        return plan.sql


def _check_equivalent(cfg: _Config) -> None:
    """The plain SQL must return the rows the gateway returns (unmasked columns)."""
    consumer = cfg.query.consumer_sql(0)
    body = json.loads(served(run_query(cfg.services, cfg.bearer, consumer, "bench-check")))["rows"]
    plain = cfg.direct.query(cfg.query.plain_sql(0, cfg.district))
    rewritten = cfg.direct.query(cfg.rewritten_sql(consumer))
    cols = _UNMASKED[cfg.query.name]
    want = [[row[i] for i in cols] for row in body]
    for name, rows in (("plain", plain), ("rewritten", rewritten)):
        got = [[row[i] for i in cols] for row in rows]
        if got != want or not want:
            raise AssertionError(
                f"{cfg.key}: {name} SQL returns other rows than the gateway "
                f"({len(got)} vs {len(want)})"
            )


def _step(cfg: _Config, literals: Literals) -> Callable[[], None]:
    counter = [0]
    warm_rewritten = cfg.rewritten_sql(cfg.query.consumer_sql(0))

    def step() -> None:
        n = literal_for(cfg.mode, literals)
        consumer = cfg.query.consumer_sql(n)
        plain = cfg.query.plain_sql(n, cfg.district)
        rewritten = warm_rewritten if cfg.mode == "warm" else cfg.rewritten_sql(consumer)
        calls: list[tuple[str, Callable[[], object]]] = [
            ("plain", lambda: cfg.direct.query(plain)),
            ("rewritten", lambda: cfg.direct.query(rewritten)),
            ("gateway", lambda: served(run_query(cfg.services, cfg.bearer, consumer, "bench"))),
        ]
        shift = counter[0] % len(calls)
        counter[0] += 1
        for name, call in calls[shift:] + calls[:shift]:
            started = time.perf_counter()
            call()
            cfg.samples[name].append(time.perf_counter() - started)

    return step


def run(
    targets: list[Target],
    budget: Budget,
    workdir: Path,
    literals: Literals,
    failures: Failures,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    audit = open_audit_store(f"sqlite:{workdir / 'overhead-audit.sqlite'}", demo_signer())
    configs: list[_Config] = []
    opened: list[Services] = []
    directs: list[Direct] = []
    try:
        for target in targets:
            services = build_gateway(target, workdir / "overhead-state", audit=audit)
            helper = build_gateway(target, workdir / "overhead-state", audit=audit)
            opened += [services, helper]
            direct = open_direct(target)
            directs.append(direct)
            token = issue_token(services)
            principal = principal_of(services, token)
            bearer = f"Bearer {token}"
            district = district_of(services)
            for query in QUERIES:
                for mode in MODES:
                    configs.append(
                        _Config(
                            target,
                            query,
                            mode,
                            services,
                            helper,
                            direct,
                            principal,
                            bearer,
                            district,
                        )
                    )
        for cfg in configs:
            if cfg.mode == "warm" and failures.get(cfg.target, cfg.query) is None:
                try:
                    _check_equivalent(cfg)
                except GatewayError as exc:
                    reason = failures.add(cfg.target, cfg.query, exc)
                    log(f"overhead: {cfg.key} fails, skipped: {reason}")
        live = [cfg for cfg in configs if failures.get(cfg.target, cfg.query) is None]
        steps = [_step(cfg, literals) for cfg in live]
        for cfg, step in zip(live, steps, strict=True):
            for _ in range(budget.warmup_calls):
                step()
            for values in cfg.samples.values():
                values.clear()
        for rnd in range(budget.rounds):
            shift = rnd % max(1, len(steps))
            for step in steps[shift:] + steps[:shift]:
                run_batch(budget, step)
            log(f"overhead: round {rnd + 1}/{budget.rounds} done")
    finally:
        for direct in directs:
            direct.close()
        for services in opened:
            for backend in services.backends.values():
                backend.close()
        audit.close()

    results: list[dict[str, Any]] = []
    for cfg in configs:
        entry: dict[str, Any] = {
            "backend": cfg.target.label,
            "query": cfg.query.name,
            "mode": cfg.mode,
        }
        failed = failures.get(cfg.target, cfg.query)
        if failed:
            entry["failed"] = failed
            results.append(entry)
            continue
        stats = {name: summarize(values) for name, values in cfg.samples.items()}
        plain, rewritten, gateway = (stats[v] for v in VARIANTS)
        entry.update(
            {
                "variants": stats,
                "added_p50_ms": (gateway["p50_us"] - plain["p50_us"]) / 1000,
                "added_p99_ms": (gateway["p99_us"] - plain["p99_us"]) / 1000,
                "ratio_p50": gateway["p50_us"] / plain["p50_us"],
                "ratio_p99": gateway["p99_us"] / plain["p99_us"],
                "sql_cost_p50_ms": (rewritten["p50_us"] - plain["p50_us"]) / 1000,
                "pipeline_p50_ms": (gateway["p50_us"] - rewritten["p50_us"]) / 1000,
            }
        )
        results.append(entry)
    _print(results)
    return results


def _print(results: list[dict[str, Any]]) -> None:
    headers = [
        "backend/query/plan",
        "n",
        "plain p50",
        "rewritten p50",
        "gateway p50",
        "added p50",
        "× p50",
        "plain p99",
        "gateway p99",
        "added p99",
        "× p99",
        "SQL cost p50",
        "pipeline p50",
    ]
    rows = []
    failed_notes = []
    for r in results:
        name = f"{r['backend']}/{r['query']}/{r['mode']}"
        if "failed" in r:
            rows.append([name, "0", *(["failed"] * (len(headers) - 2))])
            failed_notes.append(f"\n   failed: {name}: {r['failed']}")
            continue
        v = r["variants"]
        rows.append(
            [
                name,
                str(v["gateway"]["n"]),
                fmt(v["plain"]["p50_us"] / 1000, 3),
                fmt(v["rewritten"]["p50_us"] / 1000, 3),
                fmt(v["gateway"]["p50_us"] / 1000, 3),
                fmt(r["added_p50_ms"], 3),
                fmt(r["ratio_p50"], 1),
                fmt(v["plain"]["p99_us"] / 1000, 3),
                fmt(v["gateway"]["p99_us"] / 1000, 3),
                fmt(r["added_p99_ms"], 3),
                fmt(r["ratio_p99"], 1),
                fmt(r["sql_cost_p50_ms"], 3),
                fmt(r["pipeline_p50_ms"], 3),
            ]
        )
    warm = [r for r in results if r["mode"] == "warm"]
    verdicts = ", ".join(
        f"{r['backend']}/{r['query']} failed"
        if "failed" in r
        else f"{r['backend']}/{r['query']} {r['added_p50_ms']:.3f} ms "
        f"({'met' if r['added_p50_ms'] < TARGET_WARM_P50_MS else 'missed'})"
        for r in warm
    )
    print_table(
        "2. Gateway (QueryService.run, in-process) vs direct query with the same driver (ms)",
        headers,
        rows,
        note=(
            "   added = gateway − plain; × = gateway / plain; SQL cost = rewritten − plain "
            "(masks, filters in the database);\n"
            "   pipeline = gateway − rewritten (decide, plan, backend guards, respond, "
            "durable audit).\n"
            f"   target warm added p50 < {TARGET_WARM_P50_MS:g} ms: {verdicts}"
            + "".join(failed_notes)
        ),
    )
