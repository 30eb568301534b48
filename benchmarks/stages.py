"""Section 1: what each stage of one query costs, in-process (no HTTP).

The real ``QueryService.run`` runs with a :class:`StageTimer` in place of the gateway's
telemetry: the pipeline already wraps every stage in ``telemetry.stage(name)`` (and the
backend call in ``telemetry.db_call``), so the timer sees exactly the code a request runs,
at the cost of two ``perf_counter`` calls per stage. Around it the section times
``TokenService.authenticate`` with a cached token (what every HTTP request does first)
and a *cold* decision snapshot, compiled by a second policy engine whose snapshot cache
holds nothing (``cache_size=0``); the pipeline's own ``decide`` is the cached one.
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

from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import INVALID_SPAN, Span
from opentelemetry.util.types import AttributeValue

from benchmarks.common import (
    MODES,
    POLICY_DIR,
    PURPOSE,
    QUERIES,
    BenchQuery,
    Budget,
    Literals,
    Target,
    build_gateway,
    fmt,
    issue_token,
    literal_for,
    print_table,
    run_batch,
    summarize,
)
from gateway.audit import open_audit_store
from gateway.policy.engine import CasbinPolicyEngine, PolicyFiles
from gateway.query.pipeline import QueryContext, QueryRequest
from gateway.query.rewrite.masks import check_mask_spec
from gateway.telemetry import Telemetry
from gateway.wiring import Services

#: Table rows: (key, label). Keys marked ¹ are timed outside QueryService.run.
ROWS: tuple[tuple[str, str], ...] = (
    ("authenticate", "authenticate (cached token) ¹"),
    ("decide_cold", "decide (cold snapshot) ¹"),
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
_PIPELINE_STAGES = ("decide", "parse", "validate", "resolve", "rewrite", "execute", "respond",
                    "audit")


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


class StageTimer(Telemetry):
    """Telemetry that records each stage's wall time of the current request in
    ``durations`` (cleared by the caller between requests) and exports nothing."""

    def __init__(self) -> None:
        super().__init__(
            tracer_provider=None,
            meter_provider=NoOpMeterProvider(),
            id_generator=RandomIdGenerator(),
        )
        self.durations: dict[str, float] = {}

    def stage(self, name: str, /, **attributes: AttributeValue) -> AbstractContextManager[Span]:
        return _Timed(self.durations, name)

    def db_call(
        self,
        *,
        system: str,
        query_text: str,
        namespace: str | None = None,
        operation: str = "SELECT",
        server_address: str | None = None,
        server_port: int | None = None,
    ) -> AbstractContextManager[Span]:
        return _Timed(self.durations, "execute")


def cold_engine(services: Services) -> CasbinPolicyEngine:
    """The same policy as ``services``, compiled by an engine that caches no snapshot."""
    bundle = services.bundle
    return CasbinPolicyEngine(
        bundle.catalog,
        PolicyFiles(
            model_text=(POLICY_DIR / "model.conf").read_text(encoding="utf-8"),
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
        return f"{self.target.kind}/{self.query.name}/{self.mode}"


def _step(cfg: _Config, literals: Literals) -> Callable[[], None]:
    request_ctx = QueryContext(request_id="bench-stages")
    timer = cfg.timer
    samples = cfg.samples
    warm = cfg.mode == "warm"

    def step() -> None:
        sql = cfg.query.consumer_sql(literal_for(cfg.mode, literals))
        t0 = time.perf_counter()
        principal = cfg.services.tokens.authenticate(cfg.bearer)
        t1 = time.perf_counter()
        timer.durations.clear()
        t2 = time.perf_counter()
        result = cfg.services.query.run(principal, QueryRequest(sql=sql, purpose=PURPOSE),
                                        request_ctx)
        t3 = time.perf_counter()
        cfg.engine.snapshot(principal, PURPOSE, datetime.now(UTC))
        t4 = time.perf_counter()
        if result.plan_cache_hit != warm:
            raise AssertionError(f"{cfg.key}: plan cache hit={result.plan_cache_hit}")
        total = t3 - t2
        samples["authenticate"].append(t1 - t0)
        samples["decide_cold"].append(t4 - t3)
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
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    audit = open_audit_store(f"sqlite:{workdir / 'stages-audit.sqlite'}")
    configs: list[_Config] = []
    opened: list[Services] = []
    try:
        for target in targets:
            timer = StageTimer()
            services = build_gateway(target, workdir / "state", audit=audit, telemetry=timer)
            opened.append(services)
            bearer = f"Bearer {issue_token(services)}"
            engine = cold_engine(services)
            for query in QUERIES:
                for mode in MODES:
                    configs.append(_Config(target, query, mode, services, timer, engine, bearer,
                                           {"authenticate": [], "decide_cold": [], "total": [],
                                            "other": []}))
        steps = [(cfg, _step(cfg, literals)) for cfg in configs]
        for _cfg, step in steps:  # connections, statement caches, first plans
            step()
            step()
        for cfg, _step_fn in steps:
            for values in cfg.samples.values():
                values.clear()
        for rnd in range(budget.rounds):
            shift = rnd % len(steps)
            for cfg, step in steps[shift:] + steps[:shift]:
                run_batch(budget, step)
            log(f"stages: round {rnd + 1}/{budget.rounds} done")
    finally:
        for services in opened:
            for backend in services.backends.values():
                backend.close()
        audit.close()

    results = []
    for cfg in configs:
        results.append({
            "backend": cfg.target.kind,
            "query": cfg.query.name,
            "mode": cfg.mode,
            "stages": {name: summarize(values) for name, values in cfg.samples.items()},
        })
    _print(results, [t.kind for t in targets])
    return results


def _print(results: list[dict[str, Any]], kinds: list[str]) -> None:
    for kind in kinds:
        cols = [r for r in results if r["backend"] == kind]
        headers = ["stage (µs, p50)"] + [f"{r['query']} {r['mode']}" for r in cols]
        rows = []
        for key, label in ROWS:
            row = [label]
            for r in cols:
                stat = r["stages"].get(key)
                row.append(fmt(stat["p50_us"]) if stat and stat["n"] else "—")
            rows.append(row)
        rows.append(["samples per column"] + [str(r["stages"]["total"]["n"]) for r in cols])
        print_table(
            f"1. Per-stage cost on {kind} (median µs; cold = plan cache miss, warm = hit)",
            headers,
            rows,
            note=(
                "   —: stage not run (plan cache hit).  ¹ timed outside QueryService.run, "
                "not in its total.\n"
                "   ² purpose check, plan-cache lookup, audit record build + SHA-256 of the "
                "body, metrics, timer overhead."
            ),
        )
