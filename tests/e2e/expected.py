"""Expected answers of the legitimate e2e queries, re-computed in plain Python.

Nothing here asks the gateway (or its policy engine, planner or SQL) anything: the raw
rows come from :func:`generate_demo_data` (what every backend is loaded with), the masks
from :func:`mask_value` (the documented Python reference of each mask), the pseudonym keys
from the demo master secret, and *what each system may see* is written out by hand below,
read off ``policies/policy.csv`` and ``policies/systems.toml``. If the policy files change,
:data:`POLICIES` must be updated by a human — which is the point: the e2e tests then
check that the engine, the rewrite and the four backends agree with the written policy.

Each ``q_*`` function returns the rows a query must return *before* the policy's row cap
(the SQL's own LIMIT/OFFSET applied), as JSON values: dates as ISO text, numbers as
``int``/``float``, NULL as ``None``. Averages are returned as ``pytest.approx`` cells.
"""

from __future__ import annotations

import functools
import tomllib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from gateway.auth.keys import load_pseudonym_secret
from gateway.demo.generate import DEMO_TABLES, DemoData, generate_demo_data
from gateway.domain import MaskSpec
from gateway.query.rewrite.masks import MaskContext, derive_pseudonym_key, mask_value

ROOT = Path(__file__).resolve().parents[2]

Row = dict[str, Any]
Rows = list[list[Any]]

PEOPLE = "population.people"
ENTERPRISES = "legal_person.enterprises"
GRANTS = "subsidies.grants"

#: Catalog table -> physical table (catalog.toml ``source``).
SOURCES = {
    PEOPLE: "population_people",
    ENTERPRISES: "market_enterprises",
    GRANTS: "civil_subsidies",
}

#: Rows a response may hold when no policy line sets a limit (catalog.toml default_max_rows).
DEFAULT_MAX_ROWS = 1000


@dataclass(frozen=True)
class TablePolicy:
    """What one system sees of one table: visible column -> mask (None: served as
    stored); the district its rows are filtered to (None: no row filter); its row limit."""

    masks: Mapping[str, str | None]
    district: str | None
    max_rows: int


@dataclass(frozen=True)
class SystemPolicy:
    department: str
    tables: Mapping[str, TablePolicy]


_ENTERPRISES_FOR_READERS = TablePolicy(
    {
        "enterprise_id": None,
        "name": None,
        "credit_code": None,
        "legal_rep": "name",
        "legal_rep_id_number": "pseudonym",
        "registered_capital": None,
        "status": None,
        "established_date": None,
        "district": None,
    },
    None,
    1000,
)


def _rsj(district: str) -> SystemPolicy:
    return SystemPolicy(
        "rsj",
        {
            PEOPLE: TablePolicy(
                {
                    "person_id": None,
                    "name": "name",
                    "id_number": "pseudonym",
                    "birth_date": None,
                    "gender": None,
                    "phone": "phone",
                    "address": "address",
                    "district": None,
                },
                district,
                200,
            ),
            GRANTS: TablePolicy(
                {
                    "grant_id": None,
                    "recipient_id_number": "pseudonym",
                    "program": None,
                    "amount": None,
                    "granted_date": None,
                    "district": None,
                },
                district,
                500,
            ),
            ENTERPRISES: _ENTERPRISES_FOR_READERS,
        },
    )


#: The demo policy (policy.csv), per system, for the purpose each system declares.
POLICIES: Mapping[str, SystemPolicy] = {
    "rsj-subsidy": _rsj("历下区"),
    "rsj-portal": _rsj("天桥区"),
    "ybj-insurance": SystemPolicy(
        "ybj",
        {
            PEOPLE: TablePolicy(
                {
                    "person_id": None,
                    "name": "name",
                    "id_number": "id_number",
                    "birth_date": None,
                    "gender": None,
                    "phone": "phone",
                    "district": None,
                },
                "市中区",
                100,
            ),
            ENTERPRISES: _ENTERPRISES_FOR_READERS,
        },
    ),
    "swj-tax": SystemPolicy(
        "swj",
        {
            ENTERPRISES: TablePolicy(
                {**_ENTERPRISES_FOR_READERS.masks, "legal_rep": None}, None, 2000
            ),
        },
    ),
    "tjj-stats": SystemPolicy(
        "tjj",
        {
            PEOPLE: TablePolicy(
                {"birth_date": "year", "gender": None, "district": None}, None, 5000
            ),
            GRANTS: TablePolicy(
                {
                    "grant_id": None,
                    "recipient_id_number": "pseudonym",
                    "program": None,
                    "amount": "bucket:500",
                    "granted_date": None,
                    "district": "city",
                },
                None,
                5000,
            ),
            ENTERPRISES: TablePolicy(
                {
                    "enterprise_id": None,
                    "name": None,
                    "credit_code": None,
                    "legal_rep": "name",
                    "registered_capital": None,
                    "status": None,
                    "established_date": None,
                    "district": None,
                },
                None,
                DEFAULT_MAX_ROWS,
            ),
        },
    ),
}


def cap(system: str, *tables: str) -> int:
    """Rows a response to ``system`` over ``tables`` may hold: the smallest table limit."""
    return min(POLICIES[system].tables[t].max_rows for t in tables)


# ------------------------------------------------------------------------------ data


@functools.cache
def demo() -> DemoData:
    return generate_demo_data()


@functools.cache
def regions() -> Mapping[str, str]:
    with (ROOT / "policies" / "catalog.toml").open("rb") as f:
        return dict(tomllib.load(f)["regions"])


@functools.cache
def mask_context(department: str) -> MaskContext:
    secret = load_pseudonym_secret(ROOT / "keys" / "demo")
    return MaskContext(derive_pseudonym_key(secret, department), regions())


def pseudonym(system: str, raw: str) -> str:
    """The pseudonym ``system`` sees for the raw identifier ``raw``."""
    value = mask_value(
        MaskSpec("pseudonym"),
        raw,
        column_type="text",
        ctx=mask_context(POLICIES[system].department),
    )
    assert isinstance(value, str)
    return value


def raw_rows(table: str) -> list[Row]:
    """The physical rows of a catalog table, as dicts by column name."""
    source = SOURCES[table]
    for spec, rows in demo().tables():
        if spec.name == source:
            return [dict(zip(spec.column_names, row, strict=True)) for row in rows]
    raise KeyError(table)


def _column_types(table: str) -> dict[str, str]:
    spec = next(s for s in DEMO_TABLES if s.name == SOURCES[table])
    return {c.name: c.type for c in spec.columns}


@functools.cache
def view(system: str, table: str) -> tuple[Row, ...]:
    """The rows ``system`` sees of ``table``: row filter applied to the raw district,
    denied columns gone, every visible column masked as the policy says."""
    policy = POLICIES[system].tables[table]
    ctx = mask_context(POLICIES[system].department)
    types = _column_types(table)
    out: list[Row] = []
    for raw in raw_rows(table):
        if policy.district is not None and raw["district"] != policy.district:
            continue
        row: Row = {}
        for column, mask in policy.masks.items():
            value = raw[column]
            if mask is not None:
                value = mask_value(MaskSpec.parse(mask), value, column_type=types[column], ctx=ctx)
            row[column] = value
        out.append(row)
    return tuple(out)


def people(system: str = "rsj-subsidy") -> tuple[Row, ...]:
    return view(system, PEOPLE)


def grants(system: str = "rsj-subsidy") -> tuple[Row, ...]:
    return view(system, GRANTS)


def enterprises(system: str = "rsj-subsidy") -> tuple[Row, ...]:
    return view(system, ENTERPRISES)


# ------------------------------------------------------------------------------ helpers


def js(value: Any) -> Any:
    """A cell as the JSON body carries it."""
    if isinstance(value, date):
        return value.isoformat()
    return value


def project(rows: Iterable[Row], *columns: str) -> Rows:
    return [[js(r[c]) for c in columns] for r in rows]


def page(rows: list[Any], limit: int | None = None, offset: int = 0) -> list[Any]:
    end = None if limit is None else offset + limit
    return rows[offset:end]


def avg2(values: Iterable[int]) -> Any:
    """``ROUND(AVG(x), 2)``: within half a hundredth of the exact mean (engines round a
    binary double or an exact decimal, so the last digit of a tie may differ)."""
    vals = list(values)
    exact = Fraction(sum(vals), len(vals))
    return pytest.approx(float(exact), abs=0.005 + 1e-9)


def year(d: date) -> int:
    return d.year


def group_count(rows: Iterable[Row], key: Callable[[Row], Any]) -> Counter[Any]:
    return Counter(key(r) for r in rows)


# ------------------------------------------------------------------------------ rsj: people

RSJ = "rsj-subsidy"


def q_women_youngest_first() -> Rows:
    rows = [r for r in people() if r["gender"] == "女"]
    rows.sort(key=lambda r: (-r["birth_date"].toordinal(), r["person_id"]))
    return project(page(rows, 10), "person_id", "name", "gender", "birth_date")


def q_masked_columns() -> Rows:
    rows = sorted(people(), key=lambda r: r["person_id"])
    return project(page(rows, 5), "person_id", "name", "id_number", "phone", "address")


def q_name_equals_masked() -> Rows:
    rows = sorted((r for r in people() if r["name"] == "张**"), key=lambda r: r["person_id"])
    return project(page(rows, 60), "person_id", "name", "gender")


def raw_name_of_first_local(district: str = "历下区") -> str:
    """A raw name of a resident of ``district`` (used to show raw values match nothing)."""
    name: str = next(r["name"] for r in raw_rows(PEOPLE) if r["district"] == district)
    return name


def q_nothing() -> Rows:
    return []


def chosen_person(nth: int = 7, district: str = "历下区") -> Row:
    """The ``nth`` resident of ``district`` in person_id order (raw row)."""
    return [r for r in raw_rows(PEOPLE) if r["district"] == district][nth]


def q_pseudonym_equality() -> Rows:
    target = pseudonym(RSJ, chosen_person()["id_number"])
    rows = [r for r in people() if r["id_number"] == target]
    return project(rows, "person_id", "gender", "birth_date", "id_number")


def q_phone_prefix_count() -> Rows:
    n = sum(1 for r in people() if r["phone"] is not None and r["phone"].startswith("138"))
    return [[n]]


def q_gender_stats() -> Rows:
    by: dict[str, list[Row]] = defaultdict(list)
    for r in people():
        by[r["gender"]].append(r)
    return [
        [
            g,
            len(rs),
            js(min(r["birth_date"] for r in rs)),
            js(max(r["birth_date"] for r in rs)),
            min(r["person_id"] for r in rs),
        ]
        for g, rs in sorted(by.items())
    ]


def q_birth_years_having() -> Rows:
    counts = group_count(people(), lambda r: year(r["birth_date"]))
    return [[y, n] for y, n in sorted(counts.items()) if n >= 50]


def q_phone_collisions() -> Rows:
    counts = group_count(people(), lambda r: r["phone"] if r["phone"] is not None else "无")
    rows = [[p, n] for p, n in counts.items() if n > 1]
    rows.sort(key=lambda x: (-x[1], x[0]))
    return rows


def q_age_bands() -> Rows:
    def band(r: Row) -> str:
        y = year(r["birth_date"])
        if y < 1946:
            return "80+"
        if y < 1966:
            return "60-79"
        return "<60"

    counts = group_count(people(), band)
    return [[b, counts[b]] for b in sorted(counts)]


def q_men_born_before_1955() -> list[Any]:
    rows = sorted(
        (r for r in people() if r["gender"] == "男" and year(r["birth_date"]) < 1955),
        key=lambda r: r["person_id"],
    )
    return project(rows, "person_id", "name", "birth_date")


def q_row_number_oldest_per_gender() -> Rows:
    out: Rows = []
    for g in sorted({r["gender"] for r in people()}):
        rows = sorted(
            (r for r in people() if r["gender"] == g),
            key=lambda r: (r["birth_date"], r["person_id"]),
        )
        out += [[r["person_id"], g, js(r["birth_date"]), i] for i, r in enumerate(rows[:3], 1)]
    return out


# ------------------------------------------------------------------------------ rsj: grants


def q_program_stats() -> Rows:
    by: dict[str, list[int]] = defaultdict(list)
    for r in grants():
        by[r["program"]].append(r["amount"])
    return [[p, len(a), sum(a), min(a), max(a), avg2(a)] for p, a in sorted(by.items())]


def q_amount_bands() -> Rows:
    by: dict[str, list[int]] = defaultdict(list)
    for r in grants():
        by["high" if r["amount"] >= 1000 else "low"].append(r["amount"])
    return [[b, len(a), sum(a)] for b, a in sorted(by.items())]


def q_frequent_recipients() -> Rows:
    by: dict[str, list[int]] = defaultdict(list)
    for r in grants():
        by[r["recipient_id_number"]].append(r["amount"])
    keys = sorted((k for k, a in by.items() if len(a) >= 10), key=lambda k: (-sum(by[k]), k))
    return [[k, len(by[k]), sum(by[k])] for k in keys]


def q_rank_per_program() -> Rows:
    out: Rows = []
    for program in sorted({r["program"] for r in grants()}):
        rows = [r for r in grants() if r["program"] == program]
        amounts = sorted((r["amount"] for r in rows), reverse=True)
        ranked = []
        for r in rows:
            rank = 1 + sum(1 for a in amounts if a > r["amount"])
            if rank <= 3:
                ranked.append([program, rank, r["amount"], r["grant_id"]])
        ranked.sort(key=lambda x: (x[1], x[3]))
        out += ranked
    return out


def q_above_average_linshi() -> Rows:
    amounts = [r["amount"] for r in grants()]
    mean = Fraction(sum(amounts), len(amounts))
    rows = [r for r in grants() if r["program"] == "临时救助" and r["amount"] > mean]
    rows.sort(key=lambda r: (-r["amount"], r["grant_id"]))
    return project(page(rows, 10), "grant_id", "amount")


def q_program_share() -> Rows:
    total = len(grants())
    counts = group_count(grants(), lambda r: r["program"])
    return [[p, n, total] for p, n in sorted(counts.items())]


def q_grants_per_year_month() -> Rows:
    counts = group_count(
        (r for r in grants() if r["granted_date"].year == 2025),
        lambda r: r["granted_date"].month,
    )
    return [[m, counts[m]] for m in sorted(counts)]


# ------------------------------------------------------------------------------ rsj: joins


def _people_by_pseudonym(system: str = RSJ) -> dict[str, Row]:
    return {r["id_number"]: r for r in people(system)}


def q_join_tekun() -> Rows:
    by_id = _people_by_pseudonym()
    rows = []
    for g in sorted(grants(), key=lambda r: r["grant_id"]):
        p = by_id.get(g["recipient_id_number"])
        if p is not None and g["program"] == "特困人员救助供养":
            rows.append([p["person_id"], p["name"], g["grant_id"], g["program"], g["amount"]])
    return page(rows, 30)


def q_join_gender_totals() -> Rows:
    by_id = _people_by_pseudonym()
    persons: dict[str, set[int]] = defaultdict(set)
    totals: Counter[str] = Counter()
    for g in grants():
        p = by_id.get(g["recipient_id_number"])
        if p is not None:
            persons[p["gender"]].add(p["person_id"])
            totals[p["gender"]] += g["amount"]
    return [[k, len(persons[k]), totals[k]] for k in sorted(persons)]


def q_people_without_grants() -> Rows:
    recipients = {g["recipient_id_number"] for g in grants()}
    return [[sum(1 for p in people() if p["id_number"] not in recipients)]]


def q_enterprise_reps() -> Rows:
    by_id = _people_by_pseudonym()
    rows = []
    for e in sorted(enterprises(), key=lambda r: r["enterprise_id"]):
        p = by_id.get(e["legal_rep_id_number"])
        if p is not None:
            rows.append([e["enterprise_id"], e["legal_rep"], p["name"], p["person_id"]])
    return page(rows, 50)


def q_cte_top_recipients() -> Rows:
    by_id = _people_by_pseudonym()
    totals: dict[str, list[int]] = defaultdict(list)
    for g in grants():
        totals[g["recipient_id_number"]].append(g["amount"])
    rows = [[by_id[k]["person_id"], sum(a), len(a)] for k, a in totals.items() if k in by_id]
    rows.sort(key=lambda x: (-x[1], x[0]))
    return page(rows, 15)


def q_intersect_women_gaoling() -> Rows:
    women = {p["id_number"] for p in people() if p["gender"] == "女"}
    gaoling = {g["recipient_id_number"] for g in grants() if g["program"] == "高龄津贴"}
    return [[k] for k in sorted(women & gaoling)]


def q_except_recipients_not_reps() -> Rows:
    recipients = {g["recipient_id_number"] for g in grants()}
    reps = {e["legal_rep_id_number"] for e in enterprises()}
    return [[len(recipients - reps)]]


def q_union_counts() -> Rows:
    ent = sum(1 for e in enterprises() if e["district"] == "历下区")
    return sorted([["人口", len(people())], ["企业", ent], ["救助", len(grants())]])


def q_union_distinct_districts() -> Rows:
    districts = {e["district"] for e in enterprises() if e["status"] == "吊销"}
    districts |= {p["district"] for p in people()}
    return [[d] for d in sorted(districts)]


def q_in_subquery() -> Rows:
    ids = {
        g["recipient_id_number"]
        for g in grants()
        if g["program"] == "特困人员救助供养" and g["amount"] >= 1800
    }
    rows = sorted((p for p in people() if p["id_number"] in ids), key=lambda r: r["person_id"])
    return project(rows, "person_id", "name")


def q_exists_reps() -> Rows:
    reps = {e["legal_rep_id_number"] for e in enterprises()}
    yes = sum(1 for p in people() if p["id_number"] in reps)
    return [[yes, len(people()) - yes]]


# ------------------------------------------------------------------------------ ybj

YBJ = "ybj-insurance"


def q_ybj_masked() -> Rows:
    rows = sorted(people(YBJ), key=lambda r: r["person_id"])
    return project(page(rows, 5), "person_id", "name", "id_number", "phone", "district")


def q_ybj_gender_counts() -> Rows:
    counts = group_count(people(YBJ), lambda r: r["gender"])
    return [[g, counts[g]] for g in sorted(counts)]


# ------------------------------------------------------------------------------ rsj-portal


def q_portal_districts() -> Rows:
    counts = group_count(people("rsj-portal"), lambda r: r["district"])
    return [[d, n] for d, n in sorted(counts.items())]


def q_portal_pseudonyms() -> Rows:
    rows = sorted(people("rsj-portal"), key=lambda r: r["person_id"])
    return project(page(rows, 3), "person_id", "id_number")


# ------------------------------------------------------------------------------ swj

SWJ = "swj-tax"


def q_swj_status_counts() -> Rows:
    counts = group_count(enterprises(SWJ), lambda r: r["status"])
    rows = [[s, n] for s, n in counts.items()]
    rows.sort(key=lambda x: (-x[1], x[0]))
    return rows


def _capital_band(capital: int) -> str:
    if capital < 100:
        return "a:<100"
    if capital < 1000:
        return "b:100-999"
    if capital < 10000:
        return "c:1000-9999"
    return "d:10000+"


def q_swj_capital_bands() -> Rows:
    by: dict[str, list[int]] = defaultdict(list)
    for e in enterprises(SWJ):
        if e["status"] in ("存续", "在业"):
            by[_capital_band(e["registered_capital"])].append(e["registered_capital"])
    return [[b, len(c), sum(c), min(c), max(c)] for b, c in sorted(by.items())]


def q_swj_capital_between() -> Rows:
    rows = sorted(
        (
            e
            for e in enterprises(SWJ)
            if 50000 <= e["registered_capital"] <= 100000 and e["district"] == "槐荫区"
        ),
        key=lambda e: (-e["registered_capital"], e["enterprise_id"]),
    )
    return project(rows, "enterprise_id", "name", "registered_capital", "legal_rep")


def chosen_enterprise(nth: int = 11) -> Row:
    return raw_rows(ENTERPRISES)[nth]


def q_swj_by_legal_rep() -> Rows:
    target = chosen_enterprise()["legal_rep"]
    rows = sorted(
        (e for e in enterprises(SWJ) if e["legal_rep"] == target),
        key=lambda e: e["enterprise_id"],
    )
    return project(rows, "enterprise_id", "legal_rep", "legal_rep_id_number")


def q_swj_multi_company_reps() -> Rows:
    counts = group_count(enterprises(SWJ), lambda r: r["legal_rep_id_number"])
    return [[k, n] for k, n in sorted(counts.items()) if n > 1]


def q_swj_established_recent() -> Rows:
    counts = group_count(
        (e for e in enterprises(SWJ) if e["established_date"].year >= 2020),
        lambda e: (e["established_date"].year, e["status"]),
    )
    return [[y, s, n] for (y, s), n in sorted(counts.items())]


def q_swj_coalesce_nullif() -> Rows:
    counts = group_count(
        enterprises(SWJ), lambda e: "正常" if e["status"] in ("存续", "在业") else e["status"]
    )
    return [[s, n] for s, n in sorted(counts.items())]


# ------------------------------------------------------------------------------ tjj

TJJ = "tjj-stats"


def q_tjj_old_birth_years() -> Rows:
    counts = group_count(
        (p for p in people(TJJ) if p["birth_date"] < 1940), lambda p: (p["birth_date"], p["gender"])
    )
    return [[y, g, n] for (y, g), n in sorted(counts.items())]


def q_tjj_decades() -> Rows:
    counts = group_count(people(TJJ), lambda p: p["birth_date"] - p["birth_date"] % 10)
    return [[d, n] for d, n in sorted(counts.items())]


def q_tjj_district_gender() -> Rows:
    counts = group_count(people(TJJ), lambda p: (p["district"], p["gender"]))
    return [[d, g, n] for (d, g), n in sorted(counts.items())]


def q_tjj_city_buckets() -> Rows:
    counts = group_count(grants(TJJ), lambda g: (g["district"], g["amount"]))
    rows = [[c, b, n] for (c, b), n in counts.items()]
    rows.sort(key=lambda x: (x[0], -x[2], x[1]))
    return rows


def q_tjj_city_years() -> Rows:
    by: dict[tuple[str, int], list[Row]] = defaultdict(list)
    for g in grants(TJJ):
        by[(g["district"], g["granted_date"].year)].append(g)
    return [
        [c, y, len(gs), len({g["recipient_id_number"] for g in gs})]
        for (c, y), gs in sorted(by.items())
    ]


def q_tjj_bucket_filter() -> Rows:
    counts = group_count(
        (g for g in grants(TJJ) if g["amount"] == "500-999"), lambda g: g["program"]
    )
    return [[p, n] for p, n in sorted(counts.items())]


def q_tjj_city_filter() -> Rows:
    jinan = sum(1 for g in grants(TJJ) if g["district"] == "济南市")
    raw_district = sum(1 for g in grants(TJJ) if g["district"] == "历下区")
    return [[jinan, raw_district]]


def q_tjj_enterprise_district_status() -> Rows:
    counts = group_count(enterprises(TJJ), lambda e: (e["district"], e["status"]))
    return [[d, s, n] for (d, s), n in sorted(counts.items())]


def q_tjj_recipients_per_city() -> Rows:
    by: dict[str, Counter[str]] = defaultdict(Counter)
    for g in grants(TJJ):
        by[g["district"]][g["recipient_id_number"]] += 1
    rows: Rows = []
    for city, per in sorted(by.items()):
        counts = Counter(per.values())
        rows += [[city, times, n] for times, n in sorted(counts.items()) if times >= 8]
    return rows


def q_exists_gaoling() -> Rows:
    ids = {g["recipient_id_number"] for g in grants() if g["program"] == "高龄津贴"}
    return [[sum(1 for p in people() if p["id_number"] in ids)]]
