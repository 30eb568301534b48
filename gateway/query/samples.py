"""Masked synthetic samples: what a consumer would receive of a table, shown on made-up rows.

A consumer deciding whether to apply for a dataset wants to see what its fields look like
*after* the provider's masks — without any real value leaving the provider. The rows here
are synthetic (well-formed values of each column's kind: ID numbers with a valid check
character, mobile numbers, names, addresses …), put in a private in-memory SQLite
database and read through the caller's own protection: the very plan the gateway would
run (masks, row filters, column decisions), transpiled for SQLite. A column the caller
may not see is absent, as it would be from a real answer.

Columns named like one of the caller's attributes (e.g. ``district``) take the caller's
value, so that a row filter such as ``district = {principal.district}`` keeps the samples
instead of hiding them all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from gateway.catalog.model import Catalog, Column, Table
from gateway.demo.ids import credit_code_check_char, id_number_check_char, luhn_check_digit
from gateway.domain import DecisionSnapshot, Principal
from gateway.query.plan import Planner
from gateway.query.rewrite.masks import MaskContext, sqlite_functions

__all__ = ["Samples", "synthetic_value"]

#: A fixed key for pseudonyms of synthetic values: they identify nobody.
_SAMPLE_KEY = bytes(range(32))
_NAMES = ("张三丰", "李四", "王小明", "欧阳娜娜", "赵敏")


def _id_number(i: int) -> str:
    first17 = f"37010219900307{100 + i:03d}"
    return first17 + id_number_check_char(first17)


def _credit_code(i: int) -> str:
    first17 = f"91370100MA3C{i:04d}X"[:17].ljust(17, "0")
    return first17 + credit_code_check_char(first17)


def _bank_card(i: int) -> str:
    payload = f"622202000000{i:06d}"
    return payload + luhn_check_digit(payload)


def synthetic_value(column: Column, i: int, regions: Mapping[str, str]) -> object:
    """A well-formed made-up value for ``column`` (row ``i``), chosen by its name and type."""
    name = column.name.lower()
    if column.type == "integer":
        return 1000 + i
    if column.type == "decimal":
        return f"{1234.5 + i * 100:.2f}"
    if column.type == "date":
        return date(1990, 3, 7 + i).isoformat()
    if column.type == "timestamp":
        return datetime(2026, 1, 5, 9, 30 + i).isoformat(sep=" ")
    if column.type == "boolean":
        return i % 2
    if "credit" in name or "uscc" in name:
        return _credit_code(i)
    if "id_number" in name or name in {"sfzh", "id_card", "identity_number"}:
        return _id_number(i)
    if "phone" in name or "mobile" in name or "tel" in name:
        return f"1380013{8000 + i:04d}"
    if "card" in name or "account" in name:
        return _bank_card(i)
    if "district" in name:
        districts = sorted(regions) or ["历下区"]
        return districts[i % len(districts)]
    if "address" in name or "addr" in name:
        return f"济南市历下区示例路{i + 1}号"
    if "email" in name:
        return f"user{i + 1}@example.gov.cn"
    if name.endswith("name") or name in {"xm", "legal_rep"}:
        return _NAMES[i % len(_NAMES)]
    return f"示例{i + 1}"


@dataclass(frozen=True, slots=True)
class Samples:
    """Builds sample previews for one policy version's catalog."""

    catalog: Catalog
    max_rows_ceiling: int
    rows: int = 3

    def preview(
        self, table: Table, principal: Principal, snapshot: DecisionSnapshot
    ) -> dict[str, Any]:
        """``{"columns": [...], "rows": [...]}`` of ``table`` as ``principal`` would
        receive them, or raises the refusal the query path would raise."""
        # The catalog's own names, not user text: checked identifiers (catalog/load.py).
        sql = "SELECT * FROM " + table.qualified_name  # noqa: S608
        return {"table": table.qualified_name} | self.run(sql, principal, snapshot)

    def run(self, sql: str, principal: Principal, snapshot: DecisionSnapshot) -> dict[str, Any]:
        """Any consumer query, planned for ``principal`` as the gateway would plan it (for
        SQLite), run over synthetic rows of every table it reads (explain's preview)."""
        planner = Planner(
            self.catalog,
            backend_dialects=dict.fromkeys(
                {d.backend for d in self.catalog.datasets.values()}, "sqlite"
            ),
            mask_context=lambda _p: MaskContext(
                pseudonym_key=_SAMPLE_KEY, regions=self.catalog.regions
            ),
            max_rows_ceiling=self.max_rows_ceiling,
            cache_size=1,
        )
        plan, _ = planner.plan(sql, principal, snapshot)
        conn = sqlite3.connect(":memory:")
        try:
            for fname, nargs, func in sqlite_functions():
                conn.create_function(fname, nargs, func, deterministic=True)
            for name in plan.tables:
                found = self.catalog.table(name)
                if found is not None:
                    self._load(conn, found, principal)
            cursor = conn.execute(plan.sql)
            rows = [list(r) for r in cursor.fetchmany(self.rows)]
        finally:
            conn.close()
        return {
            "synthetic": True,
            "columns": [c.to_json() for c in plan.columns],
            "rows": rows,
        }

    def _load(self, conn: sqlite3.Connection, table: Table, principal: Principal) -> None:
        schema, _, name = table.source.rpartition(".")
        attached = {str(r[1]) for r in conn.execute("PRAGMA database_list")}
        if schema and schema not in attached:
            conn.execute("ATTACH DATABASE ':memory:' AS " + _quote(schema))
        target = (_quote(schema) + "." if schema else "") + _quote(name)
        columns = list(table.columns.values())
        conn.execute(f"CREATE TABLE {target} (" + ", ".join(_quote(c.name) for c in columns) + ")")
        attributes = principal.template_values()
        values = [
            [attributes.get(c.name, synthetic_value(c, i, self.catalog.regions)) for c in columns]
            for i in range(self.rows)
        ]
        marks = ", ".join("?" for _ in columns)
        conn.executemany(f"INSERT INTO {target} VALUES ({marks})", values)  # noqa: S608 - our own names, quoted


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
