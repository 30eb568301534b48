"""Run the gateway benchmarks and print the tables; results also go to
benchmarks/results/<time>[-quick].json.

    .venv/bin/python -m benchmarks.run            # full run, about 13 minutes
    .venv/bin/python -m benchmarks.run --quick    # smoke run, about 1 minute

Sections: 1 per-stage cost, 2 overhead over a direct query and 2b a random mix of ~510
queries (all in-process, SQLite and PostgreSQL), 3 HTTP load (wrk; SQLite, and
PostgreSQL when reachable), 4 the audit log (group commit throughput and latency,
full-log verification, receipt size), 5 the cost of each mask kind inside SQLite, DuckDB
and PostgreSQL. See
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import audit_log, http_load, masks, mix, overhead, stages
from benchmarks.common import (
    DEFAULT_PG_DSN,
    FULL,
    QUICK,
    RESULTS_DIR,
    Failures,
    Literals,
    Target,
    backend_version,
    pg_bench_dsn,
    postgres_reachable,
    prepare_targets,
    sqlglot_compiled,
    statistics_appeared,
)

SECTIONS = ("stages", "overhead", "mix", "http", "audit", "masks")


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _wrk_version() -> str:
    wrk = http_load.wrk_path()
    if wrk is None:
        return "not installed"
    proc = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
    first = (proc.stdout or proc.stderr).splitlines()
    return first[0].strip() if first else "unknown"


def environment(targets: list[Target]) -> dict[str, Any]:
    return {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{_cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}",
        "python": platform.python_version(),
        "sqlglot": f"{_version('sqlglot')} "
        f"({'compiled, sqlglotc' if sqlglot_compiled() else 'pure Python'})",
        "litestar": _version("litestar"),
        "uvicorn": _version("uvicorn"),
        "datasette": _version("datasette"),
        "psycopg": _version("psycopg"),
        "backends": [backend_version(t) for t in targets],
        "wrk": _wrk_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Benchmarks of the gateway: per-stage cost, overhead over a direct "
        "query, HTTP throughput, the audit log. Prints tables and writes JSON to "
        "benchmarks/results/.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short smoke run (tiny batches, 1 s of load per scenario)",
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--pg-dsn",
        default=os.environ.get("BENCH_PG_DSN", DEFAULT_PG_DSN),
        help="PostgreSQL to load the demo world into (schema gw_bench); "
        "default $BENCH_PG_DSN or %(default)s",
    )
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the demo SQLite file, audit logs and server logs go "
        "(default: a fresh temporary directory, removed afterwards)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON results file (default benchmarks/results/<time>.json)",
    )
    args = parser.parse_args(argv)

    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    budget = QUICK if args.quick else FULL

    pg_base: str | None = None
    if not args.no_pg:
        why = postgres_reachable(pg_bench_dsn(args.pg_dsn))
        if why is None:
            pg_base = args.pg_dsn
        else:
            _log(f"PostgreSQL not reachable at {args.pg_dsn} ({why}); SQLite only")
    if "http" in sections and http_load.wrk_path() is None:
        print(http_load.INSTALL_HINT, file=sys.stderr)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gw-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, Any] = {"quick": args.quick, "budget": dataclasses.asdict(budget)}
    try:
        targets = prepare_targets(workdir, pg_base, _log)
        results["environment"] = env = environment(targets)
        print(f"Gateway benchmarks{' (quick)' if args.quick else ''} — {env['time']}")
        results["targets"] = {t.label: t.description for t in targets}
        for key in (
            "machine",
            "python",
            "sqlglot",
            "litestar",
            "uvicorn",
            "datasette",
            "psycopg",
            "backends",
            "wrk",
        ):
            value = env[key]
            print(f"  {key:10} {', '.join(value) if isinstance(value, list) else value}")
        literals = Literals()
        failures = Failures()
        results["load_average"] = {"start": _load()}
        if "stages" in sections:
            _log(f"load average {_load()}")
            results["stages"] = stages.run(targets, budget, workdir, literals, failures, _log)
            results["plan_drift"] = stages.plan_drift(targets[0], budget, workdir, literals, _log)
        if "overhead" in sections:
            _log(f"load average {_load()}")
            results["overhead"] = overhead.run(targets, budget, workdir, literals, failures, _log)
        if "mix" in sections:
            _log(f"load average {_load()}")
            results["mix"] = mix.run(targets, budget, workdir, _log)
        for target in targets:
            if statistics_appeared(target):
                print(
                    f"\nWARNING: {target.label} gained planner statistics during the run "
                    "(autovacuum?): its figures mix two plans."
                )
        if "http" in sections:
            _log(f"load average {_load()}")
            results["http"] = http_load.run(targets, budget, workdir, _log)
        if "audit" in sections:
            _log(f"load average {_load()}")
            results["audit"] = audit_log.run(args.quick, workdir, pg_base, _log)
        if "masks" in sections:
            _log(f"load average {_load()}")
            results["masks"] = masks.run(args.quick, pg_base, _log)
        results["load_average"]["end"] = _load()
        print(
            f"\nLoad average (1, 5, 15 min) at start {results['load_average']['start']}, "
            f"at end {results['load_average']['end']}. The run itself adds about 1 "
            "(sections 1-2) or 2-3 (section 3); more means something else was running."
        )
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    out = args.out or RESULTS_DIR / (
        datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ("-quick" if args.quick else "") + ".json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
    )
    print(f"\nResults: {out}  ({results['elapsed_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
