"""The reference answer of a consumer query: the same SQL, run by PostgreSQL over a
materialised copy of what the system may see.

"What the system may see" is :func:`tests.e2e.expected.view` — the generated demo rows
with the row filter, the denied columns and the masks of ``policies/`` applied *in
Python*, restated by hand (never asked of the gateway). Each view becomes one table of a
scratch schema (named by the ``scratch`` fixture); a query's ``dataset.table`` names are
replaced by those tables on the AST, and PostgreSQL — whose dialect consumers write —
runs it as written: DISTINCT ON, WITH TIES, ANY/ALL, FILTER, parenthesised set
operations and all. No gateway code computes an expected answer.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import psycopg
import sqlglot
from sqlglot import exp

from tests.e2e import expected as ex

Rows = list[tuple[Any, ...]]


def _pg_type(values: Iterable[Any]) -> str:
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {int}:
        return "BIGINT" if kinds else "TEXT"
    if kinds <= {dt.date}:
        return "DATE"
    return 'TEXT COLLATE "C"'  # code-point order, as the backends under test sort text


class PgOracle:
    """Views of ``systems`` in ``schema`` of the PostgreSQL at ``dsn`` (created here)."""

    def __init__(self, dsn: str, schema: str, systems: Iterable[str]) -> None:
        self._schema = schema
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        # A reference answer that takes longer than this is not drawn (psycopg raises
        # QueryCanceled), like the gateway's own limit.
        self._conn.execute("SET statement_timeout = '5s'")
        self._tables: dict[tuple[str, str], str] = {}
        for system in systems:
            for table in ex.POLICIES[system].tables:
                self._load(system, table)

    def _load(self, system: str, table: str) -> None:
        name = f"{system}__{table}".replace("-", "_").replace(".", "__")
        rows = ex.view(system, table)
        columns = list(ex.POLICIES[system].tables[table].masks)
        decl = ", ".join(f'"{c}" {_pg_type(r[c] for r in rows)}' for c in columns)
        qualified = f'"{self._schema}"."{name}"'
        self._conn.execute(f"DROP TABLE IF EXISTS {qualified}")
        self._conn.execute(f"CREATE TABLE {qualified} ({decl})")
        with self._conn.cursor() as cur:
            names = ", ".join(f'"{c}"' for c in columns)
            with cur.copy(f"COPY {qualified} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([row[c] for c in columns])
        self._tables[(system, table)] = name

    def sql_for(self, system: str, sql: str) -> str:
        """``sql`` with every catalog table replaced by ``system``'s materialised view."""
        tree = sqlglot.parse_one(sql, read="postgres")
        for table in list(tree.find_all(exp.Table)):
            key = (system, f"{table.db}.{table.name}")
            if not table.db or key not in self._tables:
                continue
            alias = table.alias or table.name
            table.replace(
                exp.Table(
                    this=exp.to_identifier(self._tables[key], quoted=True),
                    db=exp.to_identifier(self._schema, quoted=True),
                    alias=exp.TableAlias(this=exp.to_identifier(alias)),
                )
            )
        return tree.sql(dialect="postgres")

    def rows(self, system: str, sql: str) -> Rows:
        return [tuple(r) for r in self._conn.execute(self.sql_for(system, sql)).fetchall()]

    def count(self, system: str, sql: str) -> int:
        inner = self.sql_for(system, sql)
        (n,) = self._conn.execute(f"SELECT count(*) FROM ({inner}) AS q").fetchone() or (0,)
        return int(n)

    def close(self) -> None:
        self._conn.close()


def cell(value: Any) -> Any:
    """One value as comparable across engines and JSON: booleans as 0/1 (SQLite and
    MariaDB have no boolean type), numbers as float, dates as ISO text."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def normalised(rows: Iterable[Sequence[Any]]) -> Rows:
    return [tuple(cell(v) for v in row) for row in rows]


def tables_read(sql: str) -> tuple[str, ...]:
    """The catalog tables ``sql`` names anywhere (``dataset.table``)."""
    tree = sqlglot.parse_one(sql, read="postgres")
    return tuple(sorted({f"{t.db}.{t.name}" for t in tree.find_all(exp.Table) if t.db}))


def check_capped_answer(
    body: Mapping[str, Any], reference: Rows, limit: int, *, ordered: bool
) -> str | None:
    """None if ``body`` is ``reference`` under a row limit of ``limit`` (the first
    ``limit`` rows when the ORDER BY is total, else any ``limit`` of them), with the
    right ``truncated`` flag; otherwise what is wrong."""
    got = normalised(body["rows"])
    want = normalised(reference)
    if len(want) > limit:
        if not body["truncated"] or len(got) != limit:
            return f"expected {limit} of {len(want)} rows, truncated; got {len(got)}"
        if ordered and got != want[:limit]:
            return f"first rows differ: {got[:5]} vs {want[:5]}"
        surplus = Counter(got) - Counter(want)
        return f"rows not in the reference: {list(surplus)[:5]}" if surplus else None
    if body["truncated"]:
        return f"truncated although the reference has {len(want)} rows (limit {limit})"
    if ordered:
        return None if got == want else f"rows differ: {got[:8]} vs {want[:8]}"
    if Counter(got) != Counter(want):
        missing = list(Counter(want) - Counter(got))[:5]
        extra = list(Counter(got) - Counter(want))[:5]
        return f"rows differ: missing {missing}, unexpected {extra}"
    return None
