"""Section 5: the cost of each mask kind inside the database.

One table of synthetic rows (names, ID numbers, emails, remarks holding ID numbers,
dates) per engine — SQLite and DuckDB in process, PostgreSQL when reachable — and, per
mask, ``SELECT MAX(<mask>(col)) FROM t`` (MAX forces every value to be computed) against
``SELECT MAX(col) FROM t``, in interleaved rounds. Reported: the median time per 10,000
rows and the ratio to the unmasked column. Nothing passes or fails on a number.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import duckdb
import psycopg
from sqlglot import exp

from gateway.domain import MaskSpec
from gateway.query.rewrite.masks import (
    MaskContext,
    derive_pseudonym_key,
    mask_expression,
    sqlite_functions,
)

CTX = MaskContext(pseudonym_key=derive_pseudonym_key(b"b" * 32, "rsj"), regions={})

#: (label, mask, column, column type); None: the unmasked column.
CASES: list[tuple[str, str | None, str, str]] = [
    ("name (unmasked)", None, "name", "text"),
    ("name", "name", "name", "text"),
    ("name:fill=length", "name:fill=length", "name", "text"),
    ("partial:first=3;last=4", "partial:first=3;last=4", "id_number", "text"),
    ("id_number", "id_number", "id_number", "text"),
    ("pseudonym", "pseudonym", "id_number", "text"),
    ("email", "email", "email", "text"),
    ("remark (unmasked)", None, "remark", "text"),
    ("regex (18-digit IDs)", "regex:pattern=[0-9]{17}[0-9Xx];replace=[ID]", "remark", "text"),
    ("birth (unmasked)", None, "birth", "date"),
    ("month", "month", "birth", "date"),
    ("date_shift:days=30", "date_shift:days=30;key=id_number", "birth", "date"),
]

Run = Callable[[str], Any]


def _rows(n: int) -> list[tuple[int, str, str, str, str, str]]:
    surnames = "王李张刘陈杨赵黄周吴"
    given = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀"
    rows = []
    for i in range(n):
        name = surnames[i % 10] + given[i % 17] + (given[(i * 7) % 17] if i % 3 else "")
        id_number = (
            f"3701021{(1950 + i % 60):04d}{(1 + i % 12):02d}{(1 + i % 28):02d}{i % 1000:03d}X"[:18]
        )
        email = f"user{i}@example{i % 7}.cn"
        remark = f"申请人{id_number}，复核{i}次" if i % 2 else f"无身份证号的备注{i}"
        birth = (date(1950, 1, 1) + timedelta(days=(i * 37) % 20000)).isoformat()
        rows.append((i, name, id_number, email, remark, birth))
    return rows


def _sqlite(rows: list[tuple[int, str, str, str, str, str]]) -> Run:
    conn = sqlite3.connect(":memory:")
    for name, n_args, function in sqlite_functions():
        conn.create_function(name, n_args, function, deterministic=True)
    conn.execute(
        "CREATE TABLE t (id INTEGER, name TEXT, id_number TEXT, email TEXT,"
        " remark TEXT, birth TEXT)"
    )
    conn.executemany("INSERT INTO t VALUES (?,?,?,?,?,?)", rows)
    return lambda sql: conn.execute(sql).fetchall()


def _duckdb(rows: list[tuple[int, str, str, str, str, str]]) -> Run:
    conn = duckdb.connect(":memory:")
    conn.execute(
        "CREATE TABLE t (id INTEGER, name VARCHAR, id_number VARCHAR, email VARCHAR,"
        " remark VARCHAR, birth DATE)"
    )
    conn.executemany("INSERT INTO t VALUES (?,?,?,?,?,?)", rows)
    return lambda sql: conn.execute(sql).fetchall()


def _postgres(rows: list[tuple[int, str, str, str, str, str]], dsn: str) -> Run:
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute(
        "CREATE TEMP TABLE t (id INTEGER, name TEXT, id_number TEXT, email TEXT,"
        " remark TEXT, birth DATE)"
    )
    with conn.cursor() as cur, cur.copy("COPY t FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    conn.execute("ANALYZE t")
    return lambda sql: conn.execute(sql.encode()).fetchall()


def _sql(mask: str | None, column: str, column_type: str, dialect: str) -> str:
    ref = exp.column(column, table="t")
    value = (
        ref
        if mask is None
        else mask_expression(
            MaskSpec.parse(mask), ref, column_type=column_type, dialect=dialect, ctx=CTX
        )
    )
    return exp.select(exp.Max(this=value)).from_("t").sql(dialect=dialect)


def run(quick: bool, pg_dsn: str | None, log: Callable[[str], None]) -> dict[str, Any]:
    n = 2_000 if quick else 50_000
    rounds = 1 if quick else 5
    rows = _rows(n)
    engines: dict[str, tuple[str, Run]] = {
        "sqlite": ("sqlite", _sqlite(rows)),
        "duckdb": ("duckdb", _duckdb(rows)),
    }
    if pg_dsn is not None:
        try:
            engines["postgres"] = ("postgres", _postgres(rows, pg_dsn))
        except psycopg.Error as exc:
            log(f"masks: PostgreSQL skipped ({exc.__class__.__name__})")
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for engine, (dialect, execute) in engines.items():
            for label, mask, column, column_type in CASES:
                sql = _sql(mask, column, column_type, dialect)
                started = time.perf_counter()
                execute(sql)
                elapsed = time.perf_counter() - started
                samples.setdefault((engine, label), []).append(elapsed * 10_000 / n * 1000)
    results: dict[str, Any] = {"rows": n, "rounds": rounds, "ms_per_10k_rows": {}}
    print(f"\n5. Masks in the database: median ms per 10,000 rows ({n} rows, {rounds} rounds)")
    print(f"  {'mask':28}" + "".join(f"{e:>18}" for e in engines))
    baseline = {
        "name": "name (unmasked)",
        "id_number": "name (unmasked)",
        "email": "name (unmasked)",
        "remark": "remark (unmasked)",
        "birth": "birth (unmasked)",
    }
    for label, _mask, column, _type in CASES:
        cells = []
        for engine in engines:
            median = statistics.median(samples[(engine, label)])
            base = statistics.median(samples[(engine, baseline[column])])
            results["ms_per_10k_rows"].setdefault(engine, {})[label] = round(median, 3)
            cells.append(f"{median:9.2f} (x{median / base:4.1f})")
        print(f"  {label:28}" + "".join(f"{c:>18}" for c in cells))
    return results
