"""SQL analysts write (issue 10, points 4 and 5), with exact answers on every backend.

Each case's expected answer is the same SQL run by PostgreSQL — the dialect consumers
write — over a materialised copy of what the system may see (tests/e2e/oracle.py: the
masked, filtered views restated in Python from the demo data, never computed by the
gateway), turned into JSON values by the rules of README "Values in a result", restated
here: integers and integral numbers as JSON integers, other numbers as the nearest double,
dates as ``YYYY-MM-DD``, timestamps as ``YYYY-MM-DDTHH:MM:SS``. The comparison is exact
(no tolerance, no float normalisation of integers) and every ORDER BY is total, so row
order is part of the answer. A case may instead be refused, with a 400 that names the
construct, on the backends listed in ``refused`` (the construct does not exist there).

Masks hold inside every construct: the views the oracle runs over already carry the
masked values, so an answer equal to the oracle's is an answer computed from masked
values only (window frames, recursive parts, LATERAL subqueries, FILTER conditions);
tests/e2e/attack_corpus.py has the attack variants of each construct.

Run on all four backends with ``GATEWAY_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from tests.e2e import expected as ex
from tests.e2e.harness import Gateway
from tests.e2e.oracle import PgOracle, tables_read
from tests.e2e.secrets_oracle import names_an_engine

RSJ, TJJ = "rsj-subsidy", "tjj-stats"
G, P = "subsidies.grants", "population.people"
NO_LATERAL = frozenset({"sqlite", "mysql"})


@dataclass(frozen=True)
class Case:
    id: str
    sql: str
    system: str = RSJ
    #: Backends where the construct is refused (400 unsupported_sql naming it).
    refused: frozenset[str] = field(default_factory=frozenset)
    #: A word the refusal's detail must contain (the construct in the consumer's terms).
    refusal_names: str = ""


CASES: tuple[Case, ...] = (
    # ---------------------------------------------------------------- window frames
    Case(
        "frame-rows-moving-sum",
        f"SELECT grant_id, amount, SUM(amount) OVER (ORDER BY grant_id ROWS BETWEEN 2 "
        f"PRECEDING AND CURRENT ROW) AS moving FROM {G} ORDER BY grant_id LIMIT 50",
    ),
    Case(
        "frame-rows-centred-avg",
        f"SELECT grant_id, MIN(amount) OVER (PARTITION BY program ORDER BY grant_id ROWS "
        f"BETWEEN 1 PRECEDING AND 1 FOLLOWING) AS lo, MAX(amount) OVER (PARTITION BY program "
        f"ORDER BY grant_id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) AS hi FROM {G} "
        "ORDER BY grant_id LIMIT 60",
    ),
    Case(
        "frame-range-running-total",
        f"SELECT program, grant_id, SUM(amount) OVER (PARTITION BY program ORDER BY grant_id "
        f"RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running FROM {G} "
        "ORDER BY program, grant_id LIMIT 80",
    ),
    Case(
        "frame-range-peers",  # RANGE: rows equal in the ORDER BY key are peers
        f"SELECT grant_id, COUNT(*) OVER (ORDER BY amount RANGE BETWEEN UNBOUNDED PRECEDING "
        f"AND CURRENT ROW) AS upto FROM {G} ORDER BY grant_id LIMIT 60",
    ),
    Case(
        "frame-range-offset",
        f"SELECT grant_id, COUNT(*) OVER (ORDER BY amount RANGE BETWEEN 100 PRECEDING AND "
        f"100 FOLLOWING) AS near FROM {G} ORDER BY grant_id LIMIT 40",
        refused=frozenset({"mysql"}),
        refusal_names="RANGE",
    ),
    # ---------------------------------------------------------------- window functions
    Case(
        "ntile",
        f"SELECT person_id, NTILE(4) OVER (ORDER BY birth_date, person_id) AS quartile "
        f"FROM {P} ORDER BY person_id LIMIT 100",
    ),
    Case(
        "lag-lead-defaults",
        f"SELECT grant_id, LAG(amount, 1, -1) OVER (PARTITION BY program ORDER BY grant_id) "
        f"AS prev, LEAD(program, 2, '无') OVER (ORDER BY grant_id) AS next2, "
        f"LAG(amount) OVER (ORDER BY grant_id) AS plain FROM {G} ORDER BY grant_id DESC LIMIT 80",
    ),
    Case(
        "percent-rank-cume-dist",
        f"SELECT grant_id, PERCENT_RANK() OVER (PARTITION BY program ORDER BY amount) AS pr, "
        f"CUME_DIST() OVER (PARTITION BY program ORDER BY amount) AS cd FROM {G} "
        "ORDER BY grant_id LIMIT 60",
    ),
    Case(
        "first-last-nth-value-over-masked",
        f"SELECT person_id, FIRST_VALUE(name) OVER (PARTITION BY gender ORDER BY person_id) "
        f"AS first_name, LAST_VALUE(phone) OVER (PARTITION BY gender ORDER BY person_id ROWS "
        f"BETWEEN CURRENT ROW AND 3 FOLLOWING) AS last_phone, NTH_VALUE(id_number, 3) OVER "
        f"(PARTITION BY gender ORDER BY person_id ROWS BETWEEN UNBOUNDED PRECEDING AND "
        f"UNBOUNDED FOLLOWING) AS third_id FROM {P} ORDER BY person_id LIMIT 60",
    ),
    # ---------------------------------------------------------------- aggregates
    Case(
        "string-agg-ordered",
        f"SELECT program, STRING_AGG(CAST(grant_id AS TEXT), ',' ORDER BY grant_id DESC) AS ids "
        f"FROM {G} "
        "WHERE grant_id < 300 GROUP BY program ORDER BY program",
        refused=frozenset({"sqlite"}),
        refusal_names="STRING_AGG",
    ),
    Case(
        "string-agg-of-masked-names",  # the order inside is unspecified: measure it
        f"SELECT gender, LENGTH(STRING_AGG(name, '')) AS chars, COUNT(*) AS n FROM {P} "
        "GROUP BY gender ORDER BY gender",
    ),
    Case(
        "filter",
        f"SELECT program, COUNT(*) FILTER (WHERE amount >= 1000) AS big, SUM(amount) FILTER "
        f"(WHERE EXTRACT(YEAR FROM granted_date) = 2025) AS y2025, COUNT(*) AS n FROM {G} "
        "GROUP BY program ORDER BY program",
    ),
    Case(
        "filter-over-masked",
        f"SELECT COUNT(*) FILTER (WHERE name LIKE '张%') AS zhang, COUNT(*) FILTER "
        f"(WHERE phone LIKE '138%') AS p138, MAX(address) FILTER (WHERE gender = '女') AS a "
        f"FROM {P}",
    ),
    # ---------------------------------------------------------------- dates
    Case(
        "date-trunc-month",
        f"SELECT DATE_TRUNC('month', granted_date) AS month, COUNT(*) AS n FROM {G} "
        "GROUP BY DATE_TRUNC('month', granted_date) ORDER BY month",
    ),
    Case(
        "date-trunc-units",
        f"SELECT grant_id, granted_date, DATE_TRUNC('week', granted_date) AS w, "
        f"DATE_TRUNC('quarter', granted_date) AS q, DATE_TRUNC('year', granted_date) AS y, "
        f"DATE_TRUNC('day', granted_date) AS d FROM {G} ORDER BY grant_id LIMIT 80",
    ),
    Case(
        "extract-fields",
        f"SELECT grant_id, EXTRACT(QUARTER FROM granted_date) AS q, EXTRACT(DOW FROM "
        f"granted_date) AS dow, EXTRACT(DOY FROM granted_date) AS doy, EXTRACT(DAY FROM "
        f"granted_date) AS d FROM {G} ORDER BY grant_id LIMIT 80",
    ),
    Case(
        "extract-weekday-counts",
        f"SELECT EXTRACT(DOW FROM birth_date) AS dow, COUNT(*) AS n FROM {P} "
        "GROUP BY EXTRACT(DOW FROM birth_date) ORDER BY dow",
    ),
    # ---------------------------------------------------------------- expressions
    Case(
        "case-coalesce-greatest-least",
        f"SELECT grant_id, CASE WHEN amount > 1000 THEN 'high' ELSE 'low' END AS band, "
        f"COALESCE(NULLIF(program, '临时救助'), '临时') AS p, GREATEST(amount, 500) AS g, "
        f"LEAST(amount, 500) AS l FROM {G} ORDER BY grant_id LIMIT 50",
    ),
    # ---------------------------------------------------------------- WITH RECURSIVE
    Case(
        "recursive-month-series",
        "WITH RECURSIVE m(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM m WHERE k < 12) "
        f"SELECT m.k, COUNT(g.grant_id) AS n FROM m LEFT JOIN {G} AS g "
        "ON EXTRACT(MONTH FROM g.granted_date) = m.k AND EXTRACT(YEAR FROM g.granted_date) = 2025 "
        "GROUP BY m.k ORDER BY m.k",
    ),
    Case(
        "recursive-over-a-masked-table",
        "WITH RECURSIVE chain(person_id, name, lvl) AS (SELECT person_id, name, 1 "
        f"FROM {P} WHERE person_id = (SELECT MIN(person_id) FROM {P}) UNION ALL "
        f"SELECT p.person_id, p.name, c.lvl + 1 FROM chain AS c JOIN {P} AS p "
        "ON p.person_id = c.person_id + 7 WHERE c.lvl < 6) "
        "SELECT person_id, name, lvl FROM chain ORDER BY lvl",
    ),
    Case(
        "recursive-499-steps",  # just under the bound: runs to its own end
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 500) "
        f"SELECT COUNT(*) AS steps, MAX(n) AS last, (SELECT COUNT(*) FROM {P}) AS people FROM r",
    ),
    # ---------------------------------------------------------------- LATERAL
    Case(
        "lateral-aggregate",
        f"SELECT p.person_id, x.n, x.total FROM {P} AS p CROSS JOIN LATERAL (SELECT COUNT(*) "
        f"AS n, SUM(g.amount) AS total FROM {G} AS g WHERE g.recipient_id_number = p.id_number) "
        "AS x ORDER BY p.person_id LIMIT 50",
        refused=NO_LATERAL,
        refusal_names="LATERAL",
    ),
    Case(
        "lateral-top-1",
        f"SELECT p.person_id, p.name, x.amount FROM {P} AS p LEFT JOIN LATERAL (SELECT "
        f"g.amount FROM {G} AS g WHERE g.recipient_id_number = p.id_number ORDER BY g.amount "
        "DESC, g.grant_id LIMIT 1) AS x ON TRUE ORDER BY p.person_id LIMIT 50",
        refused=NO_LATERAL,
        refusal_names="LATERAL",
    ),
    # ---------------------------------------------------------------- statistics (tjj)
    Case(
        "tjj-window-over-masked-buckets",
        f"SELECT amount AS bucket, n, SUM(n) OVER (ORDER BY amount ROWS BETWEEN UNBOUNDED "
        f"PRECEDING AND CURRENT ROW) AS cumulative FROM (SELECT amount, COUNT(*) AS n FROM {G} "
        "GROUP BY amount) AS b ORDER BY bucket",
        system=TJJ,
    ),
)


def json_of(value: Any) -> Any:
    """A value PostgreSQL returned, as README "Values in a result" says the gateway sends
    it (restated here, independently of gateway/query/respond.py)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float):
        assert math.isfinite(value)
        return int(value) if value.is_integer() else value
    if isinstance(value, dt.datetime):
        # DATE_TRUNC of a date is a timestamp with time zone in PostgreSQL (UTC here);
        # the gateway answers PostgreSQL's timestamp without the zone.
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise AssertionError(f"unexpected value {value!r}")


def test_cases_cover_every_construct_of_point_4() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
    words = " ".join(c.sql.upper() for c in CASES)
    for construct in ("WITH RECURSIVE", "ROWS BETWEEN", "RANGE BETWEEN", "NTILE(", "LAG(",
                      "LEAD(", "PERCENT_RANK(", "CUME_DIST(", "FIRST_VALUE(", "LAST_VALUE(",
                      "NTH_VALUE(", "STRING_AGG(", "FILTER (WHERE", "DATE_TRUNC(", "EXTRACT(",
                      "CASE WHEN", "COALESCE(", "GREATEST(", "LEAST(", "LATERAL"):  # fmt: skip
        assert construct in words, construct


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_analyst_query(gateway: Gateway, pg_oracle: PgOracle, case: Case) -> None:
    resp = gateway.query(case.system, case.sql)
    body = resp.json()
    where = f"[{gateway.backend}] {case.sql}\n -> {resp.status_code} {resp.text[:600]}"
    if gateway.backend in case.refused:
        assert (resp.status_code, body.get("code")) == (400, "unsupported_sql"), where
        assert case.refusal_names in body["detail"], where
        assert names_an_engine(body, case.sql) is None, where
        return
    assert resp.status_code == 200, where
    reference = [[json_of(v) for v in row] for row in pg_oracle.rows(case.system, case.sql)]
    assert reference, f"the reference answer of {case.id} is empty"
    limit = ex.cap(case.system, *tables_read(case.sql))
    assert len(reference) <= limit, f"{case.id}: choose a LIMIT under the row cap {limit}"
    assert body["rows"] == reference, where
    assert body["truncated"] is False


def test_unaliased_outputs_are_named_as_postgresql_names_them(gateway: Gateway) -> None:
    body = gateway.query(
        RSJ,
        f"SELECT program, COUNT(*), SUM(amount), MAX(granted_date), CAST(grant_id AS TEXT), "
        f"COALESCE(district, '?'), DATE_TRUNC('month', MIN(granted_date)), amount + 1 FROM {G} "
        "GROUP BY program, grant_id, district, amount ORDER BY grant_id LIMIT 1",
    ).json()
    assert [c["name"] for c in body["columns"]] == [
        "program", "count", "sum", "max", "grant_id", "coalesce", "date_trunc", "?column?",
    ]  # fmt: skip
    assert [c["type"] for c in body["columns"]][6] == "timestamp"


def test_values_have_one_form_on_every_backend(gateway: Gateway) -> None:
    """Dates as dates, timestamps in ISO 8601 with ``T``, an average as the nearest
    double of the exact quotient (MariaDB's default would cut it at four decimals)."""
    amounts = [g["amount"] for g in ex.grants() if g["program"] == "临时救助"]
    body = gateway.query(
        RSJ,
        f"SELECT MIN(granted_date) AS first_day, DATE_TRUNC('day', MIN(granted_date)) AS ts, "
        f"AVG(amount) AS mean, SUM(amount) AS total FROM {G} WHERE program = '临时救助'",
    ).json()
    first = min(g["granted_date"] for g in ex.grants() if g["program"] == "临时救助")
    assert body["rows"] == [
        [first.isoformat(), f"{first.isoformat()}T00:00:00", sum(amounts) / len(amounts),
         sum(amounts)]
    ]  # fmt: skip
    assert [c["type"] for c in body["columns"]] == ["date", "timestamp", "decimal", "integer"]


# ---------------------------------------------------------------------- refusals and 422


def test_a_recursion_past_the_bound_is_refused_never_cut(gateway: Gateway) -> None:
    resp = gateway.query(
        RSJ,
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 100000) "
        f"SELECT COUNT(*) AS steps FROM r CROSS JOIN (SELECT COUNT(*) AS c FROM {P}) AS p",
    )
    body = resp.json()
    where = f"[{gateway.backend}] {resp.status_code} {resp.text[:400]}"
    assert (resp.status_code, body["code"]) == (422, "query_too_expensive"), where
    assert body["max_recursion_steps"] == 500
    assert "500" in body["detail"] and "recursive" in body["detail"]
    assert names_an_engine(body, "") is None


@pytest.mark.parametrize(
    ("system", "sql", "words"),
    [
        (TJJ, f"SELECT EXTRACT(MONTH FROM birth_date) AS m FROM {P}", "EXTRACT needs a date"),
        (TJJ, f"SELECT DATE_TRUNC('month', birth_date) FROM {P}", "DATE_TRUNC needs a date"),
        (TJJ, f"SELECT COUNT(*) FROM {G} WHERE amount > 500", "amount is text here"),
        (TJJ, f"SELECT COUNT(*) FROM {G} WHERE amount IN (500, 1000)", "amount is text here"),
    ],
)
def test_a_masked_value_used_as_another_type_is_a_422_saying_why(
    gateway: Gateway, system: str, sql: str, words: str
) -> None:
    """tjj sees birth_date as a year (an integer) and amount as a bucket (text): the
    same 422 on every backend, before any engine coerces (SQLite would read 1990 as a
    Julian day) or fails."""
    resp = gateway.query(system, sql)
    body = resp.json()
    assert (resp.status_code, body["code"]) == (422, "type_mismatch"), resp.text
    assert words in body["detail"], body["detail"]


def test_a_cast_of_masked_text_is_a_422_where_the_engine_refuses_it(gateway: Gateway) -> None:
    """PostgreSQL and DuckDB refuse to convert the masked name; SQLite and MariaDB convert
    it (to 0: the masked value, never the raw one) — documented in the README."""
    resp = gateway.query(RSJ, f"SELECT CAST(name AS INTEGER) AS n FROM {P} LIMIT 3")
    body = resp.json()
    if gateway.backend in {"postgres", "duckdb"}:
        assert (resp.status_code, body["code"]) == (422, "type_mismatch"), resp.text
        assert "masked" in body["detail"]
        assert names_an_engine(body, "") is None
    else:
        assert resp.status_code == 200, resp.text
        assert body["rows"] == [[0], [0], [0]]


@pytest.mark.parametrize(
    ("sql", "named", "never"),
    [
        (f"SELECT DATE_TRUNC('decade', granted_date) FROM {G}", "DATE_TRUNC('decade'",
         "TIMESTAMP_TRUNC"),
        (f"SELECT SUM(amount) OVER (ORDER BY grant_id GROUPS BETWEEN 1 PRECEDING AND "
         f"CURRENT ROW) FROM {G}", "GROUPS", "WINDOWSPEC"),
        (f"SELECT AGE(granted_date) FROM {G}", "AGE()", "ANONYMOUS"),
        (f"SELECT grant_id FROM {G} WHERE granted_date > CURRENT_DATE - INTERVAL '1 year'",
         "INTERVAL", "INTERVAL values is"),
        (f"SELECT EXTRACT(EPOCH FROM granted_date) FROM {G}", "EXTRACT(EPOCH", "UNIX"),
    ],
)  # fmt: skip
def test_refusals_name_the_construct_as_written(
    gateway: Gateway, sql: str, named: str, never: str
) -> None:
    resp = gateway.query(RSJ, sql)
    body = resp.json()
    assert (resp.status_code, body["code"]) == (400, "unsupported_sql"), resp.text
    assert named in body["detail"], body["detail"]
    assert never.upper() not in body["detail"].upper(), body["detail"]
