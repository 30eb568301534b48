"""Planner: caching, limits, refusal of pathological input."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from gateway.domain import Principal
from gateway.errors import UnsupportedStatementError
from gateway.query.plan import Planner
from gateway.query.rewrite.masks import MaskContext
from tests.unit.query.rewrite.fixture_support import CATALOG, ENGINE, NOW, RSJ


def planner(cache_size: int = 16) -> Planner:
    return Planner(
        CATALOG,
        backend_dialects={"demo": "sqlite"},
        mask_context=lambda _p: MaskContext(b"k" * 32, CATALOG.regions),
        max_rows_ceiling=150,
        cache_size=cache_size,
    )


SNAP = ENGINE.snapshot(RSJ, "employment_subsidy_review", NOW)


def test_second_identical_query_hits_the_cache() -> None:
    p = planner()
    first, hit1 = p.plan("SELECT name FROM population.people", RSJ, SNAP)
    second, hit2 = p.plan("SELECT name FROM population.people", RSJ, SNAP)
    assert (hit1, hit2) == (False, True)
    assert second is first


def test_cache_key_includes_requested_rows() -> None:
    p = planner()
    a, _ = p.plan("SELECT name FROM population.people", RSJ, SNAP)
    b, hit = p.plan("SELECT name FROM population.people", RSJ, SNAP, requested_max_rows=5)
    assert not hit and b.cap.allowed == 5 and a.cap.allowed == 150


def test_ceiling_caps_the_policy_limit() -> None:
    # rsj may read 200 rows of population.people; the gateway ceiling here is 150
    plan, _ = planner().plan("SELECT name FROM population.people", RSJ, SNAP)
    assert plan.cap.allowed == 150 and plan.cap.fetch == 151
    assert "LIMIT 151" in plan.sql


def test_join_takes_the_smallest_table_limit() -> None:
    plan, _ = planner().plan(
        "SELECT g.amount FROM subsidies.grants AS g JOIN legal_person.enterprises AS e "
        "ON e.district = g.district",
        RSJ,
        SNAP,
    )
    assert plan.cap.allowed == 150  # min(500, 1000) capped by the ceiling 150
    assert plan.tables == ("legal_person.enterprises", "subsidies.grants")


def test_sqlite_protects_tables_with_one_materialized_cte_per_table() -> None:
    plan, _ = planner().plan(
        "WITH mine AS (SELECT person_id FROM population.people) "
        "SELECT a.name FROM population.people AS a JOIN mine ON mine.person_id = a.person_id "
        "WHERE EXISTS (SELECT 1 FROM subsidies.grants AS g "
        "WHERE g.recipient_id_number = a.id_number)",
        RSJ,
        SNAP,
    )
    assert plan.sql.startswith('WITH "gw_t0" AS MATERIALIZED (SELECT')
    assert plan.sql.count("AS MATERIALIZED") == 2  # people once (shared), grants once
    assert plan.sql.count('FROM "population_people"') == 1
    # the consumer's CTE comes after the gateway's, so it reads the protected table
    assert plan.sql.index('"gw_t1"') < plan.sql.index('"mine" AS (')


def test_derived_tables_are_fenced_when_masks_could_run_per_row_pair() -> None:
    for dialect, fence in (
        ("postgres", 'WITH "gw_t0" AS MATERIALIZED ('),
        ("duckdb", 'WITH "gw_t0" AS MATERIALIZED ('),
        ("mysql", "LIMIT 18446744073709551615)"),
    ):
        p = Planner(
            CATALOG,
            backend_dialects={"demo": dialect},
            mask_context=lambda _p: MaskContext(b"k" * 32, CATALOG.regions),
            max_rows_ceiling=150,
            cache_size=4,
        )
        joined = (
            "SELECT p.name FROM population.people AS p "
            "JOIN subsidies.grants AS g ON g.recipient_id_number = p.id_number"
        )
        plan, _ = p.plan(joined, RSJ, SNAP)
        assert fence in plan.sql, dialect
        # one table, one SELECT: inline, so predicates and LIMIT reach the scan
        single, _ = p.plan("SELECT name FROM population.people WHERE person_id = 1", RSJ, SNAP)
        assert "MATERIALIZED" not in single.sql and "18446744073709551615" not in single.sql


def test_deeply_nested_sql_is_refused_not_crashed() -> None:
    sql = "SELECT " + "(" * 3000 + "1" + ")" * 3000
    with pytest.raises(UnsupportedStatementError, match="nested too deeply"):
        planner().plan(sql, RSJ, SNAP)


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql", "duckdb"])
def test_audit_sql_carries_no_key_material(dialect: str) -> None:
    key = b"\x01" * 32
    p = Planner(
        CATALOG,
        backend_dialects={"demo": dialect},
        mask_context=lambda _p: MaskContext(key, CATALOG.regions),
        max_rows_ceiling=150,
        cache_size=4,
    )
    plan, _ = p.plan("SELECT id_number FROM population.people", RSJ, SNAP)
    block = key.ljust(64, b"\x00")
    secrets = {
        key.hex(),
        bytes(b ^ 0x36 for b in block).hex(),
        bytes(b ^ 0x5C for b in block).hex(),
    }
    assert any(s in plan.sql.lower() for s in secrets)  # the backend needs it
    assert not any(s in plan.audit_sql.lower() for s in secrets)
    assert "<pseudonym key of the department>" in plan.audit_sql


TJJ = Principal("tjj-stats", "tjj", {"city": "济南市"}, frozenset({"statistics"}))
TJJ_SNAP = ENGINE.snapshot(TJJ, "statistics", NOW)
#: tjj's limits, read off policy.csv by hand: p3 lines for subsidies.* and population.*
#: (5000); none for legal_person, so the catalog default (1000).
TJJ_LIMITS = {"population.people": 5000, "subsidies.grants": 5000, "legal_person.enterprises": 1000}

#: Each query reads enterprises (limit 1000) somewhere and a 5000-limit table elsewhere.
READS_ENTERPRISES_SOMEWHERE = (
    # the issue's example: the EXISTS must not lift the enterprises' default
    "SELECT enterprise_id FROM legal_person.enterprises "
    "WHERE NOT EXISTS (SELECT 1 FROM subsidies.grants WHERE 1 = 0)",
    "SELECT grant_id FROM subsidies.grants WHERE EXISTS "
    "(SELECT 1 FROM legal_person.enterprises AS e WHERE e.district = 'x')",
    "SELECT grant_id, (SELECT count(*) FROM legal_person.enterprises) AS n FROM subsidies.grants",
    "SELECT grant_id FROM subsidies.grants WHERE program IN "
    "(SELECT status FROM legal_person.enterprises)",
    "WITH e AS (SELECT district FROM legal_person.enterprises) "
    "SELECT g.grant_id FROM subsidies.grants AS g",
    "SELECT gender FROM population.people UNION ALL SELECT status FROM legal_person.enterprises",
    "SELECT d.x FROM (SELECT enterprise_id AS x FROM legal_person.enterprises) AS d "
    "JOIN population.people AS p ON p.gender = 'x'",
    "SELECT gender FROM population.people EXCEPT "
    "(SELECT status FROM legal_person.enterprises INTERSECT SELECT program FROM subsidies.grants)",
)


@pytest.mark.parametrize("sql", READS_ENTERPRISES_SOMEWHERE)
def test_the_limit_is_the_smallest_of_every_table_read_anywhere(sql: str) -> None:
    p = Planner(
        CATALOG,
        backend_dialects={"demo": "sqlite"},
        mask_context=lambda _p: MaskContext(b"k" * 32, CATALOG.regions),
        max_rows_ceiling=10_000,
        cache_size=4,
    )
    plan, _ = p.plan(sql, TJJ, TJJ_SNAP)
    assert plan.cap.allowed == min(TJJ_LIMITS[t] for t in plan.tables) == 1000, plan.tables
    assert plan.cap.fetch == 1001
    # tables with an explicit line alone keep their own limit
    alone, _ = p.plan("SELECT grant_id FROM subsidies.grants", TJJ, TJJ_SNAP)
    assert alone.cap.allowed == 5000


#: Constructs whose transpilation could restructure the root around the gateway's LIMIT.
RESTRUCTURED = (
    "SELECT DISTINCT ON (district) district, name FROM legal_person.enterprises "
    "ORDER BY district, enterprise_id",
    "SELECT DISTINCT ON (district) district, name FROM legal_person.enterprises "
    "ORDER BY district, enterprise_id LIMIT 3 OFFSET 1",
    "SELECT name FROM legal_person.enterprises ORDER BY registered_capital DESC "
    "FETCH FIRST 3 ROWS WITH TIES",
    "SELECT name FROM legal_person.enterprises ORDER BY registered_capital DESC "
    "OFFSET 2 FETCH FIRST 3 ROWS WITH TIES",
    "(SELECT district FROM legal_person.enterprises LIMIT 2) UNION "
    "(SELECT district FROM subsidies.grants)",
    "SELECT grant_id FROM subsidies.grants WHERE amount > ALL "
    "(SELECT amount FROM subsidies.grants WHERE program = 'x')",
    "SELECT count(*) FILTER (WHERE status = 'x') AS n FROM legal_person.enterprises",
)


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql", "duckdb"])
@pytest.mark.parametrize("sql", RESTRUCTURED)
def test_the_cap_is_the_outermost_limit_of_the_backend_sql(dialect: str, sql: str) -> None:
    p = Planner(
        CATALOG,
        backend_dialects={"demo": dialect},
        mask_context=lambda _p: MaskContext(b"k" * 32, CATALOG.regions),
        max_rows_ceiling=10_000,
        cache_size=4,
    )
    plan, _ = p.plan(sql, RSJ, SNAP)
    root = sqlglot.parse_one(plan.sql, read=dialect)
    limit = root.args.get("limit")
    assert isinstance(limit, exp.Limit), plan.sql
    assert int(limit.expression.this) == plan.cap.fetch, plan.sql
    # and no other LIMIT of the statement carries the cap
    inner = [n for n in root.find_all(exp.Limit) if n is not limit]
    assert all(int(n.expression.this) != plan.cap.fetch for n in inner), plan.sql
