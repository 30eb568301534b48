"""Predicate pushdown (derive.py ``_with_pushdown``): which consumer predicates are copied
into a protected table's scan. What the answers are is proven by the property tests and
the attack corpus (``*-push-*``); here, where each predicate goes."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from gateway.query.plan import Planner
from gateway.query.rewrite.masks import MaskContext
from tests.unit.query.rewrite.fixture_support import CATALOG, ENGINE, NOW, RSJ

SNAP = ENGINE.snapshot(RSJ, "employment_subsidy_review", NOW)
JOIN = (
    "SELECT p.name, g.amount FROM population.people p JOIN subsidies.grants g "
    "ON g.recipient_id_number = p.id_number WHERE "
)


def scans(where: str, dialect: str = "sqlite") -> dict[str, str]:
    """Physical table -> the WHERE of its protected scan."""
    planner = Planner(
        CATALOG,
        backend_dialects={"demo": dialect},
        mask_context=lambda _p: MaskContext(b"k" * 32, CATALOG.regions),
        max_rows_ceiling=150,
        cache_size=8,
    )
    sql = planner.plan(where if where.startswith("SELECT") else JOIN + where, RSJ, SNAP)[0].sql
    out: dict[str, str] = {}
    for select in sqlglot.parse_one(sql, read=dialect).find_all(exp.Select):
        source = select.args.get("from_") or select.args.get("from")
        table = source.this if isinstance(source, exp.From) else None
        if isinstance(table, exp.Table) and table.alias == "gw_src":
            found = select.args.get("where")
            out[table.name] = found.sql(dialect=dialect) if found is not None else ""
    return out


def test_unmasked_conjuncts_reach_their_own_scan() -> None:
    got = scans("g.amount > 500 AND p.person_id < 9000")
    assert "amount" in got["civil_subsidies"] and "person_id" not in got["civil_subsidies"]
    assert "person_id" in got["population_people"] and "amount" not in got["population_people"]
    assert "历下区" in got["civil_subsidies"] and "历下区" in got["population_people"]


@pytest.mark.parametrize(
    "where",
    [
        "p.name = '张三'",  # masked
        "p.id_number = '370102199001011234'",  # pseudonymised
        "p.person_id = 1 OR p.phone = '13800000000'",  # OR across masked and unmasked
        "p.person_id = g.grant_id",  # two tables
        "1 / (p.person_id - 5) > 1",  # can fail on a filtered-out row
        "CAST(p.birth_date AS TEXT) LIKE '19%'",  # casts can fail
        "p.person_id IN (SELECT person_id FROM population.people)",  # subquery
    ],
)
def test_never_pushed(where: str) -> None:
    got = scans(where)
    assert got["population_people"].count("AND") == 0, got["population_people"]


def test_not_pushed_beside_an_outer_join() -> None:
    got = scans(
        "SELECT p.name FROM population.people p LEFT JOIN subsidies.grants g "
        "ON g.recipient_id_number = p.id_number WHERE g.amount IS NULL AND p.person_id > 1"
    )
    assert "amount" not in got["civil_subsidies"] and "person_id" not in got["population_people"]


def test_not_pushed_into_a_table_read_twice() -> None:
    got = scans(
        "SELECT a.person_id FROM population.people a JOIN population.people b "
        "ON b.person_id = a.person_id WHERE a.person_id = 7"
    )
    assert "= 7" not in got["population_people"]


def test_duckdb_pushes_string_comparisons_only() -> None:
    got = scans("g.amount > 500 AND g.program = '临时救助'", "duckdb")
    assert "临时救助" in got["civil_subsidies"] and "500" not in got["civil_subsidies"]
