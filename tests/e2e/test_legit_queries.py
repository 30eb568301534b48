"""Legitimate consumer queries, with exact answers, on every backend.

Each case's expected rows are re-computed in Python by :mod:`tests.e2e.expected` from the
generated demo data, the Python reference of each mask and the policy as written in
``policies/`` — never copied from the gateway's output. Every ORDER BY is total (ties
broken by a key), so row order is part of the assertion; averages are compared to within
half a hundredth (``ROUND(AVG(x), 2)`` rounds a double on some engines, a decimal on
others); no query divides integers (``/`` truncates on PostgreSQL and SQLite only).
Text ordering is by code point on every backend here (PostgreSQL ``C.UTF-8``, MariaDB
``utf8mb4_bin``, SQLite and DuckDB binary), which is Python's ``str`` order.

Run on all four backends with ``GATEWAY_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e import expected as ex
from tests.e2e.expected import ENTERPRISES, GRANTS, PEOPLE, RSJ, SWJ, TJJ, YBJ
from tests.e2e.harness import Gateway


@dataclass(frozen=True)
class Case:
    id: str
    system: str
    #: The SQL, or a function building it (for values computed from the demo data).
    sql: str | Callable[[], str]
    expected: Callable[[], list[Any]]
    #: The catalog tables the query reads (they decide the row cap).
    tables: tuple[str, ...]
    #: False when the SQL has no ORDER BY: rows are then compared as a multiset (the
    #: expected answer must fit under the row cap, or which rows come back is undefined).
    ordered: bool = True

    def text(self) -> str:
        return self.sql if isinstance(self.sql, str) else self.sql()


def _pseudonym_sql() -> str:
    target = ex.pseudonym(RSJ, ex.chosen_person()["id_number"])
    return (
        "SELECT person_id, gender, birth_date, id_number FROM population.people "
        f"WHERE id_number = '{target}'"
    )


def _raw_name_sql() -> str:
    # A raw name of a resident the system does see: WHERE sees the masked value only.
    return f"SELECT person_id FROM population.people WHERE name = '{ex.raw_name_of_first_local()}'"


def _raw_id_sql() -> str:
    raw = ex.chosen_person()["id_number"]
    return f"SELECT person_id FROM population.people WHERE id_number = '{raw}'"


def _legal_rep_sql() -> str:
    name = ex.chosen_enterprise()["legal_rep"]
    return (
        "SELECT enterprise_id, legal_rep, legal_rep_id_number FROM legal_person.enterprises "
        f"WHERE legal_rep = '{name}' ORDER BY enterprise_id"
    )


_CAPITAL_BAND = (
    "CASE WHEN registered_capital < 100 THEN 'a:<100' "
    "WHEN registered_capital < 1000 THEN 'b:100-999' "
    "WHEN registered_capital < 10000 THEN 'c:1000-9999' ELSE 'd:10000+' END"
)

CASES: tuple[Case, ...] = (
    # ------------------------------------------------------------------ simple selects
    Case(
        "women-youngest-first", RSJ,
        "SELECT person_id, name, gender, birth_date FROM population.people "
        "WHERE gender = '女' ORDER BY birth_date DESC, person_id LIMIT 10",
        ex.q_women_youngest_first, (PEOPLE,),
    ),
    Case(
        "masked-columns", RSJ,
        "SELECT person_id, name, id_number, phone, address FROM population.people "
        "ORDER BY person_id LIMIT 5",
        ex.q_masked_columns, (PEOPLE,),
    ),
    Case(
        "where-masked-name", RSJ,
        "SELECT person_id, name, gender FROM population.people WHERE name = '张**' "
        "ORDER BY person_id LIMIT 60",
        ex.q_name_equals_masked, (PEOPLE,),
    ),
    Case("where-raw-name-matches-nothing", RSJ, _raw_name_sql, ex.q_nothing, (PEOPLE,)),
    Case("where-raw-id-matches-nothing", RSJ, _raw_id_sql, ex.q_nothing, (PEOPLE,)),
    Case("where-pseudonym", RSJ, _pseudonym_sql, ex.q_pseudonym_equality, (PEOPLE,)),
    Case(
        "like-masked-phone", RSJ,
        "SELECT COUNT(*) AS n FROM population.people WHERE phone LIKE '138%'",
        ex.q_phone_prefix_count, (PEOPLE,),
    ),
    Case(
        "ybj-masked-columns", YBJ,
        "SELECT person_id, name, id_number, phone, district FROM population.people "
        "ORDER BY person_id LIMIT 5",
        ex.q_ybj_masked, (PEOPLE,),
    ),
    Case(
        "portal-pseudonyms", "rsj-portal",
        "SELECT person_id, id_number FROM population.people ORDER BY person_id LIMIT 3",
        ex.q_portal_pseudonyms, (PEOPLE,),
    ),
    Case(
        "swj-between", SWJ,
        "SELECT enterprise_id, name, registered_capital, legal_rep FROM legal_person.enterprises "
        "WHERE registered_capital BETWEEN 50000 AND 100000 AND district = '槐荫区' "
        "ORDER BY registered_capital DESC, enterprise_id",
        ex.q_swj_capital_between, (ENTERPRISES,),
    ),
    Case("swj-legal-rep-in-clear", SWJ, _legal_rep_sql, ex.q_swj_by_legal_rep, (ENTERPRISES,)),
    # ------------------------------------------------------------------ aggregates
    Case(
        "gender-stats", RSJ,
        "SELECT gender, COUNT(*) AS n, MIN(birth_date) AS oldest, MAX(birth_date) AS youngest, "
        "MIN(person_id) AS first_id FROM population.people GROUP BY gender ORDER BY gender",
        ex.q_gender_stats, (PEOPLE,),
    ),
    Case(
        "extract-year-having", RSJ,
        "SELECT EXTRACT(YEAR FROM birth_date) AS y, COUNT(*) AS n FROM population.people "
        "GROUP BY EXTRACT(YEAR FROM birth_date) HAVING COUNT(*) >= 50 ORDER BY y",
        ex.q_birth_years_having, (PEOPLE,),
    ),
    Case(
        "coalesce-masked-phone-collisions", RSJ,
        "SELECT COALESCE(phone, '无') AS p, COUNT(*) AS n FROM population.people "
        "GROUP BY COALESCE(phone, '无') HAVING COUNT(*) > 1 ORDER BY n DESC, p",
        ex.q_phone_collisions, (PEOPLE,),
    ),
    Case(
        "case-age-bands", RSJ,
        "SELECT band, COUNT(*) AS n FROM (SELECT CASE "
        "WHEN EXTRACT(YEAR FROM birth_date) < 1946 THEN '80+' "
        "WHEN EXTRACT(YEAR FROM birth_date) < 1966 THEN '60-79' ELSE '<60' END AS band "
        "FROM population.people) AS t GROUP BY band ORDER BY band",
        ex.q_age_bands, (PEOPLE,),
    ),
    Case(
        "program-stats", RSJ,
        "SELECT program, COUNT(*) AS n, SUM(amount) AS total, MIN(amount) AS lo, "
        "MAX(amount) AS hi, ROUND(AVG(amount), 2) AS mean FROM subsidies.grants "
        "GROUP BY program ORDER BY program",
        ex.q_program_stats, (GRANTS,),
    ),
    Case(
        "case-amount-bands", RSJ,
        "SELECT CASE WHEN amount >= 1000 THEN 'high' ELSE 'low' END AS band, COUNT(*) AS n, "
        "SUM(amount) AS total FROM subsidies.grants "
        "GROUP BY CASE WHEN amount >= 1000 THEN 'high' ELSE 'low' END ORDER BY band",
        ex.q_amount_bands, (GRANTS,),
    ),
    Case(
        "having-frequent-recipients", RSJ,
        "SELECT recipient_id_number, COUNT(*) AS n, SUM(amount) AS total FROM subsidies.grants "
        "GROUP BY recipient_id_number HAVING COUNT(*) >= 10 "
        "ORDER BY total DESC, recipient_id_number",
        ex.q_frequent_recipients, (GRANTS,),
    ),
    Case(
        "extract-month", RSJ,
        "SELECT EXTRACT(MONTH FROM granted_date) AS m, COUNT(*) AS n FROM subsidies.grants "
        "WHERE EXTRACT(YEAR FROM granted_date) = 2025 "
        "GROUP BY EXTRACT(MONTH FROM granted_date) ORDER BY m",
        ex.q_grants_per_year_month, (GRANTS,),
    ),
    Case(
        "ybj-gender-counts", YBJ,
        "SELECT gender, COUNT(*) AS n FROM population.people GROUP BY gender ORDER BY gender",
        ex.q_ybj_gender_counts, (PEOPLE,),
    ),
    Case(
        "portal-row-filter", "rsj-portal",
        "SELECT district, COUNT(*) AS n FROM population.people GROUP BY district "
        "ORDER BY district",
        ex.q_portal_districts, (PEOPLE,),
    ),
    Case(
        "swj-status-counts", SWJ,
        "SELECT status, COUNT(*) AS n FROM legal_person.enterprises GROUP BY status "
        "ORDER BY n DESC, status",
        ex.q_swj_status_counts, (ENTERPRISES,),
    ),
    Case(
        "swj-capital-bands", SWJ,
        f"SELECT {_CAPITAL_BAND} AS band, COUNT(*) AS n, SUM(registered_capital) AS total, "
        "MIN(registered_capital) AS lo, MAX(registered_capital) AS hi "
        "FROM legal_person.enterprises WHERE status IN ('存续', '在业') "
        f"GROUP BY {_CAPITAL_BAND} ORDER BY band",
        ex.q_swj_capital_bands, (ENTERPRISES,),
    ),
    Case(
        "swj-pseudonym-having", SWJ,
        "SELECT legal_rep_id_number, COUNT(*) AS n FROM legal_person.enterprises "
        "GROUP BY legal_rep_id_number HAVING COUNT(*) > 1 ORDER BY legal_rep_id_number",
        ex.q_swj_multi_company_reps, (ENTERPRISES,),
    ),
    Case(
        "swj-established-years", SWJ,
        "SELECT EXTRACT(YEAR FROM established_date) AS y, status, COUNT(*) AS n "
        "FROM legal_person.enterprises WHERE EXTRACT(YEAR FROM established_date) >= 2020 "
        "GROUP BY EXTRACT(YEAR FROM established_date), status ORDER BY y, status",
        ex.q_swj_established_recent, (ENTERPRISES,),
    ),
    Case(
        "swj-coalesce-nullif", SWJ,
        "SELECT COALESCE(NULLIF(NULLIF(status, '存续'), '在业'), '正常') AS s, COUNT(*) AS n "
        "FROM legal_person.enterprises "
        "GROUP BY COALESCE(NULLIF(NULLIF(status, '存续'), '在业'), '正常') ORDER BY s",
        ex.q_swj_coalesce_nullif, (ENTERPRISES,),
    ),
    # ------------------------------------------------------------------ tjj statistics
    Case(
        "tjj-birth-years", TJJ,
        "SELECT birth_date AS birth_year, gender, COUNT(*) AS n FROM population.people "
        "WHERE birth_date < 1940 GROUP BY birth_date, gender ORDER BY birth_year, gender",
        ex.q_tjj_old_birth_years, (PEOPLE,),
    ),
    Case(
        "tjj-decades", TJJ,
        "SELECT birth_date - birth_date % 10 AS decade, COUNT(*) AS n FROM population.people "
        "GROUP BY birth_date - birth_date % 10 ORDER BY decade",
        ex.q_tjj_decades, (PEOPLE,),
    ),
    Case(
        "tjj-district-gender", TJJ,
        "SELECT district, gender, COUNT(*) AS n FROM population.people "
        "GROUP BY district, gender ORDER BY district, gender",
        ex.q_tjj_district_gender, (PEOPLE,),
    ),
    Case(
        "tjj-city-buckets", TJJ,
        "SELECT district AS city, amount AS bucket, COUNT(*) AS n FROM subsidies.grants "
        "GROUP BY district, amount ORDER BY city, n DESC, bucket",
        ex.q_tjj_city_buckets, (GRANTS,),
    ),
    Case(
        "tjj-city-years", TJJ,
        "SELECT district, EXTRACT(YEAR FROM granted_date) AS y, COUNT(*) AS n, "
        "COUNT(DISTINCT recipient_id_number) AS persons FROM subsidies.grants "
        "GROUP BY district, EXTRACT(YEAR FROM granted_date) ORDER BY district, y",
        ex.q_tjj_city_years, (GRANTS,),
    ),
    Case(
        "tjj-where-bucket", TJJ,
        "SELECT program, COUNT(*) AS n FROM subsidies.grants WHERE amount = '500-999' "
        "GROUP BY program ORDER BY program",
        ex.q_tjj_bucket_filter, (GRANTS,),
    ),
    Case(
        "tjj-where-city", TJJ,
        "SELECT COUNT(CASE WHEN district = '济南市' THEN 1 END) AS jinan, "
        "COUNT(CASE WHEN district = '历下区' THEN 1 END) AS lixia FROM subsidies.grants",
        ex.q_tjj_city_filter, (GRANTS,),
    ),
    Case(
        "tjj-enterprises", TJJ,
        "SELECT district, status, COUNT(*) AS n FROM legal_person.enterprises "
        "GROUP BY district, status ORDER BY district, status",
        ex.q_tjj_enterprise_district_status, (ENTERPRISES,),
    ),
    Case(
        "tjj-cte-repeat-recipients", TJJ,
        "WITH per AS (SELECT district, recipient_id_number, COUNT(*) AS times "
        "FROM subsidies.grants GROUP BY district, recipient_id_number) "
        "SELECT district, times, COUNT(*) AS n FROM per WHERE times >= 8 "
        "GROUP BY district, times ORDER BY district, times",
        ex.q_tjj_recipients_per_city, (GRANTS,),
    ),
    # ------------------------------------------------------------------ windows
    Case(
        "row-number-per-gender", RSJ,
        "SELECT person_id, gender, birth_date, rn FROM (SELECT person_id, gender, birth_date, "
        "ROW_NUMBER() OVER (PARTITION BY gender ORDER BY birth_date, person_id) AS rn "
        "FROM population.people) AS t WHERE rn <= 3 ORDER BY gender, rn",
        ex.q_row_number_oldest_per_gender, (PEOPLE,),
    ),
    Case(
        "rank-per-program", RSJ,
        "SELECT program, r, amount, grant_id FROM (SELECT program, amount, grant_id, "
        "RANK() OVER (PARTITION BY program ORDER BY amount DESC) AS r FROM subsidies.grants) "
        "AS t WHERE r <= 3 ORDER BY program, r, grant_id",
        ex.q_rank_per_program, (GRANTS,),
    ),
    # ------------------------------------------------------------------ joins and CTEs
    Case(
        "join-people-grants", RSJ,
        "SELECT p.person_id, p.name, g.grant_id, g.program, g.amount "
        "FROM population.people AS p JOIN subsidies.grants AS g "
        "ON g.recipient_id_number = p.id_number WHERE g.program = '特困人员救助供养' "
        "ORDER BY g.grant_id LIMIT 30",
        ex.q_join_tekun, (PEOPLE, GRANTS),
    ),
    Case(
        "join-aggregate", RSJ,
        "SELECT p.gender, COUNT(DISTINCT p.person_id) AS persons, SUM(g.amount) AS total "
        "FROM population.people p JOIN subsidies.grants g ON g.recipient_id_number = p.id_number "
        "GROUP BY p.gender ORDER BY p.gender",
        ex.q_join_gender_totals, (PEOPLE, GRANTS),
    ),
    Case(
        "left-join-anti", RSJ,
        "SELECT COUNT(*) AS n FROM population.people p LEFT JOIN subsidies.grants g "
        "ON g.recipient_id_number = p.id_number WHERE g.grant_id IS NULL",
        ex.q_people_without_grants, (PEOPLE, GRANTS),
    ),
    Case(
        "join-enterprise-reps", RSJ,
        "SELECT e.enterprise_id, e.legal_rep, p.name, p.person_id "
        "FROM legal_person.enterprises e JOIN population.people p "
        "ON p.id_number = e.legal_rep_id_number ORDER BY e.enterprise_id LIMIT 50",
        ex.q_enterprise_reps, (ENTERPRISES, PEOPLE),
    ),
    Case(
        "cte-join", RSJ,
        "WITH totals AS (SELECT recipient_id_number AS rid, SUM(amount) AS total, "
        "COUNT(*) AS n FROM subsidies.grants GROUP BY recipient_id_number) "
        "SELECT p.person_id, t.total, t.n FROM totals t JOIN population.people p "
        "ON p.id_number = t.rid ORDER BY t.total DESC, p.person_id LIMIT 15",
        ex.q_cte_top_recipients, (GRANTS, PEOPLE),
    ),
    # ------------------------------------------------------------------ set operations
    Case(
        "intersect", RSJ,
        "SELECT id_number FROM population.people WHERE gender = '女' INTERSECT "
        "SELECT recipient_id_number FROM subsidies.grants WHERE program = '高龄津贴' "
        "ORDER BY id_number",
        ex.q_intersect_women_gaoling, (PEOPLE, GRANTS),
    ),
    Case(
        "except-in-derived-table", RSJ,
        "SELECT COUNT(*) AS n FROM (SELECT recipient_id_number FROM subsidies.grants EXCEPT "
        "SELECT legal_rep_id_number FROM legal_person.enterprises) AS x",
        ex.q_except_recipients_not_reps, (GRANTS, ENTERPRISES),
    ),
    Case(
        "union-all-counts", RSJ,
        "SELECT '人口' AS kind, COUNT(*) AS n FROM population.people UNION ALL "
        "SELECT '企业', COUNT(*) FROM legal_person.enterprises WHERE district = '历下区' "
        "UNION ALL SELECT '救助', COUNT(*) FROM subsidies.grants ORDER BY kind",
        ex.q_union_counts, (PEOPLE, ENTERPRISES, GRANTS),
    ),
    Case(
        "union-distinct", RSJ,
        "SELECT district FROM legal_person.enterprises WHERE status = '吊销' UNION "
        "SELECT district FROM population.people ORDER BY district",
        ex.q_union_distinct_districts, (ENTERPRISES, PEOPLE),
    ),
    Case(
        "intersect-unordered", RSJ,
        "SELECT id_number FROM population.people WHERE gender = '女' INTERSECT "
        "SELECT recipient_id_number FROM subsidies.grants WHERE program = '高龄津贴'",
        ex.q_intersect_women_gaoling, (PEOPLE, GRANTS), ordered=False,
    ),
    Case(
        "union-all-in-derived-table", RSJ,
        "SELECT kind, n FROM (SELECT '人口' AS kind, COUNT(*) AS n FROM population.people "
        "UNION ALL SELECT '企业', COUNT(*) FROM legal_person.enterprises "
        "WHERE district = '历下区' UNION ALL SELECT '救助', COUNT(*) FROM subsidies.grants) AS u "
        "ORDER BY kind",
        ex.q_union_counts, (PEOPLE, ENTERPRISES, GRANTS),
    ),
    Case(
        "union-distinct-order-by-position", RSJ,
        "SELECT district FROM legal_person.enterprises WHERE status = '吊销' UNION "
        "SELECT district FROM population.people ORDER BY 1",
        ex.q_union_distinct_districts, (ENTERPRISES, PEOPLE),
    ),
    # ------------------------------------------------------------------ subqueries
    Case(
        "in-subquery", RSJ,
        "SELECT person_id, name FROM population.people WHERE id_number IN "
        "(SELECT recipient_id_number FROM subsidies.grants "
        "WHERE program = '特困人员救助供养' AND amount >= 1800) ORDER BY person_id",
        ex.q_in_subquery, (PEOPLE, GRANTS),
    ),
    Case(
        "exists-scalar-subqueries", RSJ,
        "SELECT (SELECT COUNT(*) FROM population.people p WHERE EXISTS (SELECT 1 FROM "
        "legal_person.enterprises e WHERE e.legal_rep_id_number = p.id_number)) AS yes, "
        "(SELECT COUNT(*) FROM population.people p WHERE NOT EXISTS (SELECT 1 FROM "
        "legal_person.enterprises e WHERE e.legal_rep_id_number = p.id_number)) AS no",
        ex.q_exists_reps, (PEOPLE, ENTERPRISES),
    ),
    Case(
        "exists-correlated", RSJ,
        "SELECT COUNT(*) AS n FROM population.people p WHERE EXISTS (SELECT 1 FROM "
        "subsidies.grants g WHERE g.recipient_id_number = p.id_number "
        "AND g.program = '高龄津贴')",
        ex.q_exists_gaoling, (PEOPLE, GRANTS),
    ),
    Case(
        "scalar-subquery-in-where", RSJ,
        "SELECT grant_id, amount FROM subsidies.grants WHERE program = '临时救助' "
        "AND amount > (SELECT AVG(amount) FROM subsidies.grants) "
        "ORDER BY amount DESC, grant_id LIMIT 10",
        ex.q_above_average_linshi, (GRANTS,),
    ),
    Case(
        "scalar-subquery-in-select", RSJ,
        "SELECT program, COUNT(*) AS n, (SELECT COUNT(*) FROM subsidies.grants) AS total "
        "FROM subsidies.grants GROUP BY program ORDER BY program",
        ex.q_program_share, (GRANTS,),
    ),
)  # fmt: skip


def _ok(resp: Any) -> dict[str, Any]:
    assert resp.status_code == 200, f"{resp.status_code}: {resp.text}"
    body: dict[str, Any] = resp.json()
    return body


def test_enough_cases() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_legit_query(gateway: Gateway, case: Case) -> None:
    full = case.expected()
    allowed = ex.cap(case.system, *case.tables)
    body = _ok(gateway.query(case.system, case.text()))
    if case.ordered:
        assert body["rows"] == full[:allowed]
    else:
        assert len(full) <= allowed
        assert sorted(body["rows"]) == sorted(full)
    assert body["row_count"] == min(len(full), allowed)
    assert body["truncated"] is (len(full) > allowed)
    assert body["audit_id"]


def test_expected_answers_are_not_trivial() -> None:
    """The cases would prove little if most expected answers were empty."""
    empty = [c.id for c in CASES if not c.expected()]
    assert sorted(empty) == ["where-raw-id-matches-nothing", "where-raw-name-matches-nothing"]


# ---------------------------------------------------------------------- pagination


_MEN_BEFORE_1955 = (
    "SELECT person_id, name, birth_date FROM population.people "
    "WHERE gender = '男' AND EXTRACT(YEAR FROM birth_date) < 1955 ORDER BY person_id"
)


def test_pages_concatenate_to_the_full_result(gateway: Gateway) -> None:
    full = ex.q_men_born_before_1955()
    assert 200 < len(full) < 300  # more than one response can hold
    pages: list[list[Any]] = []
    offset = 0
    while True:
        body = _ok(gateway.query(RSJ, f"{_MEN_BEFORE_1955} LIMIT 100 OFFSET {offset}"))
        assert body["truncated"] is False
        assert body["rows"] == ex.page(full, 100, offset)
        pages += body["rows"]
        if body["row_count"] < 100:
            break
        offset += 100
    assert pages == full
    assert offset == 200


def test_without_limit_the_policy_cap_truncates(gateway: Gateway) -> None:
    full = ex.q_men_born_before_1955()
    body = _ok(gateway.query(RSJ, _MEN_BEFORE_1955))
    assert body["row_count"] == 200
    assert body["rows"] == full[:200]
    assert body["truncated"] is True


@pytest.mark.parametrize(
    ("limit", "rows", "truncated"),
    [(None, 200, True), (200, 200, False), (201, 200, True), (1000, 200, True), (7, 7, False)],
)
def test_row_cap_and_truncation_flag(
    gateway: Gateway, limit: int | None, rows: int, truncated: bool
) -> None:
    ids = sorted(r["person_id"] for r in ex.people())
    sql = "SELECT person_id FROM population.people ORDER BY person_id"
    if limit is not None:
        sql += f" LIMIT {limit}"
    body = _ok(gateway.query(RSJ, sql))
    assert body["rows"] == [[i] for i in ids[:rows]]
    assert body["truncated"] is truncated


def test_small_result_without_limit_is_not_truncated(gateway: Gateway) -> None:
    full = ex.q_in_subquery()
    assert 0 < len(full) < 200
    body = _ok(
        gateway.query(
            RSJ,
            "SELECT person_id, name FROM population.people WHERE id_number IN "
            "(SELECT recipient_id_number FROM subsidies.grants "
            "WHERE program = '特困人员救助供养' AND amount >= 1800) ORDER BY person_id",
        )
    )
    assert body["rows"] == full
    assert body["truncated"] is False


@pytest.mark.parametrize(
    ("limit", "max_rows", "rows", "truncated"),
    [(None, 25, 25, True), (10, 25, 10, False), (25, 25, 25, False), (26, 25, 25, True),
     (None, 500, 200, True)],
)  # fmt: skip
def test_request_max_rows_lowers_the_cap(
    gateway: Gateway, limit: int | None, max_rows: int, rows: int, truncated: bool
) -> None:
    ids = sorted(r["person_id"] for r in ex.people())
    sql = "SELECT person_id FROM population.people ORDER BY person_id"
    if limit is not None:
        sql += f" LIMIT {limit}"
    body = _ok(gateway.query(RSJ, sql, max_rows=max_rows))
    assert body["rows"] == [[i] for i in ids[:rows]]
    assert body["truncated"] is truncated


def test_join_is_capped_by_the_smaller_table_limit(gateway: Gateway) -> None:
    by_id = {p["id_number"]: p["person_id"] for p in ex.people()}
    full = sorted(
        [by_id[g["recipient_id_number"]], g["grant_id"]]
        for g in ex.grants()
        if g["recipient_id_number"] in by_id
    )
    assert len(full) > 200
    body = _ok(
        gateway.query(
            RSJ,
            "SELECT p.person_id, g.grant_id FROM population.people p JOIN subsidies.grants g "
            "ON g.recipient_id_number = p.id_number ORDER BY p.person_id, g.grant_id",
        )
    )
    assert body["rows"] == full[:200]
    assert body["truncated"] is True


def test_swj_enterprise_cap(gateway: Gateway) -> None:
    ids = sorted(e["enterprise_id"] for e in ex.enterprises(SWJ))
    assert len(ids) > 2000
    body = _ok(gateway.query(SWJ, "SELECT enterprise_id FROM legal_person.enterprises ORDER BY 1"))
    assert body["rows"] == [[i] for i in ids[:2000]]
    assert body["truncated"] is True


def test_date_literal_comparison(gateway: Gateway) -> None:
    n = sum(1 for g in ex.grants() if g["granted_date"].isoformat() >= "2026-01-01")
    body = _ok(
        gateway.query(
            RSJ,
            "SELECT COUNT(*) AS n FROM subsidies.grants WHERE granted_date >= DATE '2026-01-01'",
        )
    )
    assert body["rows"] == [[n]]


# ---------------------------------------------------------------------- column metadata


def _columns(body: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    return [(c["name"], c["type"], c["masking"]) for c in body["columns"]]


def test_columns_of_masked_people(gateway: Gateway) -> None:
    body = _ok(gateway.query(RSJ, next(c for c in CASES if c.id == "masked-columns").text()))
    assert _columns(body) == [
        ("person_id", "integer", []),
        ("name", "text", ["name"]),
        ("id_number", "text", ["pseudonym"]),
        ("phone", "text", ["phone"]),
        ("address", "text", ["address"]),
    ]


def test_columns_of_ybj_people(gateway: Gateway) -> None:
    body = _ok(gateway.query(YBJ, next(c for c in CASES if c.id == "ybj-masked-columns").text()))
    assert _columns(body) == [
        ("person_id", "integer", []),
        ("name", "text", ["name"]),
        ("id_number", "text", ["id_number"]),
        ("phone", "text", ["phone"]),
        ("district", "text", []),
    ]


def test_columns_of_tjj_statistics(gateway: Gateway) -> None:
    body = _ok(gateway.query(TJJ, next(c for c in CASES if c.id == "tjj-city-buckets").text()))
    assert _columns(body) == [
        ("city", "text", ["city"]),
        ("bucket", "text", ["bucket:500"]),
        ("n", "integer", []),
    ]
    body = _ok(gateway.query(TJJ, next(c for c in CASES if c.id == "tjj-birth-years").text()))
    assert _columns(body) == [
        ("birth_year", "integer", ["year"]),
        ("gender", "text", []),
        ("n", "integer", []),
    ]


def test_columns_through_join_and_cte(gateway: Gateway) -> None:
    body = _ok(gateway.query(RSJ, next(c for c in CASES if c.id == "join-people-grants").text()))
    assert _columns(body) == [
        ("person_id", "integer", []),
        ("name", "text", ["name"]),
        ("grant_id", "integer", []),
        ("program", "text", []),
        ("amount", "integer", []),
    ]
    body = _ok(gateway.query(RSJ, next(c for c in CASES if c.id == "intersect-unordered").text()))
    assert _columns(body) == [("id_number", "text", ["pseudonym"])]
    body = _ok(
        gateway.query(
            TJJ,
            "WITH g AS (SELECT district AS city, amount FROM subsidies.grants) "
            "SELECT city, amount FROM g ORDER BY city, amount LIMIT 1",
        )
    )
    assert _columns(body) == [("city", "text", ["city"]), ("amount", "text", ["bucket:500"])]


def test_swj_sees_legal_rep_in_clear(gateway: Gateway) -> None:
    body = _ok(gateway.query(SWJ, _legal_rep_sql()))
    assert _columns(body) == [
        ("enterprise_id", "integer", []),
        ("legal_rep", "text", []),
        ("legal_rep_id_number", "text", ["pseudonym"]),
    ]
