"""Plans by shape (gateway/query/shape.py): a new literal compared with a column reuses
the plan of its shape, bound exactly; literals that change the plan never share one."""

from __future__ import annotations

import pytest

from gateway.domain import Principal
from gateway.query.parse import CONSUMER_DIALECT
from gateway.query.plan import Planner
from gateway.query.rewrite.masks import MaskContext
from gateway.query.shape import shape_of
from tests.unit.query.rewrite.fixture_support import CATALOG, ENGINE, NOW, RSJ

SNAP = ENGINE.snapshot(RSJ, "employment_subsidy_review", NOW)


def planner(dialect: str = "sqlite") -> Planner:
    return Planner(
        CATALOG,
        backend_dialects={"demo": dialect},
        mask_context=lambda _p: MaskContext(b"k" * 32, CATALOG.regions),
        max_rows_ceiling=150,
        cache_size=64,
    )


def fresh(sql: str, dialect: str = "sqlite") -> str:
    """The full plan's SQL, from a planner that has seen nothing."""
    return planner(dialect).plan(sql, RSJ, SNAP)[0].sql


def test_parameters_are_compared_literals_only() -> None:
    shape = shape_of(
        "SELECT name FROM population.people WHERE person_id = 5 AND name LIKE '张%' "
        "AND birth_date BETWEEN '1980-01-01' AND '1990-01-01' ORDER BY 1 LIMIT 20",
        CONSUMER_DIALECT,
    )
    assert shape is not None
    assert shape.values == (("i", "5"), ("s", "张%"), ("s", "1980-01-01"), ("s", "1990-01-01"))
    assert "ORDER BY 1 LIMIT 20" in shape.key  # positional ORDER BY and LIMIT stay


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT name FROM population.people LIMIT 5",
        "SELECT name FROM population.people WHERE person_id = 5 + person_id",
        "SELECT name FROM population.people WHERE person_id = 5.5",
        "SELECT name FROM population.people WHERE birth_date = DATE '1980-01-01'",
        "SELECT name FROM population.people WHERE name = '张'::text",
        "SELECT name FROM population.people WHERE name = E'\\x41'",
        "SELECT name FROM population.people WHERE name LIKE 'a!%' ESCAPE '!'",
        "SELECT substr(name, 1, 2) FROM population.people",
        "SELECT name FROM population.people WHERE person_id = 1234567890",
    ],
)
def test_plan_changing_literals_stay_in_the_key(sql: str) -> None:
    shape = shape_of(sql, CONSUMER_DIALECT)
    assert shape is None or all(
        v not in ("5", "1", "2", "1980-01-01", "张") for _, v in shape.values
    )


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql", "duckdb"])
def test_new_literal_is_a_hit_and_equals_the_full_plan(dialect: str) -> None:
    p = planner(dialect)
    template = (
        "SELECT p.name, g.amount FROM population.people p JOIN subsidies.grants g "
        "ON g.recipient_id_number = p.id_number WHERE p.person_id > {n} AND p.name LIKE '{s}' "
        "AND g.program = '{s}' ORDER BY g.grant_id LIMIT 7"
    )
    first, hit1 = p.plan(template.format(n=1, s="张%"), RSJ, SNAP)
    sql = template.format(n=42, s="it''s \\ 100%")
    second, hit2 = p.plan(sql, RSJ, SNAP)
    assert (hit1, hit2) == (False, True)
    assert second.sql == fresh(sql, dialect)
    assert second.audit_sql != first.audit_sql and "42" in second.audit_sql
    assert second.columns == first.columns and second.cap == first.cap


def test_other_limit_is_another_shape() -> None:
    p = planner()
    p.plan("SELECT name FROM population.people WHERE person_id = 1 LIMIT 5", RSJ, SNAP)
    plan, hit = p.plan("SELECT name FROM population.people WHERE person_id = 2 LIMIT 9", RSJ, SNAP)
    assert not hit and plan.cap.allowed == 9


def test_other_principal_never_shares_a_shape() -> None:
    p = planner()
    p.plan("SELECT name FROM population.people WHERE person_id = 1", RSJ, SNAP)
    portal = Principal(
        "rsj-portal",
        "rsj",
        {"district": "天桥区", "city": "济南市"},
        frozenset({"employment_subsidy_review"}),
    )
    other = ENGINE.snapshot(portal, "employment_subsidy_review", NOW)
    plan, hit = p.plan("SELECT name FROM population.people WHERE person_id = 2", portal, other)
    assert not hit and "天桥区" in plan.sql


def test_a_refused_literal_is_refused_on_a_shape_hit_too() -> None:
    # Validation does not look at compared values today; if it ever does, the exactness
    # check must keep a refusing value from riding on another value's template.
    p = planner()
    p.plan("SELECT name FROM population.people WHERE name = 'a'", RSJ, SNAP)
    plan, hit = p.plan("SELECT name FROM population.people WHERE name = 'b'", RSJ, SNAP)
    assert hit and "'b'" in plan.sql and "'a'" not in plan.sql
