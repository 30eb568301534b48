"""Loading the demo world into SQLite, DuckDB, PostgreSQL (schema t_demo) and MariaDB
(database t_demo): the same canonical queries give the same answers everywhere, and
ensure_demo_database loads only when it must."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import duckdb
import psycopg
import pymysql
import pytest

from gateway.demo import DEMO_TABLES, DemoData, generate_demo_data
from gateway.demo.load import (
    BackendKind,
    ensure_demo_database,
    index_ddl,
    load_demo,
    read_demo_meta,
    table_ddl,
)
from gateway.errors import BackendUnavailableError, ConfigurationError
from tests.conftest import Scratch, run_scoped

KINDS: list[BackendKind] = ["sqlite", "duckdb", "postgres", "mysql"]
#: This run's PostgreSQL schema / MariaDB database for the loader tests (see ``scratch``).
SCHEMA = run_scoped("t_demo")
# What each driver raises when a constraint (primary key, unique index) refuses a row.
INTEGRITY_ERRORS: dict[str, type[Exception]] = {
    "sqlite": sqlite3.IntegrityError,
    "duckdb": duckdb.ConstraintException,
    "postgres": psycopg.errors.UniqueViolation,
    "mysql": pymysql.err.IntegrityError,
}


def _pg_demo_dsn(pg_dsn: str) -> str:
    sep = "&" if "?" in pg_dsn else "?"
    return f"{pg_dsn}{sep}options=-csearch_path%3D{SCHEMA}"


def _mysql_demo_dsn(mysql_dsn: str) -> str:
    return urlunsplit(urlsplit(mysql_dsn)._replace(path=f"/{SCHEMA}"))


@pytest.fixture
def dsn_for(
    request: pytest.FixtureRequest, tmp_path: Path, scratch: Scratch
) -> Callable[[str], str]:
    """kind -> a DSN of this test's own target (skips when the service is missing)."""

    def make(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:{tmp_path / 'nested' / 'dirs' / 'demo.sqlite'}"
        if kind == "duckdb":
            return f"duckdb:{tmp_path / 'nested' / 'demo.duckdb'}"
        if kind == "postgres":
            pg_dsn: str = request.getfixturevalue("pg_dsn")
            scratch.pg_schema(pg_dsn, "t_demo")
            return _pg_demo_dsn(pg_dsn)
        mysql_dsn: str = request.getfixturevalue("mysql_dsn")
        scratch.mysql_database(mysql_dsn, "t_demo")
        return _mysql_demo_dsn(mysql_dsn)

    return make


@contextmanager
def _connect(kind: str, dsn: str) -> Iterator[Any]:
    """A plain driver connection to the target, independent of the loader's code."""
    if kind == "sqlite":
        conn: Any = sqlite3.connect(dsn.removeprefix("sqlite:"), isolation_level=None)
    elif kind == "duckdb":
        conn = duckdb.connect(dsn.removeprefix("duckdb:"))
    elif kind == "postgres":
        conn = psycopg.connect(dsn, autocommit=True)
    else:
        u = urlsplit(dsn)
        conn = pymysql.connect(
            host=u.hostname or "127.0.0.1",
            port=u.port or 3306,
            user=u.username or "root",
            password=u.password or "",
            database=u.path.lstrip("/"),
            charset="utf8mb4",
            autocommit=True,
        )
    try:
        yield conn
    finally:
        conn.close()


def _rows(conn: Any, query: str) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    cur.execute(query)
    rows = [tuple(r) for r in cur.fetchall()]
    cur.close()
    return rows


def _execute(conn: Any, statement: str) -> None:
    cur = conn.cursor()
    cur.execute(statement)
    cur.close()


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def _canonical_results(kind: str, dsn: str, data: DemoData) -> dict[str, Any]:
    """The canonical queries, with unqualified table names, normalised to Python values."""
    length = "CHAR_LENGTH" if kind == "mysql" else "LENGTH"
    with_x = next(p[2] for p in data.people if p[2].endswith("X"))
    out: dict[str, Any] = {}
    with _connect(kind, dsn) as conn:
        for spec in DEMO_TABLES:
            out[f"rows.{spec.name}"] = int(_rows(conn, f"SELECT COUNT(*) FROM {spec.name}")[0][0])
        out["people_per_district"] = {
            str(d): int(n)
            for d, n in _rows(conn, "SELECT district, COUNT(*) FROM population_people GROUP BY 1")
        }
        out["sum_amount"] = int(_rows(conn, "SELECT SUM(amount) FROM civil_subsidies")[0][0])
        out["sum_amount_per_program"] = {
            str(p): int(s)
            for p, s in _rows(conn, "SELECT program, SUM(amount) FROM civil_subsidies GROUP BY 1")
        }
        lo, hi = _rows(conn, "SELECT MIN(birth_date), MAX(birth_date) FROM population_people")[0]
        out["birth_range"] = (_iso(lo), _iso(hi))
        out["four_char_names"] = int(
            _rows(conn, f"SELECT COUNT(*) FROM population_people WHERE {length}(name) = 4")[0][0]
        )
        out["null_phones"] = int(
            _rows(conn, "SELECT COUNT(*) FROM population_people WHERE phone IS NULL")[0][0]
        )
        out["born_before_1950"] = int(
            _rows(conn, "SELECT COUNT(*) FROM population_people WHERE birth_date < '1950-01-01'")[
                0
            ][0]
        )
        out["grants_joined_to_people"] = int(
            _rows(
                conn,
                "SELECT COUNT(*) FROM civil_subsidies s "
                "JOIN population_people p ON p.id_number = s.recipient_id_number",
            )[0][0]
        )
        # Text comparison is exact (binary) on every backend: 'x' does not match 'X'.
        out["id_exact_match"] = int(
            _rows(conn, f"SELECT COUNT(*) FROM population_people WHERE id_number = '{with_x}'")[0][
                0
            ]
        )
        out["id_lowercase_match"] = int(
            _rows(
                conn,
                f"SELECT COUNT(*) FROM population_people WHERE id_number = '{with_x.lower()}'",
            )[0][0]
        )
    return out


def _expected_results(data: DemoData) -> dict[str, Any]:
    """The same answers computed in Python from the generated rows."""
    amounts: Counter[str] = Counter()
    for g in data.subsidies:
        amounts[g[2]] += g[3]
    births = [p[3] for p in data.people]
    ids = {p[2] for p in data.people}
    out: dict[str, Any] = {f"rows.{spec.name}": len(rows) for spec, rows in data.tables()}
    out |= {
        "people_per_district": dict(Counter(p[7] for p in data.people)),
        "sum_amount": sum(g[3] for g in data.subsidies),
        "sum_amount_per_program": dict(amounts),
        "birth_range": (min(births).isoformat(), max(births).isoformat()),
        "four_char_names": sum(len(p[1]) == 4 for p in data.people),
        "null_phones": sum(p[5] is None for p in data.people),
        "born_before_1950": sum(b < date(1950, 1, 1) for b in births),
        "grants_joined_to_people": sum(g[1] in ids for g in data.subsidies),
        "id_exact_match": 1,
        "id_lowercase_match": 0,
    }
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_canonical_queries_agree_on_every_backend(
    kind: str, dsn_for: Callable[[str], str], demo_data: DemoData
) -> None:
    dsn = dsn_for(kind)
    load_demo(dsn, demo_data)
    expected = _expected_results(demo_data)
    assert expected["four_char_names"] > 0 and expected["null_phones"] > 0
    assert _canonical_results(kind, dsn, demo_data) == expected
    meta = read_demo_meta(dsn)
    assert meta["fingerprint"] == demo_data.fingerprint()
    assert meta["data_key"] == demo_data.key
    assert meta["rows.population_people"] == "12000"


def _index_names(kind: str, conn: Any) -> set[str]:
    query = {
        "sqlite": "SELECT name FROM sqlite_master WHERE type = 'index' "
        "AND name NOT LIKE 'sqlite_autoindex%'",
        "duckdb": "SELECT index_name FROM duckdb_indexes()",
        "postgres": f"SELECT indexname FROM pg_indexes WHERE schemaname = '{SCHEMA}' "
        "AND indexname NOT LIKE '%pkey'",
        "mysql": "SELECT DISTINCT index_name FROM information_schema.statistics "
        f"WHERE table_schema = '{SCHEMA}' AND index_name <> 'PRIMARY'",
    }[kind]
    return {str(r[0]) for r in _rows(conn, query)}


def _column_types(kind: str, conn: Any) -> dict[tuple[str, str], str]:
    if kind == "sqlite":
        return {
            (spec.name, str(r[1])): str(r[2]).lower()
            for spec in DEMO_TABLES
            for r in _rows(conn, f"PRAGMA table_info({spec.name})")
        }
    schema_filter = {
        "duckdb": "table_schema = current_schema()",
        "postgres": f"table_schema = '{SCHEMA}'",
        "mysql": f"table_schema = '{SCHEMA}'",
    }[kind]
    rows = _rows(
        conn,
        f"SELECT table_name, column_name, data_type FROM information_schema.columns "
        f"WHERE {schema_filter}",
    )
    return {(str(t), str(c)): str(d).lower() for t, c, d in rows}


# Catalog type -> the column type each backend reports.
REPORTED_TYPES = {
    "sqlite": {"integer": "integer", "text": "text", "date": "text"},
    "duckdb": {"integer": "bigint", "text": "varchar", "date": "date"},
    "postgres": {"integer": "bigint", "text": "text", "date": "date"},
    "mysql": {"integer": "bigint", "text": "varchar", "date": "date"},
}


def _index_name(statement: str) -> str:
    match = re.search(r"INDEX (\w+) ON", statement)
    assert match, statement
    return match.group(1)


@pytest.mark.parametrize("kind", KINDS)
def test_schema_types_indexes_and_constraints(
    kind: BackendKind, dsn_for: Callable[[str], str]
) -> None:
    dsn = dsn_for(kind)
    data = generate_demo_data(seed=11, people=120)
    load_demo(dsn, data)
    expected_indexes = {_index_name(s) for s in index_ddl(kind)}
    assert len(expected_indexes) == 9
    with _connect(kind, dsn) as conn:
        assert _index_names(kind, conn) == expected_indexes
        types = _column_types(kind, conn)
        for spec in DEMO_TABLES:
            for col in spec.columns:
                assert types[(spec.name, col.name)] == REPORTED_TYPES[kind][col.type]
        # The unique index on id_number refuses a second person with the same number.
        person = data.people[0]
        with pytest.raises(INTEGRITY_ERRORS[kind]):
            _execute(
                conn,
                "INSERT INTO population_people VALUES "
                f"(99999, '重复', '{person[2]}', '2000-01-01', '男', NULL, '地址', '历下区')",
            )
        # The primary key refuses a duplicate id.
        with pytest.raises(INTEGRITY_ERRORS[kind]):
            _execute(conn, "INSERT INTO case_incidents VALUES (1, '1', '重复', '历下区')")
        # A fresh id and number go in: the refusals above were the constraints, not syntax.
        _execute(
            conn,
            "INSERT INTO population_people VALUES "
            "(99999, '新人', '110105194912310021', '1949-12-31', '女', NULL, '地址', '历下区')",
        )


def test_sqlite_stores_dates_as_iso_text(dsn_for: Callable[[str], str]) -> None:
    dsn = dsn_for("sqlite")
    data = generate_demo_data(seed=11, people=120)
    load_demo(dsn, data)
    assert Path(dsn.removeprefix("sqlite:")).is_file(), "parent directories were created"
    with _connect("sqlite", dsn) as conn:
        rows = _rows(conn, "SELECT typeof(birth_date), birth_date FROM population_people")
    assert {t for t, _ in rows} == {"text"}
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", v) for _, v in rows)
    assert [v for _, v in rows] == [p[3].isoformat() for p in data.people]


def test_mysql_text_columns_are_binary_utf8mb4(dsn_for: Callable[[str], str]) -> None:
    dsn = dsn_for("mysql")
    load_demo(dsn, generate_demo_data(seed=11, people=120))
    with _connect("mysql", dsn) as conn:
        rows = _rows(
            conn,
            "SELECT table_name, column_name, character_set_name, collation_name, "
            "character_maximum_length FROM information_schema.columns "
            f"WHERE table_schema = '{SCHEMA}' AND data_type = 'varchar'",
        )
    found = {(str(t), str(c)): (cs, co, int(n)) for t, c, cs, co, n in rows}
    for spec in DEMO_TABLES:
        for col in spec.columns:
            if col.type == "text":
                assert found[(spec.name, col.name)] == ("utf8mb4", "utf8mb4_bin", col.max_length)


def test_postgres_tables_live_in_the_dsn_schema(dsn_for: Callable[[str], str]) -> None:
    dsn = dsn_for("postgres")
    load_demo(dsn, generate_demo_data(seed=11, people=120))
    with _connect("postgres", dsn) as conn:
        (found,) = _rows(conn, f"SELECT to_regclass('{SCHEMA}.population_people') IS NOT NULL")[0]
        (current,) = _rows(conn, "SELECT current_schema()")[0]
    assert found is True
    assert current == SCHEMA


def _counting_factory(calls: list[tuple[int, int]]) -> Callable[[int, int], DemoData]:
    def factory(seed: int, people: int) -> DemoData:
        calls.append((seed, people))
        return generate_demo_data(seed, people)

    return factory


@pytest.mark.parametrize("kind", KINDS)
def test_ensure_loads_only_when_needed(kind: str, dsn_for: Callable[[str], str]) -> None:
    dsn = dsn_for(kind)
    # Start from a known other world, whatever an earlier run left behind.
    load_demo(dsn, generate_demo_data(seed=8, people=120))
    calls: list[tuple[int, int]] = []
    factory = _counting_factory(calls)

    assert ensure_demo_database(dsn, factory, seed=7, people=120) is True
    assert calls == [(7, 120)]
    assert read_demo_meta(dsn)["fingerprint"] == generate_demo_data(7, 120).fingerprint()

    # Already current: nothing is generated, nothing is loaded.
    assert ensure_demo_database(dsn, factory, seed=7, people=120) is False
    assert calls == [(7, 120)]

    # Rows removed behind the meta's back: the row counts no longer match, so reload.
    with _connect(kind, dsn) as conn:
        _execute(conn, "DELETE FROM civil_subsidies WHERE grant_id = 1")
    assert ensure_demo_database(dsn, factory, seed=7, people=120) is True
    assert calls == [(7, 120), (7, 120)]
    with _connect(kind, dsn) as conn:
        assert _rows(conn, "SELECT COUNT(*) FROM civil_subsidies")[0][0] == 60

    # Another size is another world.
    assert ensure_demo_database(dsn, factory, seed=7, people=130) is True
    assert calls[-1] == (7, 130)
    assert read_demo_meta(dsn)["data_key"] == "gateway.demo/v1/seed=7/people=130"


def test_ensure_on_a_missing_file_creates_it(tmp_path: Path) -> None:
    path = tmp_path / "state" / "demo.sqlite"
    calls: list[tuple[int, int]] = []
    assert ensure_demo_database(f"sqlite:{path}", _counting_factory(calls), people=60) is True
    assert path.is_file() and calls == [(20261123, 60)]


def test_ensure_refuses_a_factory_that_returns_another_world(tmp_path: Path) -> None:
    def wrong(seed: int, people: int) -> DemoData:
        return generate_demo_data(seed + 1, people)

    dsn = f"sqlite:{tmp_path / 'demo.sqlite'}"
    with pytest.raises(ConfigurationError, match="expected"):
        ensure_demo_database(dsn, wrong, seed=1, people=50)
    assert read_demo_meta(dsn) == {}, "nothing was recorded as loaded"


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "mysql"])
def test_concurrent_ensures_load_once(kind: str, dsn_for: Callable[[str], str]) -> None:
    dsn = dsn_for(kind)
    load_demo(dsn, generate_demo_data(seed=8, people=60))
    calls: list[tuple[int, int]] = []
    factory = _counting_factory(calls)
    barrier = threading.Barrier(3)
    results: list[bool] = []
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(ensure_demo_database(dsn, factory, seed=9, people=60))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert sorted(results) == [False, False, True]
    assert calls == [(9, 60)]


def test_the_dsn_schema_parameter_names_the_postgres_schema(pg_dsn: str, scratch: Scratch) -> None:
    # ?schema= is the gateway's own parameter (gateway.dsn), understood by the backends
    # as well, so the same DSN loads the tables and later finds them.
    schema = scratch.pg_schema(pg_dsn, "t_demo_param")
    sep = "&" if "?" in pg_dsn else "?"
    dsn = f"{pg_dsn}{sep}schema={schema}"
    load_demo(dsn, generate_demo_data(seed=11, people=60))
    assert read_demo_meta(dsn)["rows.population_people"] == "60"
    with _connect("postgres", pg_dsn) as conn:
        (found,) = _rows(conn, f"SELECT to_regclass('{schema}.population_people') IS NOT NULL")[0]
    assert found is True


def test_mariadb_scheme_and_dsn_options_load_like_mysql(dsn_for: Callable[[str], str]) -> None:
    # The loader once refused mariadb:// and any option the backends accept.
    dsn = dsn_for("mysql").replace("mysql://", "mariadb://", 1) + "?connect_timeout=5"
    assert ensure_demo_database(dsn, people=60) is True
    assert ensure_demo_database(dsn, people=60) is False
    assert read_demo_meta(dsn)["rows.population_people"] == "60"


@pytest.mark.parametrize(
    "dsn",
    [
        "sqlite:",
        "sqlite:///tmp/demo.sqlite",
        "sqlite::memory:",
        "duckdb://x",
        "memory:",
        "mysql://root:s3cr3t@127.0.0.1:3306/",
        "mariadb://root:s3cr3t@127.0.0.1:3306/",
        "mysql://root:s3cr3t@127.0.0.1:3306/db?charset=latin1",
        "mysql://root:s3cr3t@127.0.0.1:notaport/db",
        "postgresql://u:s3cr3t@127.0.0.1:1/db?schema=Not_Lower",
        "postgresql://u:s3cr3t@127.0.0.1:1/db?no_such_option=1",
        "oracle://scott:s3cr3t@tiger/db",
        "state/demo.sqlite",
    ],
)
def test_malformed_dsns_are_configuration_errors(dsn: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_demo(dsn, generate_demo_data(people=5))
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://demo:s3cr3t-pw@127.0.0.1:1/test?connect_timeout=2",
        "mysql://demo:s3cr3t-pw@127.0.0.1:1/test",
    ],
)
def test_unreachable_server_is_backend_unavailable_without_the_password(dsn: str) -> None:
    with pytest.raises(BackendUnavailableError) as info:
        ensure_demo_database(dsn, people=5)
    assert "s3cr3t" not in info.value.detail
    assert info.value.internal_detail


@pytest.mark.parametrize("kind", KINDS)
def test_ddl_spells_types_for_each_dialect(kind: BackendKind) -> None:
    ddl = table_ddl(kind)
    assert len(ddl) == len(DEMO_TABLES) + 1
    people = ddl[0]
    assert people.startswith("CREATE TABLE population_people (person_id ")
    assert "phone" in people and "phone TEXT NOT NULL" not in people
    if kind == "mysql":
        assert people.count("COLLATE utf8mb4_bin") == 7  # six text columns + table default
        assert "`key` VARCHAR(64)" in ddl[-1]
    else:
        assert "utf8mb4" not in people
        assert ddl[-1] == 'CREATE TABLE demo_meta ("key" TEXT PRIMARY KEY, value TEXT)'
