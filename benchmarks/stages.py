"""Section 1: what each stage of one query costs, in-process (no HTTP).

The real ``QueryService.run`` runs with a :class:`StageTimer` in place of the gateway's
telemetry: the pipeline already wraps every stage in ``telemetry.stage(name)`` (and the
backend call in ``telemetry.db_call``), so the timer sees exactly the code a request runs,
at the cost of two ``perf_counter`` calls per stage. Before it the section times
``TokenService.authenticate`` with a cached token (what every HTTP request does first),
and in batches of their own *cold* decision snapshots, compiled by a second policy engine
whose snapshot cache holds nothing (``cache_size=0``); the pipeline's own ``decide`` is
the cached one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from opentelemetry.trace import INVALID_SPAN, Span
from opentelemetry.util.types import AttributeValue

from benchmarks.common import (
    MODES,
    POLICY_DIR,
    PURPOSE,
    QUERIES,
    BenchQuery,
    Budget,
    Failures,
    Literals,
    Target,
    build_gateway,
    demo_signer,
    fmt,
    issue_token,
    literal_for,
    print_table,
    run_batch,
    run_query,
    served,
    summarize,
)
from gateway.audit import open_audit_store
from gateway.errors import GatewayError
from gateway.policy.engine import MODEL_CONF, CasbinPolicyEngine, PolicyFiles
from gateway.query.rewrite.masks import check_mask_spec
from gateway.telemetry import NoopTelemetry
from gateway.wiring import Services

#: Table rows: (key, label). Keys marked ¹ are timed outside QueryService.run.
ROWS: tuple[tuple[str, str], ...] = (
    ("authenticate", "authenticate (cached token)"),
    ("decide_cold", "decide (cold snapshot) ¹ ³"),
    ("decide", "decide (cached snapshot)"),
    ("parse", "parse"),
    ("validate", "validate"),
    ("resolve", "resolve"),
    ("rewrite", "rewrite"),
    ("execute", "execute"),
    ("respond", "respond"),
    ("audit", "audit (SQLite, durable)"),
    ("other", "other ²"),
    ("total", "QueryService.run total"),
)
_PIPELINE_STAGES = (
    "decide",
    "parse",
    "validate",
    "resolve",
    "rewrite",
    "execute",
    "respond",
    "audit",
)


class _Timed(AbstractContextManager[Span]):
    __slots__ = ("_name", "_sink", "_start")

    def __init__(self, sink: dict[str, float], name: str) -> None:
        self._sink = sink
        self._name = name
        self._start = 0.0

    def __enter__(self) -> Span:
        self._start = time.perf_counter()
        return INVALID_SPAN

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        elapsed = time.perf_counter() - self._start
        self._sink[self._name] = self._sink.get(self._name, 0.0) + elapsed


class StageTimer(NoopTelemetry):
    """:class:`~gateway.telemetry.Telemetry` that records each stage's wall time of the
    current request in ``durations`` (cleared by the caller between requests) and
    exports nothing; everything else is :class:`NoopTelemetry`'s."""

    def __init__(self) -> None:
        super().__init__()
        self.durations: dict[str, float] = {}

    def stage(self, name: str, /, **attributes: AttributeValue) -> AbstractContextManager[Span]:
        return _Timed(self.durations, name)

    def db_call(self, **_ignored: object) -> AbstractContextManager[Span]:
        # Takes the Protocol's keyword arguments (system, query_text, ...): only timed.
        return _Timed(self.durations, "execute")


def cold_engine(services: Services) -> CasbinPolicyEngine:
    """The same policy as ``services``, compiled by an engine that caches no snapshot."""
    bundle = services.bundle
    return CasbinPolicyEngine(
        bundle.catalog,
        PolicyFiles(
            model_text=MODEL_CONF.read_text(encoding="utf-8"),
            policy_text=(POLICY_DIR / "policy.csv").read_text(encoding="utf-8"),
        ),
        version=bundle.version,
        check_mask=check_mask_spec,
        cache_size=0,
    )


@dataclass
class _Config:
    target: Target
    query: BenchQuery
    mode: str
    services: Services
    timer: StageTimer
    engine: CasbinPolicyEngine
    bearer: str
    samples: dict[str, list[float]]

    @property
    def key(self) -> str:
        return f"{self.target.label}/{self.query.name}/{self.mode}"


def _step(cfg: _Config, literals: Literals) -> Callable[[], None]:
    timer = cfg.timer
    samples = cfg.samples
    warm = cfg.mode == "warm"

    def step() -> None:
        sql = cfg.query.consumer_sql(literal_for(cfg.mode, literals))
        timer.durations.clear()
        t2 = time.perf_counter()
        result = run_query(cfg.services, cfg.bearer, sql, "bench-stages")
        t3 = time.perf_counter()
        if warm and not result.plan_cache_hit:
            # Cold texts hit too once their shape is planned (gateway/query/shape.py).
            raise AssertionError(f"{cfg.key}: plan cache hit={result.plan_cache_hit}")
        total = t3 - t2
        samples["total"].append(total)
        for name, value in timer.durations.items():
            samples.setdefault(name, []).append(value)
        samples["other"].append(total - sum(timer.durations.values()))

    return step


def run(
    targets: list[Target],
    budget: Budget,
    workdir: Path,
    literals: Literals,
    failures: Failures,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    audit = open_audit_store(f"sqlite:{workdir / 'stages-audit.sqlite'}", demo_signer())
    configs: list[_Config] = []
    opened: list[Services] = []
    try:
        for target in targets:
            timer = StageTimer()
            services = build_gateway(target, workdir / "stages-state", audit=audit, telemetry=timer)
            opened.append(services)
            bearer = f"Bearer {issue_token(services)}"
            engine = cold_engine(services)
            for query in QUERIES:
                for mode in MODES:
                    configs.append(
                        _Config(
                            target,
                            query,
                            mode,
                            services,
                            timer,
                            engine,
                            bearer,
                            {"authenticate": [], "total": [], "other": []},
                        )
                    )
        for cfg in configs:  # connections, statement caches, the warm plans
            if failures.get(cfg.target, cfg.query) is None:
                _prime(cfg, failures, log)
        live = [cfg for cfg in configs if failures.get(cfg.target, cfg.query) is None]
        steps = [_step(cfg, literals) for cfg in live]
        # The cold snapshot in batches of its own (one per target and round), so that its
        # 10 ms of casbin do not evict the caches the pipeline stages run on.
        decide_cold: dict[str, list[float]] = {}
        for target_cfgs in _by_target(configs):
            steps.append(_decide_cold_step(target_cfgs[0], decide_cold))
        for step in steps:
            for _ in range(budget.warmup_calls):
                step()
        for cfg in live:
            for values in cfg.samples.values():
                values.clear()
        decide_cold.clear()
        for rnd in range(budget.rounds):
            shift = rnd % max(1, len(steps))
            for step in steps[shift:] + steps[:shift]:
                run_batch(budget, step)
            log(f"stages: round {rnd + 1}/{budget.rounds} done")
    finally:
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
        else:
            entry["stages"] = {name: summarize(values) for name, values in cfg.samples.items()}
            entry["stages"]["decide_cold"] = summarize(decide_cold.get(cfg.target.label, []))
        results.append(entry)
    _print(results, targets)
    return results


def _by_target(configs: list[_Config]) -> list[list[_Config]]:
    groups: dict[str, list[_Config]] = {}
    for cfg in configs:
        groups.setdefault(cfg.target.label, []).append(cfg)
    return list(groups.values())


def _decide_cold_step(cfg: _Config, sink: dict[str, list[float]]) -> Callable[[], None]:
    """Compile a snapshot with the cache-less engine (same for every query and mode)."""
    principal = cfg.services.tokens.authenticate(cfg.bearer)

    def step() -> None:
        started = time.perf_counter()
        cfg.engine.snapshot(principal, PURPOSE, datetime.now(UTC))
        sink.setdefault(cfg.target.label, []).append(time.perf_counter() - started)

    return step


def _prime(cfg: _Config, failures: Failures, log: Callable[[str], None]) -> None:
    try:
        served(run_query(cfg.services, cfg.bearer, cfg.query.consumer_sql(0), "bench-prime"))
    except GatewayError as exc:
        reason = failures.add(cfg.target, cfg.query, exc)
        log(f"stages: {cfg.key} fails, skipped: {reason}")


def _print(results: list[dict[str, Any]], targets: list[Target]) -> None:
    for target in targets:
        cols = [r for r in results if r["backend"] == target.label]
        headers = ["stage (µs, p50)"] + [f"{r['query']} {r['mode']}" for r in cols]
        rows = []
        for key, label in ROWS:
            row = [label]
            for r in cols:
                stat = r.get("stages", {}).get(key)
                if "failed" in r:
                    row.append("failed")
                else:
                    row.append(fmt(stat["p50_us"]) if stat and stat["n"] else "—")
            rows.append(row)
        rows.append(
            ["samples per column"]
            + [str(r["stages"]["total"]["n"]) if "stages" in r else "0" for r in cols]
        )
        failed = "".join(
            f"\n   failed: {r['backend']}/{r['query']}/{r['mode']}: {r['failed']}"
            for r in cols
            if "failed" in r
        )
        print_table(
            f"1. Per-stage cost on {target.label} — {target.description} "
            "(median µs; cold = plan cache miss, warm = hit)",
            headers,
            rows,
            note=(
                "   —: stage not run (plan cache hit).  ¹ timed outside QueryService.run, "
                "not in its total.\n"
                "   ² purpose check, plan-cache lookup, audit record build + SHA-256 of the "
                "body, metrics, timer overhead.\n"
                "   ³ timed in batches of its own, one figure per backend (it depends on "
                "neither query nor plan cache)." + failed
            ),
        )


def plan_drift(
    target: Target,
    budget: Budget,
    workdir: Path,
    literals: Literals,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Section 1b: ``Planner.plan`` alone, cold, ``budget.drift_plans`` times in a row
    for one principal on a freshly built planner: does a cold plan cost the same on the
    first and on the thousandth new SQL text? (A planner whose cost grows here gets slower
    the longer a gateway serves ad-hoc queries.)"""
    from gateway.audit.store.memory import MemoryAuditStore

    services = build_gateway(
        target, workdir / "stages-state", audit=MemoryAuditStore(demo_signer())
    )
    try:
        principal = services.tokens.authenticate(f"Bearer {issue_token(services)}")
        snapshot = services.bundle.engine.snapshot(principal, PURPOSE, datetime.now(UTC))
        durations: dict[str, list[float]] = {q.name: [] for q in QUERIES}
        for _ in range(budget.drift_plans):
            for query in QUERIES:  # alternate, so both see the same history
                sql = query.consumer_sql(literals.next())
                started = time.perf_counter()
                _plan, hit = services.planner.plan(sql, principal, snapshot)
                durations[query.name].append(time.perf_counter() - started)
                assert not hit
    finally:
        for backend in services.backends.values():
            backend.close()
    log(f"stages: plan drift over {budget.drift_plans} plans per query done")
    n = budget.drift_plans
    width = max(1, min(100, n // 5))
    starts = sorted({0, (n - width) // 3, 2 * (n - width) // 3, n - width})
    buckets = [(a, a + width) for a in starts]
    result: dict[str, Any] = {"target": target.label, "plans_per_query": n, "buckets": {}}
    rows = []
    for a, b in buckets:
        label = f"plans {a + 1:,}–{b:,}"
        cells = [label]
        for query in QUERIES:
            stat = summarize(durations[query.name][a:b])
            result["buckets"].setdefault(label, {})[query.name] = stat
            cells.append(fmt(stat["p50_us"]))
        rows.append(cells)
    first, last = rows[0], rows[-1]
    growth = ", ".join(
        f"{q.name} ×{_num(last[i + 1]) / _num(first[i + 1]):.1f}" for i, q in enumerate(QUERIES)
    )
    print_table(
        f"1b. Cold plan cost as new SQL texts accumulate (Planner.plan only, one principal, "
        f"one fresh planner, {target.label} dialect; median µs per bucket)",
        ["cold plans so far"] + [f"{q.name} plan µs" for q in QUERIES],
        rows,
        note=f"   last bucket / first bucket: {growth} (a planner that does not degrade: ×1.0)",
    )
    return result


def _num(text: str) -> float:
    return float(text.replace(",", ""))
