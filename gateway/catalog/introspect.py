"""Draft catalog entries from a live database: ``gateway catalog import``.

A department registering its own tables should not type every column by hand, nor guess
which columns hold personal identifiers. This reads the schema (tables, columns, types,
comments) through the backend's own connection, samples a few values of each text column
*in memory only* to recognise Chinese personal identifiers (公民身份号码, mobile numbers,
bank cards, 统一社会信用代码 — the same recognisers as the audit log's identifier
redaction), and writes a commented TOML draft for catalog.toml with a suggested
sensitivity and mask per column. No sampled value is written anywhere: the draft says only
"k of n sampled values look like …".

The draft is a starting point: it describes columns, and `gateway check` (and a policy
proposal) refuses it until every column has a rule in policy.csv — nothing is shared
because it was imported.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from gateway.audit.identifiers import classify
from gateway.backends import open_backend
from gateway.backends.config import BackendConfig
from gateway.dsn import parse_dsn

__all__ = [
    "ColumnInfo",
    "Reader",
    "Suggestion",
    "TableInfo",
    "draft_toml",
    "open_reader",
    "read_schema",
    "sample_kinds",
    "suggest",
]


@dataclass(frozen=True, slots=True)
class Reader:
    """Runs catalogue reads on the database: ``run(sql, max_rows) -> rows``."""

    dialect: str
    run: Callable[[str, int], list[tuple[Any, ...]]]


@contextmanager
def open_reader(dsn: str, *, timeout_s: float = 30.0) -> Iterator[Reader]:
    """A reader for ``dsn``. SQLite is opened read-only by hand: the gateway's own SQLite
    backend refuses schema reads (its authorizer admits only what consumers may run);
    the other backends read through their normal connection."""
    parsed = parse_dsn(dsn)
    if parsed.kind == "sqlite":
        conn = sqlite3.connect(f"file:{parsed.path}?mode=ro", uri=True)
        try:
            yield Reader("sqlite", lambda sql, n: conn.execute(sql).fetchmany(n))
        finally:
            conn.close()
        return
    backend = open_backend(BackendConfig(name="import", kind=parsed.kind, dsn=dsn))
    try:
        yield Reader(
            backend.dialect,
            lambda sql, n: backend.execute(sql, max_rows=n, timeout_s=timeout_s).rows,
        )
    finally:
        backend.close()


#: Per dialect: (table, column, data type, length, column comment, table comment) of the
#: connection's current schema/database, in table and column order.
_SCHEMA_SQL = {
    "sqlite": (
        "SELECT m.name, p.name, p.type, NULL, NULL, NULL FROM sqlite_master AS m "
        "JOIN pragma_table_info(m.name) AS p WHERE m.type IN ('table', 'view') "
        "AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid"
    ),
    "postgres": (
        "SELECT c.table_name, c.column_name, c.data_type, c.character_maximum_length, "
        "col_description(format('%I.%I', c.table_schema, c.table_name)::regclass, "
        "c.ordinal_position), obj_description(format('%I.%I', c.table_schema, "
        "c.table_name)::regclass, 'pg_class') FROM information_schema.columns AS c "
        "WHERE c.table_schema = current_schema() ORDER BY c.table_name, c.ordinal_position"
    ),
    "mysql": (
        "SELECT c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.CHARACTER_MAXIMUM_LENGTH, "
        "c.COLUMN_COMMENT, t.TABLE_COMMENT FROM information_schema.COLUMNS AS c "
        "JOIN information_schema.TABLES AS t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA "
        "AND t.TABLE_NAME = c.TABLE_NAME WHERE c.TABLE_SCHEMA = DATABASE() "
        "ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION"
    ),
    "duckdb": (
        "SELECT table_name, column_name, data_type, character_maximum_length, NULL, NULL "
        "FROM information_schema.columns WHERE table_schema = current_schema() "
        "ORDER BY table_name, ordinal_position"
    ),
}

_QUOTE = {"mysql": "`"}


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    name: str
    db_type: str
    length: int | None = None
    comment: str = ""


@dataclass(frozen=True, slots=True)
class TableInfo:
    name: str
    columns: tuple[ColumnInfo, ...]
    comment: str = ""


@dataclass(frozen=True, slots=True)
class Suggestion:
    type: str
    sensitivity: str
    mask: str | None
    #: Why (e.g. "18 of 20 sampled values look like 公民身份号码").
    reason: str


def _q(dialect: str, name: str) -> str:
    quote = _QUOTE.get(dialect, '"')
    return quote + name.replace(quote, quote * 2) + quote


def read_schema(reader: Reader) -> list[TableInfo]:
    """The tables and columns of the database's current schema (database on MariaDB)."""
    tables: dict[str, list[ColumnInfo]] = {}
    comments: dict[str, str] = {}
    for table, column, db_type, length, col_comment, table_comment in reader.run(
        _SCHEMA_SQL[reader.dialect], 100_000
    ):
        tables.setdefault(str(table), []).append(
            ColumnInfo(
                name=str(column),
                db_type=str(db_type or "").lower(),
                length=int(length) if length else None,
                comment=str(col_comment or ""),
            )
        )
        comments[str(table)] = str(table_comment or "")
    return [TableInfo(t, tuple(cols), comments[t]) for t, cols in tables.items()]


def sample_kinds(reader: Reader, table: str, column: str, *, n: int) -> tuple[dict[str, int], int]:
    """How many of up to ``n`` non-null values of ``column`` each identifier kind
    recognises, and how many were looked at. The values themselves are dropped here."""
    d = reader.dialect
    sql = (
        f"SELECT {_q(d, column)} FROM {_q(d, table)} "  # noqa: S608 - quoted names read from the schema
        f"WHERE {_q(d, column)} IS NOT NULL"
    )
    rows = reader.run(sql, n)
    counts: dict[str, int] = {}
    for (value,) in rows:
        found = classify(str(value))
        if found is not None:
            counts[found[0].name] = counts.get(found[0].name, 0) + 1
    return counts, len(rows)


def gateway_type(db_type: str) -> str:
    t = db_type.lower()
    if "bool" in t or t == "tinyint(1)":
        return "boolean"
    if "int" in t:
        return "integer"
    if any(k in t for k in ("numeric", "decimal", "real", "double", "float", "money")):
        return "decimal"
    if "timestamp" in t or "datetime" in t:
        return "timestamp"
    if t == "date":
        return "date"
    return "text"


#: identifier kind -> (label, sensitivity, mask)
_KIND_SUGGESTIONS = {
    "cn_id": ("公民身份号码", "sensitive_personal", "id_number"),
    "bank_card": ("银行卡号", "sensitive_personal", "bank_card"),
    "phone": ("手机号码", "personal", "phone"),
    "uscc": ("统一社会信用代码", "public", None),
}
#: Words in a column's name or comment that say what it holds (names and addresses have
#: no check digit to recognise them by).
_NAME_HINTS = {
    "name": ("姓名", "personal", "name", ("name", "xm", "姓名", "名字")),
    "address": ("住址", "personal", "address", ("address", "addr", "住址", "地址")),
    "cn_id": ("公民身份号码", "sensitive_personal", "id_number", ("id_number", "sfzh", "身份证")),
    "phone": ("手机号码", "personal", "phone", ("phone", "mobile", "sjhm", "手机", "电话")),
    "bank_card": ("银行卡号", "sensitive_personal", "bank_card", ("bank_card", "card_no", "卡号")),
}


def suggest(column: ColumnInfo, kinds: dict[str, int], sampled: int) -> Suggestion:
    """Sensitivity and mask for ``column``, from sampled values first, then its name."""
    ctype = gateway_type(column.db_type)
    if sampled and kinds:
        kind, hits = max(kinds.items(), key=lambda kv: kv[1])
        if hits * 2 >= sampled and kind in _KIND_SUGGESTIONS:
            label, sensitivity, mask = _KIND_SUGGESTIONS[kind]
            return Suggestion(
                ctype, sensitivity, mask, f"{hits} of {sampled} sampled values look like {label}"
            )
    text = f"{column.name} {column.comment}".lower()
    for label, sensitivity, mask, words in _NAME_HINTS.values():
        if any(w in text for w in words):
            return Suggestion(ctype, sensitivity, mask, f"the name or comment suggests {label}")
    return Suggestion(ctype, "internal", None, "no personal identifier recognised")


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def draft_toml(
    dataset: str,
    owner: str,
    backend: str,
    tables: Sequence[tuple[TableInfo, Iterable[tuple[ColumnInfo, Suggestion]]]],
) -> str:
    """The catalog.toml section of a new dataset, every suggestion commented."""
    lines = [
        f"# Drafted by `gateway catalog import` from backend {backend!r}.",
        "# Review every line: titles, descriptions, sensitivity and masks are suggestions.",
        "# Nothing is shared until policy.csv has a rule for each column (`gateway check`).",
        f"[datasets.{dataset}]",
        f"title = {{ zh = {_toml_str(dataset)}, en = {_toml_str(dataset)} }}",
        f"owner = {_toml_str(owner)}",
        f"backend = {_toml_str(backend)}",
        'sharing_class = "conditional"   # unconditional | conditional | not_shared',
        'grade = "general"               # core | important | general',
        'update_cycle = "daily"',
        'description = { zh = "待补充", en = "To be described" }',
        "",
    ]
    for table, columns in tables:
        name = table.name.lower()
        lines += [
            f"[datasets.{dataset}.tables.{name}]",
            f"source = {_toml_str(table.name)}",
            f"description = {{ zh = {_toml_str(table.comment or table.name)}, "
            f"en = {_toml_str(table.name)} }}",
            "",
        ]
        for column, s in columns:
            lines += [
                f"[[datasets.{dataset}.tables.{name}.columns]]",
                f"name = {_toml_str(column.name.lower())}",
                f"type = {_toml_str(s.type)}   # {column.db_type}",
                f"sensitivity = {_toml_str(s.sensitivity)}   # {s.reason}",
            ]
            if s.mask:
                lines.append(f"default_mask = {_toml_str(s.mask)}")
            if column.length:
                lines.append(f"length = {column.length}")
            lines += [
                f"description = {{ zh = {_toml_str(column.comment or column.name)}, "
                f"en = {_toml_str(column.name)} }}",
                "",
            ]
    return "\n".join(lines)
