"""Section 3: HTTP throughput under bounded load on loopback (wrk).

Servers, all on 127.0.0.1, all over the same demo SQLite file, started once and measured
in interleaved rounds:

``gateway``
    ``python -m gateway.cli serve`` (uvicorn, 2 workers) configured by ``GATEWAY_*``
    variables only; every request verifies its bearer token, decides, plans (or hits the
    plan cache), executes, and appends a **durable audit record** (SQLite in the state
    directory unless ``GATEWAY_AUDIT_DSN`` is set in the environment of the benchmark)
    before it answers. Scenarios: ``warm`` (the same SQL every time) and ``cold`` (a new
    literal per request: every plan is new).
``bare``
    benchmarks/bare_app.py under uvicorn, 2 workers: the same query with no gateway
    work. ``plain`` runs the plain SQL (the floor); ``rewritten`` runs the SQL the
    gateway sends (masks and filters, no gateway).
``datasette``
    ``datasette serve demo.sqlite`` (one process: datasette has no worker option),
    ``GET /demo.json?sql=<plain SQL>&_shape=array``.

With PostgreSQL available, a second gateway serves the same query from PostgreSQL (the
``gw_bench`` schema, with planner statistics), next to ``bare /query-pg`` running the
plain SQL there, and a third with ``GATEWAY_AUDIT_DSN=memory:`` (not durable; a reference
that shows what the durable audit costs). When the protected SQL is cheap on PostgreSQL,
these rows show what HTTP, authentication, planning and the audit cost.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import httpx

from benchmarks.common import (
    ASSERTION_TYPE,
    KEY_DIR,
    POLICY_DIR,
    PURPOSE,
    ROOT,
    SIMPLE,
    SYSTEM,
    Budget,
    Target,
    build_gateway,
    client_assertion,
    demo_signer,
    district_of,
    fmt,
    issue_token,
    principal_of,
    print_table,
    sqlite_path,
)
from gateway.audit.store.memory import MemoryAuditStore
from gateway.demo.sharing import ensure_demo_sharing
from gateway.settings import Settings

WRK_SCRIPT = Path(__file__).with_name("wrk_query.lua")
INSTALL_HINT = (
    "wrk is not installed, so section 3 (HTTP load) is skipped. Install it with\n"
    "    sudo apt-get update && sudo apt-get install -y wrk     # Debian/Ubuntu\n"
    "    brew install wrk                                       # macOS\n"
    "and run the benchmarks again."
)
#: The brief's target for cold plans over HTTP.
TARGET_COLD_RPS = 1500
WORKERS = 2
#: A reference scenario, not a configuration to run: the audit log in memory is not durable.
MEMAUDIT = "gateway→pg warm, memory audit ³"
_READY_TIMEOUT_S = 60.0
#: Numbers wrk runs, so that cold literals never repeat across runs (wrk_query.lua).
_RUN_IDS = itertools.count(1)


def wrk_path() -> str | None:
    return shutil.which("wrk")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A server process group this harness starts and stops (by its own pid)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    ready_path: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() reaches the workers
        )

    def wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                if httpx.get(self.base + self.ready_path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {_READY_TIMEOUT_S:g} s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class Scenario:
    name: str
    server: Server
    method: str
    path: str
    body: str  # JSON template with __N__, or "" for GET
    vary: bool
    token: bool
    expect_rows: int
    rounds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.base + self.path


def _gateway_env(
    state_dir: Path, dsn: str, port: int, audit_dsn: str | None = None
) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GATEWAY_") or k == "GATEWAY_AUDIT_DSN"
    }
    if audit_dsn is not None:
        env["GATEWAY_AUDIT_DSN"] = audit_dsn
    env.update(
        {
            "GATEWAY_POLICY_DIR": str(POLICY_DIR),
            "GATEWAY_KEY_DIR": str(KEY_DIR),
            "GATEWAY_STATE_DIR": str(state_dir),
            "GATEWAY_BACKEND_DEMO_DSN": dsn,
            "GATEWAY_WORKERS": str(WORKERS),
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(port),
            "GATEWAY_ISSUER": f"http://127.0.0.1:{port}",
            "GATEWAY_TRACES_EXPORTER": "none",
            "GATEWAY_METRICS_EXPORTER": "none",
            "GATEWAY_LOG_LEVEL": "WARNING",
        }
    )
    # The demo's approved applications (conditional datasets need one), as `gateway demo`.
    ensure_demo_sharing(Settings.from_env(env), now=datetime.now(UTC))
    return env


def _servers(db: Path, pg: Target | None, workdir: Path) -> dict[str, Server]:
    python = sys.executable
    datasette = str(Path(python).parent / "datasette")
    if not Path(datasette).exists():
        datasette = shutil.which("datasette") or "datasette"
    plain_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    bare_env = {**plain_env, "BENCH_SQLITE_PATH": str(db)}
    if pg is not None:
        bare_env["BENCH_PG_DSN"] = pg.dsn
    servers: dict[str, Server] = {}
    port = free_port()
    servers["gateway"] = Server(
        "gateway",
        [python, "-m", "gateway.cli", "serve"],
        _gateway_env(workdir / "http-state", f"sqlite:{db}", port),
        port,
        "/healthz",
        workdir / "gateway.log",
    )
    if pg is not None:
        port = free_port()
        servers["gateway-pg"] = Server(
            "gateway-pg",
            [python, "-m", "gateway.cli", "serve"],
            _gateway_env(workdir / "http-state-pg", pg.dsn, port),
            port,
            "/healthz",
            workdir / "gateway-pg.log",
        )
        port = free_port()
        servers["gateway-pg-memaudit"] = Server(
            "gateway-pg-memaudit",
            [python, "-m", "gateway.cli", "serve"],
            _gateway_env(workdir / "http-state-pg-mem", pg.dsn, port, audit_dsn="memory:"),
            port,
            "/healthz",
            workdir / "gateway-pg-memaudit.log",
        )
    port = free_port()
    servers["bare"] = Server(
        "bare",
        [
            python,
            "-m",
            "uvicorn",
            "benchmarks.bare_app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(WORKERS),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        bare_env,
        port,
        "/healthz",
        workdir / "bare.log",
    )
    port = free_port()
    servers["datasette"] = Server(
        "datasette",
        [datasette, "serve", str(db), "-h", "127.0.0.1", "-p", str(port)],
        plain_env,
        port,
        "/-/versions.json",
        workdir / "datasette.log",
    )
    return servers


def _token(gateway: Server) -> str:
    issuer = f"http://127.0.0.1:{gateway.port}"
    resp = httpx.post(
        f"{issuer}/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(SYSTEM, f"{issuer}/v1/token"),
        },
        timeout=10,
    )
    resp.raise_for_status()
    return str(resp.json()["access_token"])


def _bodies(target: Target, workdir: Path) -> tuple[str, str, str, str]:
    """(gateway body template, bare plain body, bare rewritten body, plain SQL)."""
    services = build_gateway(
        target, workdir / "http-inproc-state", audit=MemoryAuditStore(demo_signer())
    )
    try:
        principal = principal_of(services, issue_token(services))
        district = district_of(services)
        snapshot = services.bundle.engine.snapshot(principal, PURPOSE, datetime.now(UTC))
        rewritten = services.planner.plan(SIMPLE.consumer_sql(0), principal, snapshot)[0].sql
    finally:
        for backend in services.backends.values():
            backend.close()
    gateway_body = json.dumps({"sql": SIMPLE.consumer.format(n="__N__"), "purpose": PURPOSE})
    plain_sql = SIMPLE.plain_sql(0, district)
    return (gateway_body, json.dumps({"sql": plain_sql}), json.dumps({"sql": rewritten}), plain_sql)


def _check(scenario: Scenario, token: str) -> None:
    """One request outside the load: the endpoint answers 200 with the expected rows."""
    headers = {"Authorization": f"Bearer {token}"} if scenario.token else {}
    body = scenario.body.replace("__N__", "0")
    if scenario.method == "POST":
        resp = httpx.post(
            scenario.url,
            content=body.encode(),
            timeout=30,
            headers={**headers, "Content-Type": "application/json"},
        )
    else:
        resp = httpx.get(scenario.url, timeout=30)
    if resp.status_code != 200:
        raise RuntimeError(f"{scenario.name}: HTTP {resp.status_code}: {resp.text[:300]}")
    data = resp.json()
    rows = len(data) if isinstance(data, list) else int(data["row_count"])
    if rows != scenario.expect_rows:
        raise RuntimeError(f"{scenario.name}: {rows} rows, expected {scenario.expect_rows}")


def _warm_up(scenario: Scenario, token: str, budget: Budget, wrk: str) -> None:
    if budget.wrk_warmup_s > 0:
        _wrk(scenario, token, budget, wrk, budget.wrk_warmup_s)
        return
    for _ in range(2 * WORKERS):  # a new connection each: reaches both workers
        _check(scenario, token)


def _wrk(scenario: Scenario, token: str, budget: Budget, wrk: str, seconds: int) -> dict[str, Any]:
    argv = [
        wrk,
        f"-t{budget.wrk_threads}",
        f"-c{budget.wrk_connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(WRK_SCRIPT),
        scenario.url,
        "--",
        scenario.method,
        scenario.body,
        "vary" if scenario.vary else "fixed",
        token if scenario.token else "",
        str(next(_RUN_IDS)),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
            result["errors"] = sum(
                result[k]
                for k in (
                    "connect_errors",
                    "read_errors",
                    "write_errors",
                    "status_errors",
                    "timeouts",
                )
            )
            return result
    raise RuntimeError(
        f"wrk gave no result (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )


def _audit_rows(state_dirs: list[Path]) -> int | None:
    """Audit records in the gateways' default SQLite audit logs (None if elsewhere)."""
    if os.environ.get("GATEWAY_AUDIT_DSN"):
        return None
    total = 0
    for state_dir in state_dirs:
        path = state_dir / "audit.sqlite"
        if path.exists():
            conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
            try:
                row = conn.execute("SELECT count(*) FROM audit_log").fetchone()
            finally:
                conn.close()
            total += int(row[0]) if row else 0
    return total


def run(
    targets: list[Target], budget: Budget, workdir: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    wrk = wrk_path()
    if wrk is None:
        print(f"\n3. HTTP load: SKIPPED\n{INSTALL_HINT}")
        return {"skipped": "wrk not installed"}
    sqlite_target = next(t for t in targets if t.kind == "sqlite")
    pg = next((t for t in targets if t.label == "postgres"), None)
    db = sqlite_path(sqlite_target.dsn).absolute()
    gateway_body, plain_body, rewritten_body, plain_sql = _bodies(sqlite_target, workdir)
    servers = _servers(db, pg, workdir)
    gw, bare, ds = servers["gateway"], servers["bare"], servers["datasette"]
    rows = 20
    scenarios = [
        Scenario("gateway warm", gw, "POST", "/v1/query", gateway_body, False, True, rows),
        Scenario("gateway cold", gw, "POST", "/v1/query", gateway_body, True, True, rows),
        Scenario("bare plain SQL", bare, "POST", "/query", plain_body, False, False, rows),
        Scenario("bare rewritten SQL", bare, "POST", "/query", rewritten_body, False, False, rows),
        Scenario(
            "datasette",
            ds,
            "GET",
            f"/{db.stem}.json?" + urlencode({"sql": plain_sql, "_shape": "array"}),
            "",
            False,
            False,
            rows,
        ),
    ]
    if pg is not None:
        gw_pg = servers["gateway-pg"]
        scenarios += [
            Scenario(
                "gateway→pg warm", gw_pg, "POST", "/v1/query", gateway_body, False, True, rows
            ),
            Scenario("gateway→pg cold", gw_pg, "POST", "/v1/query", gateway_body, True, True, rows),
            Scenario(
                "bare→pg plain SQL", bare, "POST", "/query-pg", plain_body, False, False, rows
            ),
            Scenario(
                MEMAUDIT,
                servers["gateway-pg-memaudit"],
                "POST",
                "/v1/query",
                gateway_body,
                False,
                True,
                rows,
            ),
        ]
    state_dirs = [workdir / "http-state", workdir / "http-state-pg"]
    audit_before: int | None = None
    try:
        for server in servers.values():
            server.start()
        for server in servers.values():
            server.wait_ready()
        log("http: servers ready")
        audit_before = _audit_rows(state_dirs)
        for rnd in range(budget.http_rounds):
            # Fresh tokens each round (they live 10 minutes), one per gateway (issuer).
            tokens = {s.server.name: _token(s.server) for s in scenarios if s.token}
            shift = rnd % len(scenarios)
            for scenario in scenarios[shift:] + scenarios[:shift]:
                token = tokens.get(scenario.server.name, "")
                _check(scenario, token)
                _warm_up(scenario, token, budget, wrk)
                scenario.rounds.append(_wrk(scenario, token, budget, wrk, budget.wrk_seconds))
            log(f"http: round {rnd + 1}/{budget.http_rounds} done")
    finally:
        for server in servers.values():
            server.stop()
    audit_after = _audit_rows(state_dirs)
    return _report(scenarios, budget, audit_before, audit_after)


def _report(
    scenarios: list[Scenario], budget: Budget, audit_before: int | None, audit_after: int | None
) -> dict[str, Any]:
    summary: dict[str, dict[str, Any]] = {}
    for s in scenarios:
        summary[s.name] = {
            "rps": statistics.median(r["rps"] for r in s.rounds),
            "rps_rounds": [round(r["rps"], 1) for r in s.rounds],
            "p50_ms": statistics.median(r["p50_us"] for r in s.rounds) / 1000,
            "p99_ms": statistics.median(r["p99_us"] for r in s.rounds) / 1000,
            "errors": sum(r["errors"] for r in s.rounds),
            "requests": sum(r["requests"] for r in s.rounds),
            "rounds": s.rounds,
        }
    floor = summary["bare plain SQL"]["rps"]
    ds = summary["datasette"]["rps"]
    rows = [
        [
            name,
            fmt(v["rps"]),
            " / ".join(fmt(x) for x in v["rps_rounds"]),
            fmt(v["p50_ms"], 2),
            fmt(v["p99_ms"], 2),
            str(v["errors"]),
            fmt(v["rps"] / floor, 3),
            fmt(v["rps"] / ds, 2),
        ]
        for name, v in summary.items()
    ]
    warm, cold = summary["gateway warm"], summary["gateway cold"]
    rewritten = summary["bare rewritten SQL"]["rps"]
    lines = [
        f"gateway warm / bare plain SQL = {warm['rps'] / floor:.3f}; "
        f"gateway warm / bare rewritten SQL = {warm['rps'] / rewritten:.3f}",
        f"gateway cold = {cold['rps']:,.0f} req/s vs target {TARGET_COLD_RPS:,} "
        f"({cold['rps'] / TARGET_COLD_RPS:.0%} of it)",
        f"gateway warm vs datasette = {warm['rps'] / ds:.2f}×",
    ]
    if "gateway→pg warm" in summary:
        pg_warm, pg_cold = summary["gateway→pg warm"], summary["gateway→pg cold"]
        pg_floor = summary["bare→pg plain SQL"]["rps"]
        lines += [
            f"gateway→pg warm / bare→pg plain SQL = {pg_warm['rps'] / pg_floor:.3f}; "
            f"gateway→pg cold / warm = {pg_cold['rps'] / pg_warm['rps']:.3f}",
            f"gateway→pg cold = {pg_cold['rps']:,.0f} req/s vs target {TARGET_COLD_RPS:,} "
            f"({pg_cold['rps'] / TARGET_COLD_RPS:.0%} of it)",
            f"³ GATEWAY_AUDIT_DSN=memory: — NOT durable, for reference only: gateway→pg warm "
            f"with the durable SQLite audit = {pg_warm['rps'] / summary[MEMAUDIT]['rps']:.3f}"
            " of it",
        ]
    audit = os.environ.get("GATEWAY_AUDIT_DSN") or "SQLite file in GATEWAY_STATE_DIR"
    if "memory" in audit:
        audit += " — NOT durable"
    written = (
        audit_after - audit_before if audit_before is not None and audit_after is not None else None
    )
    lines.append(
        f"every gateway request (but ³) includes an audit append ({audit})"
        + (f"; {written:,} audit records written during the load" if written is not None else "")
    )
    print_table(
        f"3. HTTP load on 127.0.0.1: wrk -t{budget.wrk_threads} -c{budget.wrk_connections} "
        f"-d{budget.wrk_seconds}s, {budget.http_rounds} interleaved round(s), "
        f"{WORKERS} uvicorn workers (datasette: 1 process); simple select",
        [
            "scenario",
            "req/s",
            "per round",
            "p50 ms",
            "p99 ms",
            "errors",
            "÷ bare plain",
            "÷ datasette",
        ],
        rows,
        note="\n".join(f"   {line}" for line in lines),
    )
    return {
        "wrk": {
            "threads": budget.wrk_threads,
            "connections": budget.wrk_connections,
            "seconds": budget.wrk_seconds,
            "rounds": budget.http_rounds,
        },
        "audit": audit,
        "audit_records_written": written,
        "scenarios": summary,
    }
