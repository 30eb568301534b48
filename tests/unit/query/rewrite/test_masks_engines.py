"""Every mask, executed on the four real engines, must return exactly ``mask_value``.

SQLite (in memory, with ``sqlite_functions()`` registered) and DuckDB (in memory) always
run; PostgreSQL and MariaDB come from the ``pg_dsn`` / ``mysql_dsn`` fixtures and use
session temporary tables, so concurrent test runs cannot collide. The masked SQL is run
without driver parameters (drivers would read ``%`` in ``s.n % 500`` as a placeholder),
as the gateway runs it.
"""

from __future__ import annotations

import functools
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import zip_longest
from typing import Any
from urllib.parse import urlparse

import duckdb
import psycopg
import pymysql
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from gateway.catalog import Catalog
from gateway.catalog.load import parse_catalog
from gateway.domain import MaskSpec, Principal
from gateway.errors import GatewayError
from gateway.policy.engine import MODEL_CONF, CasbinPolicyEngine, PolicyFiles
from gateway.query.plan import Planner
from gateway.query.rewrite.masks import (
    MaskContext,
    check_mask_spec,
    derive_pseudonym_key,
    mask_expression,
    mask_value,
    sqlite_functions,
)

CTX = MaskContext(
    pseudonym_key=derive_pseudonym_key(b"m" * 32, "ybj"),
    regions={"历下区": "济南市", "市中区": "济南市", "市南区": "青岛市", "市北区": "青岛市"},
)


def id_number(region: str, birth: str, seq: str) -> str:
    """A valid 18-character citizen ID (GB 11643-1999 check character)."""
    first17 = region + birth + seq
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
    return first17 + "10X98765432"[total % 11]


IDS = [
    id_number("110105", "19491231", "002"),  # ends in X
    id_number("370102", "19300101", "123"),
    id_number("370211", "20081231", "456"),
]
assert IDS[0].endswith("X")

TEXTS: list[str | None] = [
    "张三丰",
    "张三",
    "张三",  # duplicate: pseudonyms group together
    "欧阳娜娜",
    "𠮷野家",  # outside the BMP: 4 bytes in UTF-8, 2 code units in UTF-16
    "王",
    "",
    *IDS,
    "13800138000",
    "19912345678",
    "6222021234567890",
    "6217000010001234567",
    "山东省济南市历下区泉城路1号",
    "济南市",
    "青岛市市南区香港中路10号",
    "历下区",
    "市南区",
    "市中区",
    "未知区",
    "历下区 ",  # trailing space: MariaDB's PAD SPACE collation would match '历下区'
    " 历下区",
    "a",
    "ab",
    "abc",
    "O'Brien",
    "back\\slash",
    "100%",
    "  ",
    "e\u0301tude",  # combining accent: code points, not graphemes
    "👨\u200d👩\u200d👧 family",
    "👍🏽",
    "tab\tnew\nline",
    "ß",
    "12345678901234567890",
    "李琪",
    "王琬瑜",
    "zhangsan@example.com",
    "a@b.cn",
    "@nolocal.com",
    "x@y@z",
    "李四@政务.中国",
    "no-at-sign",
    f"申请人身份证{IDS[1]}，复核人{IDS[0]}。",
    f"{IDS[2]}1234",  # 22 digits: the first 18 are replaced
    "编号12345-678 与 99",
    "$1 and \\1 and &",
    None,
]
INTS: list[int | None] = [
    0,
    1,
    -1,
    7,
    -7,
    499,
    500,
    501,
    -499,
    -500,
    -501,
    1234,
    -1234,
    13800138000,
    6222021234567890,
    10**15,
    2**62,
    -(2**62),
    9_000_000_000_000_000_000,
    -9_000_000_000_000_000_000,
    None,
]
INT4S: list[int | None] = [2147483647, 2147483000, -2147483648, 0, -1, None]
DATES: list[date | None] = [
    date(1930, 1, 1),
    date(2008, 12, 31),
    date(2000, 2, 29),
    date(1970, 1, 1),
    date(1000, 1, 1),
    date(9999, 12, 31),
    None,
]
TIMESTAMPS: list[datetime | None] = [
    datetime(2008, 12, 31, 23, 59, 59),
    datetime(1930, 1, 1),
    datetime(2000, 1, 1, 12, 0, 0),
    None,
]
DECIMALS: list[Decimal | None] = [Decimal("1234.50"), Decimal("-0.01"), Decimal("0.00"), None]
BOOLS: list[bool | None] = [True, False, None]

COLUMNS = {
    "t": "text",
    "n": "integer",
    "i4": "integer",
    "d": "date",
    "ts": "timestamp",
    "dec": "decimal",
    "b": "boolean",
}
# One row per index; shorter columns are padded with NULL (TEXTS, the longest, ends in
# None, so the last row is all NULL).
ROWS: list[dict[str, Any]] = [
    {"id": i + 1, **dict(zip(COLUMNS, values, strict=True))}
    for i, values in enumerate(zip_longest(TEXTS, INTS, INT4S, DATES, TIMESTAMPS, DECIMALS, BOOLS))
]
assert all(row[c] is None for c in COLUMNS for row in ROWS[-1:])

CASES: list[tuple[str, str]] = [
    ("partial", "t"),
    ("partial:first=1", "t"),
    ("partial:first=1;last=1", "t"),
    ("partial:first=2;last=3;char=#", "t"),
    ("partial:first=3;last=4;fill=4", "n"),
    ("partial:last=2;fill=length;char=●", "n"),
    ("partial:first=0;last=0;fill=1", "t"),
    ("name:fill=length", "t"),
    ("name:fill=length;char=＊", "t"),
    ("id_number:first=6;last=4;fill=length", "t"),
    ("phone:fill=length", "n"),
    ("bank_card:last=6", "t"),
    ("address:first=3;fill=length", "t"),
    ("email", "t"),
    ("email:first=2;fill=length", "t"),
    ("email:first=0;fill=1;char=x", "t"),
    ("regex:pattern=[0-9]{17}[0-9Xx];replace=******", "t"),
    ("regex:pattern=\\d{17}[\\dXx]", "t"),
    ("regex:pattern=[0-9]+;replace=#", "t"),
    ("regex:pattern=[0-9]{2,3};replace=<$1>", "t"),
    ("regex:pattern=[^0-9 ]+;replace=_", "t"),
    ("regex:pattern=身份证;replace=ID", "t"),
    ("regex:pattern=[a-z]+@[a-z.]+;replace=[email]", "t"),
    ("regex:pattern=\\$1", "t"),
    ("month", "d"),
    ("month", "ts"),
    ("date_shift:days=30;key=t", "d"),
    ("date_shift:days=1;key=n", "d"),
    ("date_shift:days=3650;key=t", "ts"),
    ("name", "t"),
    ("id_number", "t"),
    ("phone", "t"),
    ("phone", "n"),
    ("bank_card", "t"),
    ("bank_card", "n"),
    ("address", "t"),
    ("address:1", "t"),
    ("address:3", "t"),
    ("address:20", "t"),
    *[("nullify", c) for c in COLUMNS],
    ("constant", "t"),
    ("constant", "n"),
    ("constant", "d"),
    ("constant", "ts"),
    ("constant", "dec"),
    ("constant", "b"),
    ("constant:已脱敏", "t"),
    ("constant:O'Brien \\ 100% ok", "t"),
    ("year", "d"),
    ("year", "ts"),
    ("bucket:1", "n"),
    ("bucket:7", "n"),
    ("bucket:500", "n"),
    ("bucket:1000", "i4"),
    ("bucket:1000000000000000", "n"),
    ("city", "t"),
    ("pseudonym", "t"),
    ("pseudonym", "n"),
    ("pseudonym", "i4"),
]

ENGINES = ["sqlite", "duckdb", "postgres", "mysql"]


@dataclass
class Engine:
    """One connected engine holding the ``sample`` table (and a scratch table ``h``)."""

    dialect: str
    run: Callable[[str], list[tuple[Any, ...]]]
    #: Replace the rows of ``h(id, v, n)`` by the given (v, n) pairs.
    fill_scratch: Callable[[Sequence[tuple[str | None, int | None]]], None]


def _sqlite_row(row: dict[str, Any]) -> tuple[Any, ...]:
    # SQLite stores dates as ISO-8601 text, as the gateway's SQLite backends do.
    d, ts, dec = row["d"], row["ts"], row["dec"]
    return (
        row["id"],
        row["t"],
        row["n"],
        row["i4"],
        None if d is None else d.isoformat(),
        None if ts is None else ts.isoformat(sep=" "),
        None if dec is None else str(dec),
        row["b"],
    )


def _plain_row(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["id"], *(row[c] for c in COLUMNS))


@pytest.fixture(scope="module")
def sqlite_engine() -> Iterator[Engine]:
    conn = sqlite3.connect(":memory:")
    for name, n_args, function in sqlite_functions():
        conn.create_function(name, n_args, function, deterministic=True)
    conn.execute(
        "CREATE TABLE sample (id INTEGER PRIMARY KEY, t TEXT, n INTEGER, i4 INTEGER,"
        " d TEXT, ts TEXT, dec NUMERIC, b INTEGER)"
    )
    conn.executemany("INSERT INTO sample VALUES (?,?,?,?,?,?,?,?)", map(_sqlite_row, ROWS))
    conn.execute("CREATE TABLE h (id INTEGER PRIMARY KEY, v TEXT, n INTEGER)")

    def fill(values: Sequence[tuple[str | None, int | None]]) -> None:
        conn.execute("DELETE FROM h")
        conn.executemany("INSERT INTO h VALUES (?,?,?)", [(i, *v) for i, v in enumerate(values)])

    yield Engine("sqlite", lambda sql: conn.execute(sql).fetchall(), fill)
    conn.close()


@pytest.fixture(scope="module")
def duckdb_engine() -> Iterator[Engine]:
    conn = duckdb.connect(":memory:", config={"enable_external_access": False})
    conn.execute(
        "CREATE TABLE sample (id INTEGER PRIMARY KEY, t VARCHAR, n BIGINT, i4 INTEGER,"
        " d DATE, ts TIMESTAMP, dec DECIMAL(12, 2), b BOOLEAN)"
    )
    conn.executemany("INSERT INTO sample VALUES (?,?,?,?,?,?,?,?)", [_plain_row(r) for r in ROWS])
    conn.execute("CREATE TABLE h (id INTEGER, v VARCHAR, n BIGINT)")

    def fill(values: Sequence[tuple[str | None, int | None]]) -> None:
        conn.execute("DELETE FROM h")
        conn.executemany("INSERT INTO h VALUES (?,?,?)", [(i, *v) for i, v in enumerate(values)])

    yield Engine("duckdb", lambda sql: conn.execute(sql).fetchall(), fill)
    conn.close()


@pytest.fixture(scope="module")
def postgres_engine(pg_dsn: str) -> Iterator[Engine]:
    conn = psycopg.connect(pg_dsn, autocommit=True)
    conn.execute(
        "CREATE TEMP TABLE sample (id INTEGER PRIMARY KEY, t VARCHAR(200), n BIGINT,"
        " i4 INTEGER, d DATE, ts TIMESTAMP, dec NUMERIC(12, 2), b BOOLEAN)"
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO sample VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", [_plain_row(r) for r in ROWS]
        )
    conn.execute("CREATE TEMP TABLE h (id INTEGER, v TEXT, n BIGINT)")

    def run(sql: str) -> list[tuple[Any, ...]]:
        return conn.execute(sql.encode()).fetchall()  # bytes: never a parameter template

    def fill(values: Sequence[tuple[str | None, int | None]]) -> None:
        conn.execute("DELETE FROM h")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO h VALUES (%s,%s,%s)", [(i, *v) for i, v in enumerate(values)]
            )

    yield Engine("postgres", run, fill)
    conn.close()


@pytest.fixture(scope="module")
def mysql_engine(mysql_dsn: str) -> Iterator[Engine]:
    u = urlparse(mysql_dsn)
    conn = pymysql.connect(
        host=u.hostname or "127.0.0.1",
        port=u.port or 3306,
        user=u.username or "root",
        password=u.password or "",
        database=(u.path or "/test").lstrip("/"),
        charset="utf8mb4",
        autocommit=True,
    )
    text = "VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE TEMPORARY TABLE sample (id INTEGER PRIMARY KEY, t {text}, n BIGINT,"
            " i4 INTEGER, d DATE, ts DATETIME, `dec` DECIMAL(12, 2), b BOOLEAN)"
        )
        cur.executemany(
            "INSERT INTO sample VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", [_plain_row(r) for r in ROWS]
        )
        cur.execute(f"CREATE TEMPORARY TABLE h (id INTEGER, v {text}, n BIGINT)")

    def run(sql: str) -> list[tuple[Any, ...]]:
        with conn.cursor() as cur:
            cur.execute(sql)  # no args: PyMySQL does no %-formatting
            return list(cur.fetchall())

    def fill(values: Sequence[tuple[str | None, int | None]]) -> None:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM h")
            cur.executemany(
                "INSERT INTO h VALUES (%s,%s,%s)", [(i, *v) for i, v in enumerate(values)]
            )

    yield Engine("mysql", run, fill)
    conn.close()


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    result: Engine = request.getfixturevalue(f"{request.param}_engine")
    return result


def normalise(value: object) -> object:
    """Driver differences that are not value differences: bytes for text, Decimal for int."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8")
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


def masked_select(
    engine: Engine, masks: Sequence[tuple[MaskSpec, str, str]], table: str, ctx: MaskContext = CTX
) -> str:
    """``SELECT s.id, <mask> AS m0, ... FROM <table> AS s ORDER BY s.id`` for the engine."""
    columns: list[exp.Expr] = [exp.column("id", table="s")]
    for i, (spec, column, column_type) in enumerate(masks):
        expr = mask_expression(
            spec,
            exp.column(column, table="s", quoted=True),
            column_type=column_type,
            dialect=engine.dialect,
            ctx=ctx,
        )
        columns.append(exp.alias_(expr, f"m{i}"))
    select = (
        exp.select(*columns)
        .from_(exp.to_table(table).as_("s"))
        .order_by(exp.column("id", table="s"))
    )
    return select.sql(dialect=engine.dialect)


@pytest.mark.parametrize(("text", "column"), CASES, ids=[f"{t}-{c}" for t, c in CASES])
def test_backend_returns_mask_value(engine: Engine, text: str, column: str) -> None:
    spec = MaskSpec.parse(text)
    column_type = COLUMNS[column]
    rows = engine.run(masked_select(engine, [(spec, column, column_type)], "sample"))
    assert [r[0] for r in rows] == [row["id"] for row in ROWS]
    key = spec.arg.rpartition("key=")[2] if spec.kind == "date_shift" and spec.arg else None

    def reference(row: dict[str, Any]) -> object:
        value = row[column]
        if engine.dialect == "sqlite" and isinstance(value, date):
            value = _sqlite_row(row)[list(COLUMNS).index(column) + 1]
        key_value = row[key] if key else None
        return mask_value(spec, value, column_type=column_type, ctx=CTX, key=key_value)

    mismatches = [
        (row[column], got, expected)
        for row, (_, got) in zip(ROWS, rows, strict=True)
        if (expected := reference(row)) != normalise(got)
        or type(normalise(got)) is not type(expected)
    ]
    assert mismatches == []


def test_city_without_regions_is_null_everywhere(engine: Engine) -> None:
    ctx = MaskContext(pseudonym_key=CTX.pseudonym_key, regions={})
    rows = engine.run(masked_select(engine, [(MaskSpec("city"), "t", "text")], "sample", ctx))
    assert {r[1] for r in rows} == {None}


def test_pseudonyms_differ_between_departments_in_the_backend(engine: Engine) -> None:
    other = MaskContext(pseudonym_key=derive_pseudonym_key(b"m" * 32, "gaj"), regions={})
    spec = MaskSpec("pseudonym")
    mine = engine.run(masked_select(engine, [(spec, "t", "text")], "sample"))
    theirs = engine.run(masked_select(engine, [(spec, "t", "text")], "sample", other))
    pairs = [(a[1], b[1]) for a, b in zip(mine, theirs, strict=True) if a[1] is not None]
    assert pairs
    assert all(a != b for a, b in pairs)


def _outer(engine: Engine, inner_masks: Sequence[tuple[str, str, str]], outer_sql: str) -> str:
    """``outer_sql`` (PostgreSQL dialect, reading table ``x``) with ``x`` replaced by the
    derived table of the given ``(mask, column, output name)``, as the rewrite does."""
    inner = exp.select(
        *(
            exp.alias_(
                mask_expression(
                    MaskSpec.parse(text),
                    exp.column(column, table="s", quoted=True),
                    column_type=COLUMNS[column],
                    dialect=engine.dialect,
                    ctx=CTX,
                ),
                alias,
                quoted=True,
            )
            for text, column, alias in inner_masks
        )
    ).from_(exp.to_table("sample").as_("s"))
    tree = sqlglot.parse_one(outer_sql, read="postgres")
    table = tree.find(exp.Table)
    assert table is not None
    table.replace(exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("x"))))
    return tree.sql(dialect=engine.dialect)


def test_nullified_columns_keep_their_type_in_outer_clauses(engine: Engine) -> None:
    # An untyped NULL would be `text` in a PostgreSQL derived table: `x.n > 5` would fail.
    sql = _outer(
        engine,
        [("nullify", c, c) for c in ("t", "n", "i4", "d", "ts", "dec")],
        "SELECT COUNT(*) FROM x WHERE x.n > 5 OR x.i4 < 0 OR x.d > CAST('2000-01-01' AS DATE)"
        " OR x.ts > CAST('2000-01-01 00:00:00' AS TIMESTAMP) OR x.dec > 1.5 OR x.t = 'a'",
    )
    assert normalise(engine.run(sql)[0][0]) == 0


def test_outer_clauses_see_only_masked_values(engine: Engine) -> None:
    sql = _outer(
        engine,
        [("name", "t", "t"), ("pseudonym", "t", "p"), ("year", "d", "d"), ("bucket:500", "n", "n")],
        "SELECT x.t, x.n, COUNT(*) FROM x WHERE x.t = '张**' AND x.p IS NOT NULL"
        " GROUP BY x.t, x.n ORDER BY x.t, x.n",
    )
    rows = [tuple(normalise(v) for v in r) for r in engine.run(sql)]
    # 张三丰, 张三, 张三 are the rows starting with 张; their `n` are 0, 1, -1.
    n_buckets = [
        mask_value(MaskSpec.parse("bucket:500"), v, column_type="integer", ctx=CTX)
        for v in INTS[:3]
    ]
    assert rows == sorted(("张**", b, n_buckets.count(b)) for b in set(n_buckets))

    sql = _outer(
        engine,
        [("pseudonym", "t", "t")],
        "SELECT x.t, COUNT(*) FROM x GROUP BY x.t HAVING COUNT(*) > 1",
    )
    rows = [tuple(normalise(v) for v in r) for r in engine.run(sql)]
    token = mask_value(MaskSpec("pseudonym"), "张三", column_type="text", ctx=CTX)
    assert rows == [(token, 2)]


# ------------------------------------------------------------------ randomised cross-check

TEXT_MASKS = [
    "name",
    "id_number",
    "phone",
    "bank_card",
    "address",
    "address:2",
    "constant",
    "city",
    "pseudonym",
]
INT_MASKS = ["phone", "bank_card", "pseudonym", "constant", "nullify"]

cjk = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
any_char = st.characters(codec="utf-8", exclude_characters="\x00")
texts = st.one_of(
    st.none(),
    st.text(alphabet=cjk, max_size=6),
    st.text(alphabet=any_char, max_size=25),
    st.sampled_from(["历下区", "市南区", "历下区 ", *IDS]),
)
ints = st.one_of(st.none(), st.integers(min_value=-(2**62), max_value=2**62))


@pytest.mark.parametrize("engine_name", ENGINES)
def test_random_values_match_the_reference(
    engine_name: str, request: pytest.FixtureRequest
) -> None:
    engine: Engine = request.getfixturevalue(f"{engine_name}_engine")
    in_process = engine_name in {"sqlite", "duckdb"}

    @settings(
        max_examples=120 if in_process else 40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        values=st.lists(st.tuples(texts, ints), min_size=1, max_size=8),
        width=st.integers(min_value=1, max_value=10**15),
    )
    def check(values: list[tuple[str | None, int | None]], width: int) -> None:
        engine.fill_scratch(values)
        masks = [(MaskSpec.parse(t), "v", "text") for t in TEXT_MASKS]
        masks += [(MaskSpec.parse(t), "n", "integer") for t in INT_MASKS]
        masks.append((MaskSpec("bucket", str(width)), "n", "integer"))
        rows = engine.run(masked_select(engine, masks, "h"))
        assert len(rows) == len(values)
        for (v, n), row in zip(values, rows, strict=True):
            for (spec, column, column_type), got in zip(masks, row[1:], strict=True):
                raw = v if column == "v" else n
                expected = mask_value(spec, raw, column_type=column_type, ctx=CTX)
                assert (str(spec), raw, normalise(got)) == (str(spec), raw, expected)

    check()


# Patterns whose matches the engines could choose differently if they disagreed on
# leftmost-first against leftmost-longest, on greediness or on repetition bounds.
PATTERNS = [
    "[0-9]{17}[0-9Xx]",
    "a?ab?",
    "[ab]?b+",
    "[0-9]{2,4}",
    "x*y+",
    "[^a]+",
    "ab{0,2}a?",
    "[ab]?[bc]{0,3}c",
    "\\d+[a-c]*",
    "李+[0-9]?",
]
partial_specs = st.builds(
    "partial:first={};last={};char={};fill={}".format,
    st.integers(min_value=0, max_value=4),
    st.integers(min_value=0, max_value=4),
    st.sampled_from(["*", "#", "●", "＊", "x"]),
    st.one_of(st.just("length"), st.integers(min_value=1, max_value=5).map(str)),
)
regex_texts = st.one_of(st.none(), st.text(alphabet="abcxy0123456789X李 \n", max_size=30))


@pytest.mark.parametrize("engine_name", ENGINES)
def test_random_partial_and_regex_masks_match_the_reference(
    engine_name: str, request: pytest.FixtureRequest
) -> None:
    engine: Engine = request.getfixturevalue(f"{engine_name}_engine")
    in_process = engine_name in {"sqlite", "duckdb"}

    @settings(
        max_examples=150 if in_process else 50,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        values=st.lists(st.one_of(texts, regex_texts), min_size=1, max_size=8),
        partial=partial_specs,
        email=partial_specs.map(lambda p: "email:" + p.split(":", 1)[1]),
    )
    def check(values: list[str | None], partial: str, email: str) -> None:
        engine.fill_scratch([(v, None) for v in values])
        masks = [(MaskSpec.parse(partial), "v", "text"), (MaskSpec.parse(email), "v", "text")]
        masks += [(MaskSpec("regex", f"pattern={p};replace=<>"), "v", "text") for p in PATTERNS]
        rows = engine.run(masked_select(engine, masks, "h"))
        for v, row in zip(values, rows, strict=True):
            for (spec, _, column_type), got in zip(masks, row[1:], strict=True):
                expected = mask_value(spec, v, column_type=column_type, ctx=CTX)
                assert (str(spec), v, normalise(got)) == (str(spec), v, expected)

    check()


# ------------------------------------------------- attacks through the planner, every clause

# Officers' masks on four catalog tables over the same physical `sample` table. A query
# through the planner must compute every clause on masked values only: each expected
# answer below is computed in Python from mask_value, never from the raw values.
OFFICER_MASKS = {
    "names": ("t", "name:fill=length"),
    "remarks": ("t", "regex:pattern=[0-9]{17}[0-9Xx];replace=[ID]"),
    "emails": ("t", "email"),
    "months": ("d", "month"),
    "shifted": ("ts", "date_shift:days=30;key=t"),
}
TODAY = datetime(2026, 11, 23, tzinfo=UTC)
TEXTS_OF = {"description": {"zh": "测试", "en": "test"}}
OFFICER = Principal("sys-a", "mzj", {}, frozenset({"statistics"}))


def _officer_catalog() -> Catalog:
    column_types = {"id": "integer", "t": "text", "d": "date", "ts": "timestamp"}
    tables = {
        name: {
            **TEXTS_OF,
            "source": "sample",
            "columns": [
                {"name": c, "type": column_types[c], "sensitivity": "personal", **TEXTS_OF}
                for c in ("id", "t", "d", "ts")
            ],
        }
        for name in OFFICER_MASKS
    }
    return parse_catalog(
        {
            "default_max_rows": 1000,
            "departments": {"mzj": {"name": {"zh": "民政局", "en": "Civil Affairs"}}},
            "purposes": {"statistics": {"name": {"zh": "统计", "en": "Statistics"}}},
            "datasets": {
                "civil": {
                    "owner": "mzj",
                    "backend": "b",
                    "sharing_class": "unconditional",
                    "grade": "general",
                    "update_cycle": "daily",
                    "title": TEXTS_OF["description"],
                    **TEXTS_OF,
                    "tables": tables,
                }
            },
        }
    )


def _officer_policy() -> str:
    expiry = "2099-12-31T00:00:00Z"
    lines = []
    for table, (column, mask) in OFFICER_MASKS.items():
        lines.append(f"p, 20, role:a, mzj, civil.{table}.*, select, *, allow, {expiry}, allow")
        lines.append(
            f"p, 10, role:a, mzj, civil.{table}.{column}, select, *, mask:{mask}, {expiry}, allow"
        )
    lines.append("g, sys-a, role:a, mzj")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def officer_planner() -> tuple[Catalog, CasbinPolicyEngine]:
    catalog = _officer_catalog()
    model = MODEL_CONF.read_text("utf-8")
    policy = CasbinPolicyEngine(
        catalog, PolicyFiles(model, _officer_policy()), version="t", check_mask=check_mask_spec
    )
    return catalog, policy


def _through_gateway(
    engine: Engine, setup: tuple[Catalog, CasbinPolicyEngine], sql: str
) -> list[tuple[Any, ...]]:
    catalog, policy = setup
    planner = Planner(
        catalog,
        backend_dialects={"b": engine.dialect},
        mask_context=lambda _p: CTX,
        max_rows_ceiling=1000,
        cache_size=0,
    )
    snapshot = policy.snapshot(OFFICER, "statistics", TODAY)
    plan, _ = planner.plan(sql, OFFICER, snapshot)
    return [tuple(normalise(v) for v in row) for row in engine.run(plan.sql)]


def _masked(table: str) -> list[object]:
    """The masked values of ``table``'s masked column, one per row of ROWS."""
    column, text = OFFICER_MASKS[table]
    spec = MaskSpec.parse(text)
    return [
        mask_value(spec, row[column], column_type=COLUMNS[column], ctx=CTX, key=row["t"])
        for row in ROWS
    ]


def _text_of(value: object) -> object:
    """SQLite returns dates as ISO text; compare dates as text everywhere."""
    return (
        value.isoformat(sep=" ")
        if isinstance(value, datetime)
        else (value.isoformat() if isinstance(value, date) else value)
    )


def test_equality_and_like_on_the_raw_value_match_nothing(
    engine: Engine, officer_planner: tuple[Catalog, CasbinPolicyEngine]
) -> None:
    run = functools.partial(_through_gateway, engine, officer_planner)
    assert run("SELECT id FROM civil.names WHERE t = '李琪'") == []
    assert run("SELECT id FROM civil.names WHERE t LIKE '%琪%' OR t LIKE '王琬%'") == []
    assert run("SELECT t FROM civil.names WHERE t = '李*'") == [("李*",)]
    assert run("SELECT COUNT(*) FROM civil.remarks WHERE t LIKE '%370102%'") == [(0,)]
    with_ids = sum(1 for v in _masked("remarks") if isinstance(v, str) and "[ID]" in v)
    assert with_ids >= 2
    assert run("SELECT COUNT(*) FROM civil.remarks WHERE t LIKE '%[ID]%'") == [(with_ids,)]
    assert run("SELECT COUNT(*) FROM civil.emails WHERE t LIKE 'zhangsan%'") == [(0,)]
    assert run("SELECT t FROM civil.emails WHERE t LIKE '%@example.com'") == [("z***@example.com",)]


def test_group_order_distinct_and_window_see_masked_values(
    engine: Engine, officer_planner: tuple[Catalog, CasbinPolicyEngine]
) -> None:
    run = functools.partial(_through_gateway, engine, officer_planner)

    def key(value: object) -> object:
        # MariaDB's PAD SPACE collations compare 'a ' equal to 'a' (documented in README).
        text = _text_of(value)
        return text.rstrip(" ") if engine.dialect == "mysql" and isinstance(text, str) else text

    for table in OFFICER_MASKS:
        column = OFFICER_MASKS[table][0]
        masked = [key(v) for v in _masked(table)]
        counts = Counter(masked)
        got = run(f"SELECT {column}, COUNT(*) FROM civil.{table} GROUP BY {column}")
        assert Counter({key(k): n for k, n in got}) == counts, table
        ordered = run(f"SELECT {column} FROM civil.{table} ORDER BY {column}, id")
        assert Counter(key(r[0]) for r in ordered) == counts, table
        distinct = run(f"SELECT COUNT(DISTINCT {column}) FROM civil.{table}")
        assert distinct == [(len({v for v in masked if v is not None}),)], table
        window = run(f"SELECT {column}, COUNT(*) OVER (PARTITION BY {column}) FROM civil.{table}")
        assert sorted((str(key(k)), n) for k, n in window) == sorted(
            (str(v), counts[v]) for v in masked
        ), table


def test_dates_are_compared_as_masked(
    engine: Engine, officer_planner: tuple[Catalog, CasbinPolicyEngine]
) -> None:
    run = functools.partial(_through_gateway, engine, officer_planner)
    assert run("SELECT id FROM civil.months WHERE d = DATE '2008-12-31'") == []
    assert run("SELECT COUNT(*) FROM civil.months WHERE d = DATE '2008-12-01'") == [(1,)]
    shifted = _masked("shifted")
    moments = [v for v in shifted if v is not None]
    assert moments and any(v != row["ts"] for v, row in zip(shifted, ROWS, strict=True) if v)
    target = TIMESTAMPS[0]
    expected = sum(1 for v in shifted if v == target)
    got = run("SELECT COUNT(*) FROM civil.shifted WHERE ts = TIMESTAMP '2008-12-31 23:59:59'")
    assert got == [(expected,)]
    # Joining on the masked value with the raw table's key column gives masked values too.
    joined = run(
        "SELECT a.t, b.t FROM civil.names AS a JOIN civil.emails AS b ON a.id = b.id "
        "WHERE a.t IN (SELECT t FROM civil.names WHERE t LIKE '王%')"
    )
    assert {r[0] for r in joined} == {"王**"}  # 王 alone is hidden whole: '*'


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM civil.names WHERE t ~ '^李琪$'",
        "SELECT id FROM civil.names WHERE t SIMILAR TO '王琬%'",
        "SELECT id FROM civil.remarks WHERE REGEXP_LIKE(t, '370102')",
        "SELECT id FROM civil.remarks WHERE REGEXP_REPLACE(t, '[^0-9]', '', 'g') LIKE '370102%'",
        "SELECT id FROM civil.emails WHERE REGEXP_LIKE(t, '^zhangsan')",
    ],
)
def test_regular_expressions_on_masked_columns_match_nothing_raw(
    engine: Engine, officer_planner: tuple[Catalog, CasbinPolicyEngine], sql: str
) -> None:
    # Refused today (not on the allow-list); should one be accepted later, it must still
    # only ever see masked values.
    try:
        rows = _through_gateway(engine, officer_planner, sql)
    except GatewayError as exc:
        assert exc.status == 400
    else:
        assert rows == []
