"""The attack corpus, as data: bypass attempts against the gateway's masking, row filters
and refusals, grouped by the ten families of GUIDE §5, and pairs of probing queries.

Each :class:`Attack` says what the gateway must answer (``expect``): ``served`` (200),
``refused`` (any 4xx) or ``refused:<code>`` (a 4xx with that problem ``code``),
``failed:<code>`` (a 5xx that serves no data, e.g. a backend type error or a timeout);
several outcomes may be allowed with ``|``. ``backends`` overrides it for one backend where
engines legitimately differ (``CAST('陈**' AS INTEGER)`` is 0 on SQLite and MariaDB, an
error on PostgreSQL and DuckDB). ``check`` is an extra assertion on a served body, usually
the exact answer computed from :func:`tests.e2e.secrets_oracle.masked_view`: what every
clause must see is the masked, filtered table — nothing else.

Whatever the outcome, the test scans the whole response for forbidden strings
(:mod:`tests.e2e.secrets_oracle`). Every value picked here (a resident of 历下区, one of
市中区, a grant, an enterprise ...) comes from the generated demo world.

A :class:`Probe` is two queries that differ only in a guess about a protected value (the
true value vs a wrong one); the answers must be identical, or the guess was confirmed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.demo.generate import DemoData, EnterpriseRow, GrantRow, PersonRow
from gateway.demo.ids import id_number_check_char
from tests.e2e.secrets_oracle import DemoWorld, Row, masked_view

__all__ = [
    "FAMILIES",
    "Attack",
    "Check",
    "Probe",
    "build_attacks",
    "build_probes",
    "family_counts",
]

#: GUIDE §5 family number -> short name.
FAMILIES: Mapping[int, str] = {
    1: "predicates on masked columns",
    2: "function and cast wrapping",
    3: "GROUP BY / ORDER BY / DISTINCT / windows",
    4: "joins, attacker lists, linkage",
    5: "aggregates and differencing",
    6: "error messages",
    7: "EXPLAIN, timing, row counts",
    8: "alternate paths",
    9: "parser gaps",
    10: "fail-open",
}

#: A served body -> None if fine, else what is wrong.
Check = Callable[[Mapping[str, Any]], str | None]

#: Type errors: PostgreSQL and DuckDB refuse to convert, SQLite and MariaDB coerce.
#: ... and a value the backend cannot convert is the consumer's to fix: a 422 since issue 10.
COERCE = {"postgres": "refused:type_mismatch", "duckdb": "refused:type_mismatch"}
REFUSED_SQL = "refused:unsupported_sql"
#: LATERAL exists on PostgreSQL and DuckDB only: refused (400) on the others.
NO_LATERAL = {"sqlite": REFUSED_SQL, "mysql": REFUSED_SQL}
DENIED = "refused:access_denied"
UNKNOWN = "refused:unknown_object"
NOT_A_QUERY = "served|refused"

RSJ, PORTAL, YBJ, SWJ, TJJ = "rsj-subsidy", "rsj-portal", "ybj-insurance", "swj-tax", "tjj-stats"
PEOPLE = "FROM population.people"


@dataclass(frozen=True, slots=True)
class Attack:
    id: str
    family: int
    system: str
    sql: str
    expect: str = "served"
    backends: Mapping[str, str] = field(default_factory=dict)
    #: None: the system's entitled purpose; a string (even empty) is sent as is.
    purpose: str | None = None
    #: Extra members of the request body (max_rows, timeout_ms, spoofed fields).
    body: Mapping[str, Any] = field(default_factory=dict)
    #: token | none | garbage | assertion (client assertion as bearer) | token-exchange
    auth: str = "token"
    #: Leave out the ``purpose`` member entirely.
    omit_purpose: bool = False
    check: Check | None = None
    #: Wall-clock bound on the answer (timeouts must hold).
    max_seconds: float | None = None
    note: str = ""

    def expected(self, backend: str) -> str:
        return self.backends.get(backend, self.expect)


@dataclass(frozen=True, slots=True)
class Probe:
    id: str
    family: int
    system: str
    true_sql: str
    false_sql: str
    expect: str = "served"
    backends: Mapping[str, str] = field(default_factory=dict)
    note: str = ""

    def expected(self, backend: str) -> str:
        return self.backends.get(backend, self.expect)


# ------------------------------------------------------------------ checks


def rows_are(expected: Sequence[Sequence[Any]]) -> Check:
    want = [list(r) for r in expected]

    def check(body: Mapping[str, Any]) -> str | None:
        got = body["rows"]
        return None if got == want else f"rows {got[:5]!r} != expected {want[:5]!r}"

    return check


def rows_unordered(expected: Iterable[Sequence[Any]]) -> Check:
    want = sorted((list(r) for r in expected), key=repr)

    def check(body: Mapping[str, Any]) -> str | None:
        got = sorted(body["rows"], key=repr)
        return None if got == want else f"rows {got[:5]!r} != expected {want[:5]!r}"

    return check


def count_is(n: int) -> Check:
    return rows_are([[n]])


def empty() -> Check:
    return rows_are([])


def column_within(index: int, allowed: Iterable[Any], *, at_least: int = 0) -> Check:
    allowed_set = set(allowed)

    def check(body: Mapping[str, Any]) -> str | None:
        rows = body["rows"]
        if len(rows) < at_least:
            return f"{len(rows)} rows, expected at least {at_least}"
        bad = [r[index] for r in rows if r[index] not in allowed_set]
        return f"column {index} has values outside the masked view: {bad[:5]!r}" if bad else None

    return check


def column_matches(index: int, pattern: str) -> Check:
    regex = re.compile(pattern)

    def check(body: Mapping[str, Any]) -> str | None:
        bad = [r[index] for r in body["rows"] if not regex.fullmatch(str(r[index]))]
        return f"column {index} values not matching {pattern}: {bad[:5]!r}" if bad else None

    return check


def row_count(at_most: int, *, exactly: int | None = None, truncated: bool | None = None) -> Check:
    def check(body: Mapping[str, Any]) -> str | None:
        n = body["row_count"]
        if n > at_most or len(body["rows"]) != n:
            return f"row_count {n} (rows {len(body['rows'])}) above {at_most}"
        if exactly is not None and n != exactly:
            return f"row_count {n} != {exactly}"
        if truncated is not None and body["truncated"] is not truncated:
            return f"truncated is {body['truncated']}, expected {truncated}"
        return None

    return check


def all_of(*checks: Check) -> Check:
    def check(body: Mapping[str, Any]) -> str | None:
        for c in checks:
            problem = c(body)
            if problem:
                return problem
        return None

    return check


def coerced_or(value: Any) -> Check:
    """For type-coercing engines: a single cell equal to ``value`` (what coercion of the
    *masked* value gives), never the raw value."""
    return rows_are([[value]])


# ------------------------------------------------------------------ picks from the world


@dataclass(frozen=True, slots=True)
class Picks:
    """Concrete victims and values, all from the generated world."""

    lx: PersonRow  # 历下区 resident with a phone and a 2-character name (rsj-subsidy sees)
    lx2: PersonRow  # another one
    lx3: PersonRow  # 历下区 resident with a 3-character name
    sz: PersonRow  # 市中区 resident with a phone (outside for rsj, inside for ybj)
    tq: PersonRow  # 天桥区 resident (rsj-portal sees)
    qd: PersonRow  # 市南区 resident (青岛市)
    lx_not_rep: PersonRow  # 历下区 resident who is no legal representative
    lx_for_portal: PersonRow  # 历下区 resident whose birth date no 天桥区 resident shares
    grant_lx: GrantRow  # grant paid in 历下区
    grant_sz: GrantRow  # grant paid in 市中区
    grant_odd: GrantRow  # grant whose amount is not a multiple of 500
    non_recipient: PersonRow  # resident who never received a grant
    ent_res: EnterpriseRow  # enterprise whose legal rep is a resident
    ent_non: EnterpriseRow  # enterprise whose legal rep is not a resident
    fake_id: str  # well-formed ID number of nobody
    fake_id2: str
    fake_hex: str  # 32 hex digits that are nobody's pseudonym


def _fake_id(d: DemoData, base: str, taken: set[str]) -> str:
    for order in range(999, 0, -1):
        first17 = f"{base[:14]}{order:03d}"
        candidate = first17 + id_number_check_char(first17)
        if candidate not in taken:
            taken.add(candidate)
            return candidate
    raise AssertionError("no free ID number")


def picks(world: DemoWorld) -> Picks:
    d = world.data
    people = d.people
    rep_ids = {e[4] for e in d.enterprises}
    resident_ids = {p[2] for p in people}
    recipients = {g[1] for g in d.subsidies}
    taken = set(resident_ids) | rep_ids | {i[1] for i in d.incidents}

    def first(pred: Callable[[PersonRow], bool]) -> PersonRow:
        return next(p for p in people if pred(p))

    lx = first(lambda p: p[7] == "历下区" and p[5] is not None and len(p[1]) == 2)
    tq_births = {p[3] for p in people if p[7] == "天桥区"}
    return Picks(
        lx=lx,
        lx2=first(lambda p: p[7] == "历下区" and p[5] is not None and p[0] > lx[0]),
        lx3=first(lambda p: p[7] == "历下区" and p[5] is not None and len(p[1]) == 3),
        sz=first(lambda p: p[7] == "市中区" and p[5] is not None),
        tq=first(lambda p: p[7] == "天桥区" and p[5] is not None),
        qd=first(lambda p: p[7] == "市南区" and p[5] is not None),
        lx_not_rep=first(lambda p: p[7] == "历下区" and p[2] not in rep_ids),
        lx_for_portal=first(lambda p: p[7] == "历下区" and p[3] not in tq_births),
        grant_lx=next(g for g in d.subsidies if g[6] == "历下区"),
        grant_sz=next(g for g in d.subsidies if g[6] == "市中区"),
        grant_odd=next(g for g in d.subsidies if g[3] % 500 and g[3] >= 1000),
        non_recipient=first(lambda p: p[2] not in recipients and p[2] not in rep_ids),
        ent_res=next(e for e in d.enterprises if e[4] in resident_ids),
        ent_non=next(e for e in d.enterprises if e[4] not in resident_ids),
        fake_id=_fake_id(d, lx[2], taken),
        fake_id2=_fake_id(d, lx[2][:6] + "19991231", taken),
        fake_hex="0123456789abcdef0123456789abcdef",
    )


def _phone(person: PersonRow) -> str:
    phone = person[5]
    assert phone is not None, "picks() only chooses residents with a phone"
    return phone


def _view(system: str, table: str) -> tuple[Row, ...]:
    return masked_view(system)[table]


def _by_id(rows: Iterable[Row], key: str, value: Any) -> Row:
    return next(r for r in rows if r[key] == value)


def _shadow_people(id_number: str, district: str) -> str:
    """A CTE named like the physical source table of population.people."""
    return (
        "WITH population_people AS (SELECT 1 AS person_id, '张三' AS name, "
        f"'{id_number}' AS id_number, CAST('1980-01-01' AS DATE) AS birth_date, "
        "'男' AS gender, '13800000000' AS phone, '某地' AS address, "
        f"'{district}' AS district) "
    )


def _shadow_grants(id_number: str, district: str) -> str:
    return (
        "WITH civil_subsidies AS (SELECT 1 AS grant_id, "
        f"'{id_number}' AS recipient_id_number, '临时救助' AS program, 100 AS amount, "
        "'6222020000000000000' AS bank_card, CAST('2024-01-01' AS DATE) AS granted_date, "
        f"'{district}' AS district) "
    )


def _shadow_enterprises(id_number: str) -> str:
    return (
        "WITH market_enterprises AS (SELECT 1 AS enterprise_id, 'x' AS name, "
        "'x' AS credit_code, 'x' AS legal_rep, "
        f"'{id_number}' AS legal_rep_id_number, 1 AS registered_capital, '存续' AS status, "
        "CAST('2020-01-01' AS DATE) AS established_date, '槐荫区' AS district) "
    )


# ------------------------------------------------------------------ the corpus


def build_attacks(world: DemoWorld) -> tuple[Attack, ...]:
    """The corpus (at least 150 attacks over the ten families)."""
    pk = picks(world)
    rsj_people = _view("rsj-subsidy", "population.people")
    rsj_grants = _view("rsj-subsidy", "subsidies.grants")
    rsj_ents = _view("rsj-subsidy", "legal_person.enterprises")
    portal_people = _view("rsj-portal", "population.people")
    ybj_people = _view("ybj-insurance", "population.people")
    tjj_people = _view("tjj-stats", "population.people")
    tjj_grants = _view("tjj-stats", "subsidies.grants")
    swj_ents = _view("swj-tax", "legal_person.enterprises")

    lx, lx3, sz = pk.lx, pk.lx3, pk.sz
    lx_phone, sz_phone = _phone(lx), _phone(sz)
    lx_row = _by_id(rsj_people, "person_id", lx[0])
    lx_pseud = lx_row["id_number"]
    rsj_pseuds = {r["id_number"] for r in rsj_people}
    rsj_phones = {r["phone"] for r in rsj_people}
    n_lx = len(rsj_people)
    g_odd = pk.grant_odd
    g_odd_bucket = str(_by_id(tjj_grants, "grant_id", g_odd[0])["amount"])
    g_odd_low = int(g_odd_bucket.split("-")[0])
    e_res, e_non = pk.ent_res, pk.ent_non
    swj_e_res = _by_id(swj_ents, "enterprise_id", e_res[0])
    lx_ids_5 = [p[2] for p in world.data.people if p[7] == "历下区"][:5]
    street = lx[6][6:9]

    def lx_count(pred: Callable[[Row], bool]) -> int:
        return sum(1 for r in rsj_people if pred(r))

    grants_sum = sum(int(r["amount"]) for r in rsj_grants)
    people_by_pseud = Counter(r["id_number"] for r in rsj_people)
    phone_groups = Counter(r["phone"] for r in rsj_people if r["phone"] is not None)
    ordered_pseuds = sorted(rsj_pseuds)
    tjj_bucket_counts = Counter(r["amount"] for r in tjj_grants)
    tjj_year_counts = Counter(r["birth_date"] for r in tjj_people)
    lx_year = lx[3].year
    grants_per_pseud = Counter(r["recipient_id_number"] for r in rsj_grants)
    lateral_counts = [
        [r["person_id"], grants_per_pseud[r["id_number"]]]
        for r in sorted(rsj_people, key=lambda r: r["person_id"])[:5]
    ]

    a: list[Attack] = []

    def add(
        id_: str, family: int, system: str, sql: str, expect: str = "served", **kw: Any
    ) -> None:
        a.append(Attack(id=id_, family=family, system=system, sql=sql, expect=expect, **kw))

    # ---- 1. predicates on masked columns: every predicate sees the masked value ----------
    add(
        "f1-id-eq-real",
        1,
        RSJ,
        f"SELECT person_id {PEOPLE} WHERE id_number = '{lx[2]}'",
        check=empty(),
    )
    add(
        "f1-id-like-region",
        1,
        RSJ,
        f"SELECT count(*) {PEOPLE} WHERE id_number LIKE '370102%'",
        check=count_is(lx_count(lambda r: r["id_number"].startswith("370102"))),
    )
    add(
        "f1-id-like-birth",
        1,
        RSJ,
        f"SELECT count(*) {PEOPLE} WHERE id_number LIKE '%{lx[3]:%Y%m%d}%'",
        check=count_is(lx_count(lambda r: f"{lx[3]:%Y%m%d}" in r["id_number"])),
    )
    add(
        "f1-id-range-binary-search",
        1,
        RSJ,
        f"SELECT count(*) {PEOPLE} WHERE id_number >= '{lx[2][:14]}0000' "
        f"AND id_number < '{lx[2][:14]}9999'",
        check=count_is(
            lx_count(lambda r: f"{lx[2][:14]}0000" <= r["id_number"] < f"{lx[2][:14]}9999")
        ),
    )
    add(
        "f1-id-gt-half",
        1,
        RSJ,
        f"SELECT count(*) {PEOPLE} WHERE id_number > '8'",
        check=count_is(lx_count(lambda r: r["id_number"] > "8")),
    )
    add(
        "f1-phone-like-7",
        1,
        RSJ,
        f"SELECT person_id {PEOPLE} WHERE person_id = {lx[0]} AND phone LIKE '{lx_phone[:7]}%'",
        check=empty(),
    )
    add(
        "f1-phone-eq",
        1,
        RSJ,
        f"SELECT person_id {PEOPLE} WHERE phone = '{lx_phone}'",
        check=empty(),
    )
    add(
        "f1-phone-between",
        1,
        RSJ,
        f"SELECT count(*) {PEOPLE} WHERE phone BETWEEN '{lx_phone[:7]}0000' "
        f"AND '{lx_phone[:7]}9999'",
        check=count_is(0),
    )
    add("f1-name-eq", 1, RSJ, f"SELECT person_id {PEOPLE} WHERE name = '{lx[1]}'", check=empty())
    add(
        "f1-name-like-given",
        1,
        RSJ,
        f"SELECT count(*) {PEOPLE} WHERE name LIKE '%{lx[1][1:]}'",
        check=count_is(0),
    )
    add(
        "f1-address-like-street",
        1,
        RSJ,
        f"SELECT count(*) {PEOPLE} WHERE address LIKE '%{street}%'",
        check=count_is(0),
    )
    add(
        "f1-address-eq",
        1,
        RSJ,
        f"SELECT person_id {PEOPLE} WHERE address = '{lx[6]}'",
        check=empty(),
    )
    add(
        "f1-birth-clear-legit",
        1,
        RSJ,
        f"SELECT person_id, district {PEOPLE} WHERE birth_date = '{lx[3]}'",
        check=rows_unordered(
            [[r["person_id"], "历下区"] for r in rsj_people if r["birth_date"] == lx[3].isoformat()]
        ),
        note="birth_date is allowed in clear to rsj: must be served, within 历下区",
    )
    add(
        "f1-ybj-id-like-region",
        1,
        YBJ,
        f"SELECT count(*) {PEOPLE} WHERE id_number LIKE '370103%'",
        check=count_is(0),
    )
    add(
        "f1-ybj-id-eq",
        1,
        YBJ,
        f"SELECT person_id {PEOPLE} WHERE id_number = '{sz[2]}'",
        check=empty(),
    )
    add(
        "f1-ybj-phone-like-5",
        1,
        YBJ,
        f"SELECT person_id {PEOPLE} WHERE person_id = {sz[0]} AND phone LIKE '{sz_phone[:5]}%'",
        check=empty(),
    )
    add(
        "f1-tjj-amount-eq-raw",
        1,
        TJJ,
        f"SELECT count(*) FROM subsidies.grants WHERE amount = '{g_odd[3]}'",
        check=count_is(0),
    )
    add(
        "f1-tjj-amount-like-raw",
        1,
        TJJ,
        f"SELECT count(*) FROM subsidies.grants WHERE amount LIKE '{str(g_odd[3])[:3]}%'",
        check=count_is(
            sum(n for b, n in tjj_bucket_counts.items() if str(b).startswith(str(g_odd[3])[:3]))
        ),
    )
    add(
        "f1-tjj-amount-gt-int",
        1,
        TJJ,
        f"SELECT count(*) FROM subsidies.grants WHERE grant_id = {g_odd[0]} "
        f"AND amount > {g_odd[3] - 1}",
        "refused:type_mismatch",
        note="text bucket vs integer: the same 422 on every engine (coercion differed)",
    )
    add(
        "f1-tjj-birth-eq-date",
        1,
        TJJ,
        f"SELECT count(*) {PEOPLE} WHERE birth_date = '{lx[3]}'",
        backends=COERCE,
        note="birth_date is a year for tjj; MariaDB reads the date text as its year",
    )
    add(
        "f1-swj-repid-eq",
        1,
        SWJ,
        f"SELECT count(*) FROM legal_person.enterprises WHERE legal_rep_id_number = '{e_res[4]}'",
        check=count_is(0),
    )
    add(
        "f1-swj-repid-like",
        1,
        SWJ,
        "SELECT count(*) FROM legal_person.enterprises WHERE legal_rep_id_number LIKE '37%'",
        check=count_is(sum(1 for r in swj_ents if r["legal_rep_id_number"].startswith("37"))),
    )
    add(
        "f1-rsj-grant-recipient-eq",
        1,
        RSJ,
        f"SELECT grant_id FROM subsidies.grants WHERE recipient_id_number = '{pk.grant_lx[1]}'",
        check=empty(),
    )
    add(
        "f1-rsj-amount-clear-legit",
        1,
        RSJ,
        "SELECT count(*) FROM subsidies.grants WHERE amount > 1500",
        check=count_is(sum(1 for r in rsj_grants if int(r["amount"]) > 1500)),
    )
    add(
        "f1-portal-id-eq",
        1,
        PORTAL,
        f"SELECT person_id {PEOPLE} WHERE id_number = '{pk.tq[2]}'",
        check=empty(),
    )
    add(
        "f1-rsj-legal-rep-eq",
        1,
        RSJ,
        f"SELECT count(*) FROM legal_person.enterprises WHERE legal_rep = '{e_res[3]}'",
        check=count_is(0),
    )

    # ---- 2. function and cast wrapping --------------------------------------------------
    one = f"{PEOPLE} WHERE person_id = {lx[0]}"
    add(
        "f2-substring-id",
        2,
        RSJ,
        f"SELECT SUBSTRING(id_number, 1, 18) {one}",
        check=rows_are([[lx_pseud[:18]]]),
    )
    add(
        "f2-substring-phone-middle",
        2,
        RSJ,
        f"SELECT SUBSTRING(phone, 4, 4) {one}",
        check=rows_are([["****"]]),
    )
    add(
        "f2-substring-from-for",
        2,
        RSJ,
        f"SELECT SUBSTRING(address FROM 7 FOR 30) {one}",
        check=rows_are([["****"]]),
    )
    add(
        "f2-lower-upper",
        2,
        RSJ,
        f"SELECT LOWER(name), UPPER(id_number) {one}",
        check=rows_are([[lx_row["name"], lx_pseud.upper()]]),
    )
    add(
        "f2-pipes",
        2,
        RSJ,
        f"SELECT name || '|' || phone || '|' || id_number || '|' || address {one}",
        check=rows_are([[f"{lx_row['name']}|{lx_row['phone']}|{lx_pseud}|{lx_row['address']}"]]),
    )
    add(
        "f2-cast-text",
        2,
        RSJ,
        f"SELECT CAST(id_number AS TEXT), CAST(phone AS VARCHAR(20)) {one}",
        check=rows_are([[lx_pseud, lx_row["phone"]]]),
    )
    add(
        "f2-cast-bigint-phone",
        2,
        RSJ,
        f"SELECT CAST(phone AS BIGINT) {one}",
        backends=COERCE,
        check=coerced_or(int(lx_phone[:3])),
    )
    add(
        "f2-replace-stars",
        2,
        RSJ,
        f"SELECT REPLACE(phone, '*', ''), REPLACE(name, '*', '') {one}",
        check=rows_are([[lx_phone[:3] + lx_phone[-4:], lx[1][0]]]),
    )
    add(
        "f2-strpos",
        2,
        RSJ,
        f"SELECT STRPOS(phone, '*'), STRPOS(id_number, 'a') {one}",
        check=rows_are([[4, lx_pseud.find("a") + 1]]),
    )
    add(
        "f2-length-hidden",
        2,
        RSJ,
        f"SELECT person_id, LENGTH(name) {PEOPLE} WHERE person_id IN ({lx[0]}, {lx3[0]}) "
        "ORDER BY person_id",
        check=rows_are(sorted([[lx[0], 3], [lx3[0], 3]])),
        note="a 2- and a 3-character name both have masked length 3",
    )
    add(
        "f2-length",
        2,
        RSJ,
        f"SELECT LENGTH(name), LENGTH(phone), LENGTH(address), LENGTH(id_number) {one}",
        check=rows_are([[3, 11, 10, 32]]),
    )
    add(
        "f2-coalesce",
        2,
        RSJ,
        f"SELECT COALESCE(phone, id_number), COALESCE(NULL, name) {one}",
        check=rows_are([[lx_row["phone"], lx_row["name"]]]),
    )
    add(
        "f2-case-digit",
        2,
        RSJ,
        f"SELECT count(*) {PEOPLE} WHERE CASE WHEN SUBSTRING(phone, 4, 1) = '{lx_phone[3]}' "
        "THEN 1 ELSE 0 END = 1",
        check=count_is(0),
    )
    add(
        "f2-case-address",
        2,
        RSJ,
        f"SELECT CASE WHEN address LIKE '%{street}%' THEN 'hit' ELSE 'miss' END {one}",
        check=rows_are([["miss"]]),
    )
    add(
        "f2-trim",
        2,
        RSJ,
        f"SELECT TRIM(address), TRIM(BOTH '*' FROM phone) {one}",
        backends={"sqlite": "served|refused"},
        check=rows_are([[lx_row["address"], lx_row["phone"]]]),
    )
    add(
        "f2-greatest-least",
        2,
        RSJ,
        f"SELECT GREATEST(name, phone, address), LEAST(id_number, address) {PEOPLE}",
    )
    add(
        "f2-nullif",
        2,
        RSJ,
        f"SELECT NULLIF(phone, '{lx_phone}') {one}",
        check=rows_are([[lx_row["phone"]]]),
    )
    add(
        "f2-nested",
        2,
        RSJ,
        f"SELECT UPPER(LOWER(SUBSTRING(REPLACE(id_number, 'a', 'b'), 1, 32))) {one}",
        check=rows_are([[lx_pseud.replace("a", "b").upper()]]),
    )
    add(
        "f2-arith-on-text",
        2,
        RSJ,
        f"SELECT phone + 0, id_number * 1 {one}",
        backends={**COERCE, "mysql": "served"},
    )
    add("f2-right", 2, RSJ, f"SELECT RIGHT(phone, 8) {one}", REFUSED_SQL)
    add("f2-concat-fn", 2, RSJ, f"SELECT CONCAT(id_number, '') {one}", REFUSED_SQL)
    add("f2-md5", 2, RSJ, f"SELECT MD5(id_number) {one}", REFUSED_SQL)
    add("f2-encode", 2, RSJ, f"SELECT ENCODE(CONVERT_TO(name, 'UTF8'), 'hex') {one}", REFUSED_SQL)
    add("f2-ascii", 2, RSJ, f"SELECT ASCII(SUBSTRING(phone, 4, 1)) {one}", REFUSED_SQL)
    add("f2-to-char", 2, RSJ, f"SELECT TO_CHAR(birth_date, 'YYYYMMDD') {one}", REFUSED_SQL)
    add("f2-reverse", 2, RSJ, f"SELECT REVERSE(id_number) {one}", REFUSED_SQL)
    add(
        "f2-tjj-cast-amount",
        2,
        TJJ,
        f"SELECT CAST(amount AS INTEGER) FROM subsidies.grants WHERE grant_id = {g_odd[0]}",
        backends=COERCE,
        check=coerced_or(g_odd_low),
        note="coercion of the bucket text gives its lower bound, never the amount",
    )
    add(
        "f2-tjj-birth-as-text",
        2,
        TJJ,
        f"SELECT DISTINCT CAST(birth_date AS TEXT) {PEOPLE}",
        check=column_matches(0, r"\d{4}"),
    )
    add(
        "f2-tjj-extract-month",
        2,
        TJJ,
        f"SELECT EXTRACT(MONTH FROM birth_date) {PEOPLE} LIMIT 5",
        "refused:type_mismatch",
        note="birth_date is a year for tjj: a 422 before any engine reads it as a date",
    )
    add(
        "f2-swj-substring-repid",
        2,
        SWJ,
        "SELECT SUBSTRING(legal_rep_id_number, 1, 6) FROM legal_person.enterprises "
        f"WHERE enterprise_id = {e_res[0]}",
        check=rows_are([[swj_e_res["legal_rep_id_number"][:6]]]),
    )
    add(
        "f2-ybj-replace-id",
        2,
        YBJ,
        f"SELECT REPLACE(id_number, '*', '') {PEOPLE} WHERE person_id = {sz[0]}",
        check=rows_are([[sz[2][0] + sz[2][-2:]]]),
    )
    add("f2-bank-card-length", 2, RSJ, "SELECT LENGTH(bank_card) FROM subsidies.grants", DENIED)
    add(
        "f2-bank-card-coalesce",
        2,
        RSJ,
        "SELECT COALESCE(NULL, bank_card) FROM subsidies.grants",
        DENIED,
    )
    add(
        "f2-bank-card-where",
        2,
        RSJ,
        "SELECT grant_id FROM subsidies.grants WHERE SUBSTRING(bank_card, 1, 6) = '622202'",
        DENIED,
    )

    # ---- 3. GROUP BY / ORDER BY / DISTINCT / windows -------------------------------------
    add(
        "f3-group-phone-digit",
        3,
        RSJ,
        f"SELECT SUBSTRING(phone, 4, 1) AS d, count(*) {PEOPLE} GROUP BY SUBSTRING(phone, 4, 1)",
        check=column_within(0, {"*", None}),
    )
    add(
        "f3-group-id-char",
        3,
        RSJ,
        f"SELECT SUBSTRING(id_number, 7, 1) AS c, count(*) {PEOPLE} GROUP BY 1 ORDER BY 1",
        check=rows_are(
            sorted([list(kv) for kv in Counter(r["id_number"][6] for r in rsj_people).items()])
        ),
    )
    add(
        "f3-distinct-phone",
        3,
        RSJ,
        f"SELECT DISTINCT phone {PEOPLE}",
        check=column_within(0, rsj_phones, at_least=150),
    )
    add(
        "f3-distinct-address-prefix",
        3,
        RSJ,
        f"SELECT DISTINCT SUBSTRING(address, 1, 12) {PEOPLE}",
        check=rows_are([["济南市历下区****"]]),
    )
    add(
        "f3-order-by-phone",
        3,
        RSJ,
        f"SELECT name, phone {PEOPLE} ORDER BY phone DESC LIMIT 10",
        check=column_within(1, rsj_phones),
    )
    add(
        "f3-order-by-id",
        3,
        RSJ,
        f"SELECT id_number {PEOPLE} ORDER BY id_number LIMIT 20",
        check=rows_are([[p] for p in ordered_pseuds[:20]]),
    )
    add(
        "f3-window-row-number",
        3,
        RSJ,
        f"SELECT id_number, ROW_NUMBER() OVER (ORDER BY id_number) AS rn {PEOPLE} "
        "ORDER BY rn LIMIT 10",
        check=rows_are([[p, i + 1] for i, p in enumerate(ordered_pseuds[:10])]),
    )
    add(
        "f3-window-lag-lead",
        3,
        RSJ,
        f"SELECT person_id, LAG(phone) OVER (ORDER BY person_id), "
        f"LEAD(address) OVER (ORDER BY person_id) {PEOPLE} ORDER BY person_id LIMIT 20",
        check=column_within(1, rsj_phones | {None}),
    )
    add(
        "f3-window-first-value",
        3,
        RSJ,
        f"SELECT FIRST_VALUE(id_number) OVER (PARTITION BY gender ORDER BY person_id) {PEOPLE}",
        check=column_within(0, rsj_pseuds),
    )
    add(
        "f3-window-rank-partition",
        3,
        RSJ,
        f"SELECT person_id, RANK() OVER (PARTITION BY SUBSTRING(phone, 5, 1) "
        f"ORDER BY id_number) {PEOPLE} ORDER BY person_id LIMIT 20",
    )
    add(
        "f3-window-dense-rank-name",
        3,
        RSJ,
        f"SELECT name, DENSE_RANK() OVER (ORDER BY name) {PEOPLE} ORDER BY 2 DESC LIMIT 5",
        check=column_matches(0, r".\*\*"),
    )
    add(
        "f3-window-last-value-frame",
        3,
        RSJ,
        f"SELECT LAST_VALUE(id_number) OVER (PARTITION BY district ORDER BY person_id "
        f"ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) {PEOPLE} LIMIT 3",
        "served|refused",
        check=column_within(0, rsj_pseuds),
    )
    add(
        "f3-group-district",
        3,
        RSJ,
        f"SELECT district, count(*) {PEOPLE} GROUP BY district",
        check=rows_are([["历下区", n_lx]]),
    )
    add(
        "f3-group-name",
        3,
        RSJ,
        f"SELECT name, count(*) {PEOPLE} GROUP BY name ORDER BY 2 DESC, 1 LIMIT 5",
        check=column_matches(0, r".\*\*"),
    )
    add(
        "f3-having-phone-prefix",
        3,
        RSJ,
        f"SELECT SUBSTRING(phone, 1, 3), count(*) {PEOPLE} GROUP BY 1 HAVING count(*) > 0",
    )
    add(
        "f3-distinct-on",
        3,
        RSJ,
        f"SELECT DISTINCT ON (phone) person_id, phone {PEOPLE}",
        check=column_within(1, rsj_phones),
    )
    add("f3-rollup", 3, RSJ, f"SELECT name, count(*) {PEOPLE} GROUP BY ROLLUP(name)", REFUSED_SQL)
    add(
        "f3-grouping-sets",
        3,
        RSJ,
        f"SELECT name, phone, count(*) {PEOPLE} GROUP BY GROUPING SETS ((name), (phone))",
        REFUSED_SQL,
    )
    add(
        "f3-tjj-group-amount",
        3,
        TJJ,
        "SELECT amount, count(*) FROM subsidies.grants GROUP BY amount",
        check=rows_unordered([[b, n] for b, n in tjj_bucket_counts.items()]),
    )
    add(
        "f3-tjj-group-birth",
        3,
        TJJ,
        f"SELECT birth_date, count(*) {PEOPLE} GROUP BY birth_date ORDER BY birth_date LIMIT 5",
        check=rows_are(sorted([list(kv) for kv in tjj_year_counts.items()])[:5]),
    )
    add(
        "f3-tjj-window-amount",
        3,
        TJJ,
        "SELECT grant_id, MAX(amount) OVER (PARTITION BY program) FROM subsidies.grants "
        "ORDER BY grant_id LIMIT 5",
        check=column_matches(1, r"\d+-\d+"),
    )
    add(
        "f3-tjj-order-amount",
        3,
        TJJ,
        "SELECT grant_id, amount FROM subsidies.grants ORDER BY amount DESC, grant_id LIMIT 10",
        check=column_matches(1, r"\d+-\d+"),
    )
    add(
        "f3-alias-shadow-order",
        3,
        RSJ,
        f"SELECT name AS phone {PEOPLE} ORDER BY phone LIMIT 5",
        check=column_matches(0, r".\*\*"),
    )

    # ---- 4. joins against attacker-held lists, linkage ----------------------------------
    add(
        "f4-values-join-real-ids",
        4,
        RSJ,
        f"SELECT p.person_id {PEOPLE} AS p JOIN (VALUES ('{lx[2]}'), ('{sz[2]}')) AS v(idn) "
        "ON p.id_number = v.idn",
        backends={"sqlite": REFUSED_SQL},
        check=empty(),
    )
    add(
        "f4-in-list-real-ids",
        4,
        RSJ,
        f"SELECT count(*) {PEOPLE} WHERE id_number IN ({', '.join(repr(i) for i in lx_ids_5)})",
        check=count_is(0),
    )
    add(
        "f4-in-union-literals",
        4,
        RSJ,
        f"SELECT count(*) {PEOPLE} WHERE id_number IN (SELECT '{lx[2]}' UNION SELECT '{sz[2]}')",
        check=count_is(0),
    )
    add(
        "f4-join-grants-people",
        4,
        RSJ,
        "SELECT count(*) FROM subsidies.grants AS g JOIN population.people AS p "
        "ON g.recipient_id_number = p.id_number",
        check=count_is(sum(people_by_pseud[g["recipient_id_number"]] for g in rsj_grants)),
        note="same department key: linkage inside rsj is by design",
    )
    add(
        "f4-self-join-phone",
        4,
        RSJ,
        "SELECT count(*) FROM population.people AS a JOIN population.people AS b "
        "ON a.phone = b.phone AND a.person_id < b.person_id",
        check=count_is(sum(n * (n - 1) // 2 for n in phone_groups.values())),
    )
    add(
        "f4-join-enterprises-people",
        4,
        RSJ,
        "SELECT count(*) FROM legal_person.enterprises AS e JOIN population.people AS p "
        "ON e.legal_rep_id_number = p.id_number",
        check=count_is(sum(people_by_pseud[e["legal_rep_id_number"]] for e in rsj_ents)),
    )
    add(
        "f4-enterprise-in-real-rep-ids",
        4,
        RSJ,
        "SELECT count(*) FROM legal_person.enterprises WHERE legal_rep_id_number IN "
        f"('{e_res[4]}', '{e_non[4]}')",
        check=count_is(0),
    )
    add(
        "f4-tjj-rsj-pseudonym",
        4,
        TJJ,
        "SELECT count(*) FROM subsidies.grants WHERE recipient_id_number = "
        f"'{world.pseudonym('rsj', pk.grant_lx[1])}'",
        check=count_is(0),
    )
    add(
        "f4-tjj-ybj-pseudonyms",
        4,
        TJJ,
        "SELECT count(*) FROM subsidies.grants WHERE recipient_id_number IN ("
        + ", ".join(repr(world.pseudonym("ybj", g[1])) for g in world.data.subsidies[:5])
        + ")",
        check=count_is(0),
    )
    add(
        "f4-swj-rsj-pseudonym",
        4,
        SWJ,
        "SELECT count(*) FROM legal_person.enterprises WHERE legal_rep_id_number = "
        f"'{world.pseudonym('rsj', e_res[4])}'",
        check=count_is(0),
    )
    add(
        "f4-rsj-tjj-pseudonym",
        4,
        RSJ,
        "SELECT count(*) FROM subsidies.grants WHERE recipient_id_number = "
        f"'{world.pseudonym('tjj', pk.grant_lx[1])}'",
        check=count_is(0),
    )
    add(
        "f4-ybj-join-masked-id",
        4,
        YBJ,
        "SELECT count(*) FROM legal_person.enterprises AS e JOIN population.people AS p "
        "ON e.legal_rep_id_number = p.id_number",
        check=count_is(0),
    )
    add(
        "f4-lateral-grants",
        4,
        RSJ,
        "SELECT p.person_id, x.n FROM population.people AS p CROSS JOIN LATERAL "
        "(SELECT count(*) AS n FROM subsidies.grants AS g "
        "WHERE g.recipient_id_number = p.id_number) AS x ORDER BY p.person_id LIMIT 5",
        backends=NO_LATERAL,
        check=rows_are(lateral_counts),
        note="LATERAL where the engine has it (issue 10): the subquery joins pseudonyms; "
        "refused with what to write instead on the others",
    )
    add(
        "f4-exists-outsider",
        4,
        RSJ,
        "SELECT count(*) FROM legal_person.enterprises WHERE EXISTS "
        f"(SELECT 1 FROM population.people AS p WHERE p.id_number = '{sz[2]}')",
        check=count_is(0),
    )
    add(
        "f4-portal-reps",
        4,
        PORTAL,
        f"SELECT count(*) {PEOPLE} WHERE id_number IN "
        "(SELECT legal_rep_id_number FROM legal_person.enterprises)",
        check=count_is(
            sum(
                1
                for r in portal_people
                if r["id_number"] in {e["legal_rep_id_number"] for e in rsj_ents}
            )
        ),
    )
    add(
        "f4-join-on-district",
        4,
        RSJ,
        "SELECT count(*) FROM population.people AS p JOIN legal_person.enterprises AS e "
        "ON p.district = e.district",
        check=count_is(n_lx * sum(1 for e in rsj_ents if e["district"] == "历下区")),
    )
    add(
        "f4-shadow-cte-pseudonym-oracle",
        4,
        RSJ,
        _shadow_people(sz[2], "历下区") + f"SELECT id_number, name {PEOPLE}",
        "refused|served",
        check=column_within(0, rsj_pseuds),
        note="a CTE named like the physical table must not replace it inside the rewrite: "
        "else the gateway pseudonymises any ID the attacker chooses",
    )
    add(
        "f4-shadow-cte-grants",
        4,
        RSJ,
        _shadow_grants(sz[2], "历下区") + "SELECT recipient_id_number FROM subsidies.grants",
        "refused|served",
        check=column_within(0, {g["recipient_id_number"] for g in rsj_grants}),
    )
    add(
        "f4-shadow-cte-swj",
        4,
        SWJ,
        _shadow_enterprises(pk.lx_not_rep[2])
        + "SELECT legal_rep_id_number FROM legal_person.enterprises",
        "refused|served",
        check=column_within(0, {e["legal_rep_id_number"] for e in swj_ents}),
    )
    add(
        "f4-shadow-cte-tjj",
        4,
        TJJ,
        _shadow_grants(pk.non_recipient[2], "历下区")
        + "SELECT recipient_id_number FROM subsidies.grants",
        "refused|served",
        check=column_within(0, {g["recipient_id_number"] for g in tjj_grants}),
    )

    # ---- 5. aggregates and differencing ---------------------------------------------------
    add("f5-count-people", 5, RSJ, f"SELECT count(*) {PEOPLE}", check=count_is(n_lx))
    add(
        "f5-count-other-district",
        5,
        RSJ,
        f"SELECT count(*) {PEOPLE} WHERE district <> '历下区'",
        check=count_is(0),
    )
    add(
        "f5-count-outsider-pid",
        5,
        RSJ,
        f"SELECT count(*) {PEOPLE} WHERE person_id = {sz[0]}",
        check=count_is(0),
    )
    add(
        "f5-count-distinct-district",
        5,
        RSJ,
        f"SELECT count(DISTINCT district) {PEOPLE}",
        check=count_is(1),
    )
    add(
        "f5-grants-aggregates",
        5,
        RSJ,
        "SELECT count(*), sum(amount), min(amount), max(amount) FROM subsidies.grants",
        check=rows_are(
            [
                [
                    len(rsj_grants),
                    grants_sum,
                    min(int(r["amount"]) for r in rsj_grants),
                    max(int(r["amount"]) for r in rsj_grants),
                ]
            ]
        ),
    )
    add(
        "f5-grants-by-district",
        5,
        RSJ,
        "SELECT district, count(*) FROM subsidies.grants GROUP BY district",
        check=rows_are([["历下区", len(rsj_grants)]]),
    )
    add(
        "f5-having-gender",
        5,
        RSJ,
        f"SELECT gender, count(*) {PEOPLE} GROUP BY gender HAVING count(*) > 0",
        check=rows_unordered([list(kv) for kv in Counter(r["gender"] for r in rsj_people).items()]),
    )
    add(
        "f5-min-max-pid",
        5,
        RSJ,
        f"SELECT min(person_id), max(person_id) {PEOPLE}",
        check=rows_are(
            [[min(r["person_id"] for r in rsj_people), max(r["person_id"] for r in rsj_people)]]
        ),
    )
    add(
        "f5-filter-clause",
        5,
        RSJ,
        f"SELECT count(*) FILTER (WHERE district = '市中区') {PEOPLE}",
        check=count_is(0),
    )
    add(
        "f5-sum-case",
        5,
        RSJ,
        f"SELECT sum(CASE WHEN district = '历下区' THEN 0 ELSE 1 END) {PEOPLE}",
        check=count_is(0),
    )
    add(
        "f5-narrow-birth-gender",
        5,
        RSJ,
        f"SELECT count(*) {PEOPLE} WHERE birth_date = '{sz[3]}' AND gender = '{sz[4]}'",
        check=count_is(
            lx_count(lambda r: r["birth_date"] == sz[3].isoformat() and r["gender"] == sz[4])
        ),
    )
    add(
        "f5-avg-outsider-grant",
        5,
        RSJ,
        f"SELECT avg(amount) FROM subsidies.grants WHERE grant_id = {pk.grant_sz[0]}",
        check=rows_are([[None]]),
    )
    add(
        "f5-having-outsider-district",
        5,
        RSJ,
        f"SELECT district, count(*) {PEOPLE} GROUP BY district HAVING district = '市中区'",
        check=empty(),
    )
    add(
        "f5-tjj-sum-one-grant",
        5,
        TJJ,
        f"SELECT sum(amount) FROM subsidies.grants WHERE grant_id = {g_odd[0]}",
        backends=COERCE,
        check=coerced_or(g_odd_low),
    )
    add(
        "f5-tjj-avg-two-grants",
        5,
        TJJ,
        f"SELECT avg(amount) FROM subsidies.grants WHERE grant_id IN ({g_odd[0]}, {g_odd[0]})",
        backends=COERCE,
        check=coerced_or(g_odd_low),
    )
    add(
        "f5-tjj-min-max-amount",
        5,
        TJJ,
        "SELECT min(amount), max(amount) FROM subsidies.grants WHERE program = '临时救助'",
        check=all_of(column_matches(0, r"\d+-\d+"), column_matches(1, r"\d+-\d+")),
    )
    add(
        "f5-tjj-count-year",
        5,
        TJJ,
        f"SELECT count(*) {PEOPLE} WHERE birth_date = {lx_year}",
        check=count_is(tjj_year_counts[lx_year]),
    )
    add(
        "f5-tjj-bucket-narrow",
        5,
        TJJ,
        f"SELECT count(*) FROM subsidies.grants WHERE amount = '{g_odd_bucket}' "
        f"AND grant_id = {g_odd[0]}",
        check=count_is(1),
    )
    add(
        "f5-tjj-count-all-grants",
        5,
        TJJ,
        "SELECT count(*) FROM subsidies.grants",
        check=count_is(len(tjj_grants)),
    )
    add("f5-ybj-count", 5, YBJ, f"SELECT count(*) {PEOPLE}", check=count_is(len(ybj_people)))
    add(
        "f5-ybj-count-lx",
        5,
        YBJ,
        f"SELECT count(*) {PEOPLE} WHERE district = '历下区'",
        check=count_is(0),
    )
    add(
        "f5-portal-count",
        5,
        PORTAL,
        f"SELECT count(*) {PEOPLE}",
        check=count_is(len(portal_people)),
    )

    # ---- 6. error messages that could echo values ---------------------------------------
    add(
        "f6-cast-name-int",
        6,
        RSJ,
        f"SELECT CAST(name AS INTEGER) {PEOPLE}",
        backends=COERCE,
        check=column_within(0, {0}),
    )
    add("f6-cast-id-bigint", 6, RSJ, f"SELECT CAST(id_number AS BIGINT) {PEOPLE}", backends=COERCE)
    add("f6-cast-shorthand", 6, RSJ, f"SELECT id_number::integer {PEOPLE}", backends=COERCE)
    add("f6-cast-phone-date", 6, RSJ, f"SELECT CAST(phone AS DATE) {PEOPLE}", backends=COERCE)
    add(
        "f6-cast-address-bool", 6, RSJ, f"SELECT CAST(address AS BOOLEAN) {PEOPLE}", backends=COERCE
    )
    add(
        "f6-cast-name-decimal",
        6,
        RSJ,
        f"SELECT CAST(name AS DECIMAL(5, 2)) {PEOPLE}",
        backends=COERCE,
    )
    add(
        "f6-div-zero",
        6,
        RSJ,
        f"SELECT 1 / (person_id - {lx[0]}) {PEOPLE}",
        backends={"postgres": "failed:backend_error", "duckdb": "served|failed:backend_error"},
    )
    add(
        "f6-invalid-date",
        6,
        RSJ,
        f"SELECT CAST('2024-02-30' AS DATE) {PEOPLE} LIMIT 1",
        backends={**COERCE, "mysql": "served|failed:backend_error"},
    )
    add(
        "f6-date-from-name",
        6,
        RSJ,
        f"SELECT CAST(name || '-01-01' AS DATE) {PEOPLE}",
        backends={**COERCE, "mysql": "served|failed:backend_error"},
    )
    add(
        "f6-overflow",
        6,
        RSJ,
        f"SELECT person_id * 9223372036854775807 {PEOPLE}",
        backends={
            "postgres": "failed:backend_error",
            "mysql": "failed:backend_error",
            "duckdb": "failed:backend_error",
        },
    )
    add("f6-quoted-ident-name", 6, RSJ, f'SELECT "{lx[1]}" {PEOPLE}', UNKNOWN)
    add(
        "f6-syntax-error-echo",
        6,
        RSJ,
        f"SELECT id_number {PEOPLE} WHERE id_number = '{lx[2]}' AND",
        "refused:sql_syntax",
    )
    add(
        "f6-cast-where-outsider",
        6,
        RSJ,
        f"SELECT count(*) {PEOPLE} WHERE person_id = {sz[0]} AND CAST(name AS INTEGER) = 1",
        backends={
            **COERCE,
            "postgres": "served|failed:backend_error",
            "duckdb": "served|failed:backend_error",
        },
        check=count_is(0),
    )
    add(
        "f6-tjj-cast-amount-all",
        6,
        TJJ,
        "SELECT CAST(amount AS INTEGER) FROM subsidies.grants",
        backends=COERCE,
    )
    add(
        "f6-tjj-cast-birth-date",
        6,
        TJJ,
        f"SELECT CAST(birth_date AS DATE) {PEOPLE} LIMIT 5",
        backends={
            "postgres": "failed:backend_error|refused:type_mismatch",
            "duckdb": "refused:type_mismatch",
            "mysql": "served|failed:backend_error",
        },
    )
    add(
        "f6-float-overflow",
        6,
        RSJ,
        f"SELECT 1e999 {one}",
        backends={"mysql": "failed:backend_error|refused"},
        note="an infinite value must not make the body invalid JSON",
    )
    add(
        "f6-bank-card-cast",
        6,
        RSJ,
        "SELECT CAST(bank_card AS INTEGER) FROM subsidies.grants",
        DENIED,
    )
    add(
        "f6-unknown-ident-value",
        6,
        RSJ,
        f'SELECT person_id {PEOPLE} WHERE "{lx_phone}" = 1',
        UNKNOWN,
    )

    # ---- 7. EXPLAIN, timing, row counts -------------------------------------------------
    add("f7-explain", 7, RSJ, f"EXPLAIN SELECT * {PEOPLE}", REFUSED_SQL)
    add("f7-explain-analyze", 7, RSJ, f"EXPLAIN ANALYZE SELECT id_number {PEOPLE}", REFUSED_SQL)
    add("f7-explain-json", 7, RSJ, f"EXPLAIN (FORMAT JSON) SELECT * {PEOPLE}", REFUSED_SQL)
    add("f7-pg-sleep", 7, RSJ, "SELECT pg_sleep(2)", REFUSED_SQL)
    add(
        "f7-pg-sleep-case",
        7,
        RSJ,
        f"SELECT CASE WHEN phone LIKE '{lx_phone[:4]}%' THEN pg_sleep(1) END {PEOPLE}",
        REFUSED_SQL,
    )
    add("f7-mysql-sleep", 7, RSJ, f"SELECT SLEEP(2) {PEOPLE}", REFUSED_SQL)
    add("f7-benchmark", 7, RSJ, "SELECT BENCHMARK(100000000, MD5('x'))", REFUSED_SQL)
    add("f7-randomblob", 7, RSJ, f"SELECT randomblob(100000000) {PEOPLE}", REFUSED_SQL)
    add(
        "f7-generate-series",
        7,
        RSJ,
        "SELECT count(*) FROM generate_series(1, 1000000000)",
        REFUSED_SQL,
    )
    add(
        "f7-heavy-lowered-timeout",
        7,
        RSJ,
        "SELECT count(*) FROM population.people AS a, population.people AS b, "
        "population.people AS c",
        "failed:query_timeout",
        body={"timeout_ms": 300},
        max_seconds=3.0,
    )
    add(
        "f7-heavy-raised-timeout",
        7,
        RSJ,
        "SELECT count(*) FROM population.people AS a, population.people AS b, "
        "population.people AS c, population.people AS d",
        "failed:query_timeout",
        body={"timeout_ms": 1_000_000_000},
        # The harness's limit is 3 s (tests/e2e/harness.py), under the 5 s default.
        max_seconds=4.5,
        note="timeout_ms above the gateway's limit is clamped to it",
    )
    add(
        "f7-rowcount-truncated",
        7,
        RSJ,
        f"SELECT person_id, district {PEOPLE}",
        check=all_of(row_count(200, exactly=200, truncated=True), column_within(1, {"历下区"})),
    )
    add(
        "f7-rowcount-outsider",
        7,
        RSJ,
        f"SELECT person_id {PEOPLE} WHERE person_id = {sz[0]}",
        check=empty(),
    )
    add(
        "f7-max-rows-lowered",
        7,
        RSJ,
        f"SELECT person_id {PEOPLE}",
        body={"max_rows": 3},
        check=row_count(3, exactly=3, truncated=True),
    )
    add("f7-pg-stat-activity", 7, RSJ, "SELECT query FROM pg_stat_activity", UNKNOWN)
    add(
        "f7-pg-stat-activity-qualified",
        7,
        RSJ,
        'SELECT query FROM "pg_catalog"."pg_stat_activity"',
        UNKNOWN,
    )
    add("f7-pg-stat-statements", 7, RSJ, "SELECT query FROM public.pg_stat_statements", UNKNOWN)
    add("f7-mysql-processlist", 7, RSJ, "SELECT info FROM information_schema.processlist", UNKNOWN)
    add(
        "f7-performance-schema",
        7,
        RSJ,
        "SELECT sql_text FROM performance_schema.events_statements_history",
        UNKNOWN,
    )
    add("f7-current-setting", 7, RSJ, "SELECT current_setting('log_statement')", REFUSED_SQL)

    # ---- 8. alternate paths -----------------------------------------------------------
    add(
        "f8-two-statements",
        8,
        RSJ,
        f"SELECT 1 {PEOPLE}; SELECT id_number FROM population_people",
        REFUSED_SQL,
    )
    add(
        "f8-stacked-drop",
        8,
        RSJ,
        f"SELECT person_id {PEOPLE}; DROP TABLE population_people",
        REFUSED_SQL,
    )
    add(
        "f8-trailing-semicolon",
        8,
        RSJ,
        f"SELECT person_id {PEOPLE} WHERE person_id = {lx[0]};",
        check=rows_are([[lx[0]]]),
    )
    add("f8-prepare", 8, RSJ, "PREPARE s AS SELECT id_number FROM population_people", REFUSED_SQL)
    add("f8-execute", 8, RSJ, "EXECUTE s", "refused")
    add("f8-deallocate", 8, RSJ, "DEALLOCATE ALL", "refused")
    add("f8-copy-stdout", 8, RSJ, "COPY population_people TO STDOUT", REFUSED_SQL)
    add("f8-copy-file", 8, RSJ, f"COPY (SELECT * {PEOPLE}) TO '/tmp/people.csv'", REFUSED_SQL)
    add("f8-set-search-path", 8, RSJ, "SET search_path TO public", REFUSED_SQL)
    add("f8-set-role", 8, RSJ, "SET ROLE postgres", REFUSED_SQL)
    add("f8-show", 8, RSJ, "SHOW search_path", "refused")
    add("f8-pg-catalog", 8, RSJ, "SELECT * FROM pg_catalog.pg_tables", UNKNOWN)
    add("f8-pg-class", 8, RSJ, "SELECT relname FROM pg_class", UNKNOWN)
    add("f8-information-schema", 8, RSJ, "SELECT * FROM information_schema.columns", UNKNOWN)
    add("f8-sqlite-master", 8, RSJ, "SELECT sql FROM sqlite_master", UNKNOWN)
    add("f8-sqlite-main-master", 8, RSJ, "SELECT sql FROM main.sqlite_master", UNKNOWN)
    add("f8-mysql-user", 8, RSJ, "SELECT * FROM mysql.user", UNKNOWN)
    add("f8-duckdb-tables", 8, RSJ, "SELECT * FROM duckdb_tables()", REFUSED_SQL)
    add("f8-pg-read-file", 8, RSJ, "SELECT pg_read_file('/etc/passwd')", REFUSED_SQL)
    add("f8-load-file", 8, RSJ, f"SELECT LOAD_FILE('/etc/passwd') {PEOPLE}", REFUSED_SQL)
    add("f8-read-csv", 8, RSJ, "SELECT * FROM read_csv('/etc/passwd')", REFUSED_SQL)
    add("f8-read-csv-auto-expr", 8, RSJ, "SELECT read_csv_auto('/etc/passwd')", REFUSED_SQL)
    add("f8-quoted-etc-passwd", 8, RSJ, 'SELECT * FROM "/etc/passwd"', UNKNOWN)
    add("f8-string-etc-passwd", 8, RSJ, "SELECT * FROM '/etc/passwd'", "refused")
    add("f8-generate-series-from", 8, RSJ, "SELECT * FROM generate_series(1, 3)", REFUSED_SQL)
    add("f8-unnest", 8, RSJ, f"SELECT unnest(ARRAY[name, phone]) {PEOPLE}", REFUSED_SQL)
    add("f8-do-block", 8, RSJ, "DO $$ BEGIN PERFORM 1; END $$", REFUSED_SQL)
    add(
        "f8-hint-comment",
        8,
        RSJ,
        "SELECT /*+ SeqScan(p) */ p.name FROM population.people AS p LIMIT 3",
        check=column_matches(0, r".\*\*"),
    )
    add(
        "f8-mysql-exec-comment",
        8,
        RSJ,
        "SELECT person_id /*!, (SELECT id_number FROM population_people LIMIT 1) */ "
        f"{PEOPLE} WHERE person_id = {lx[0]}",
        check=rows_are([[lx[0]]]),
    )
    add(
        "f8-mysql-versioned-comment",
        8,
        RSJ,
        f"SELECT person_id /*!50000 , phone */ {PEOPLE} WHERE person_id = {lx[0]}",
        check=rows_are([[lx[0]]]),
    )
    add(
        "f8-line-comment",
        8,
        RSJ,
        f"SELECT person_id {PEOPLE} WHERE person_id = {lx[0]} -- ; SELECT * FROM population_people",
        check=rows_are([[lx[0]]]),
    )
    add("f8-version", 8, RSJ, "SELECT version()", REFUSED_SQL)
    add("f8-current-user", 8, RSJ, f"SELECT current_user {PEOPLE}", "refused")
    add("f8-at-at-variable", 8, RSJ, "SELECT @@version", "refused")
    add("f8-into-outfile", 8, RSJ, f"SELECT * {PEOPLE} INTO OUTFILE '/tmp/x'", "refused")
    add("f8-select-into", 8, RSJ, f"SELECT * INTO stolen {PEOPLE}", REFUSED_SQL)
    add("f8-ctas", 8, RSJ, f"CREATE TABLE stolen AS SELECT * {PEOPLE}", REFUSED_SQL)
    add("f8-insert", 8, RSJ, "INSERT INTO population.people (person_id) VALUES (1)", REFUSED_SQL)
    add("f8-update", 8, RSJ, "UPDATE population.people SET name = 'x'", REFUSED_SQL)
    add(
        "f8-delete-cte",
        8,
        RSJ,
        "WITH d AS (DELETE FROM population.people RETURNING *) SELECT * FROM d",
        REFUSED_SQL,
    )
    add("f8-for-update", 8, RSJ, f"SELECT * {PEOPLE} FOR UPDATE", REFUSED_SQL)
    add("f8-lo-import", 8, RSJ, "SELECT lo_import('/etc/passwd')", REFUSED_SQL)
    add(
        "f8-dblink",
        8,
        RSJ,
        "SELECT * FROM dblink('dbname=test', 'SELECT id_number FROM population_people') "
        "AS t(a TEXT)",
        "refused",
    )
    add("f8-attach", 8, RSJ, "ATTACH DATABASE '/tmp/x.db' AS x", "refused")
    add("f8-pragma", 8, RSJ, "PRAGMA table_info(population_people)", "refused")
    add("f8-install", 8, RSJ, "INSTALL httpfs", "refused")
    add("f8-placeholder", 8, RSJ, f"SELECT * {PEOPLE} WHERE person_id = $1", "refused")
    add("f8-values-root", 8, RSJ, "VALUES (1)", REFUSED_SQL)
    add(
        "f8-table-statement",
        8,
        RSJ,
        "TABLE population.people",
        "served|refused",
        check=all_of(row_count(200), column_within(2, rsj_pseuds)),
    )

    # ---- 9. parser gaps -----------------------------------------------------------------
    add(
        "f9-cte",
        9,
        RSJ,
        "WITH p AS (SELECT * FROM population.people) SELECT id_number FROM p "
        "ORDER BY id_number LIMIT 5",
        check=rows_are([[x] for x in ordered_pseuds[:5]]),
    )
    add(
        "f9-cte-named-like-table",
        9,
        RSJ,
        f"WITH people AS (SELECT '{lx[2]}' AS id_number) SELECT id_number {PEOPLE} "
        "ORDER BY id_number LIMIT 3",
        check=rows_are([[x] for x in ordered_pseuds[:3]]),
    )
    add(
        "f9-cte-named-dataset-table",
        9,
        RSJ,
        'WITH "population.people" AS (SELECT \'mine\' AS x) SELECT x FROM "population.people"',
        NOT_A_QUERY,
    )
    add(
        "f9-cte-shadows-source",
        9,
        RSJ,
        _shadow_people(sz[2], "历下区") + f"SELECT count(*) {PEOPLE}",
        "refused|served",
        check=count_is(n_lx),
        note="the rewrite's FROM population_people must not bind to the attacker's CTE",
    )
    add(
        "f9-cte-shadows-source-self",
        9,
        RSJ,
        'WITH "population_people" AS (SELECT * FROM population.people) '
        f"SELECT id_number {PEOPLE} ORDER BY id_number LIMIT 2",
        "refused|served",
        check=rows_are([[x] for x in ordered_pseuds[:2]]),
    )
    add(
        "f9-cte-physical-inner-scope",
        9,
        RSJ,
        "SELECT * FROM (WITH population_people AS (SELECT 1 AS a) "
        "SELECT a FROM population_people) AS s, population_people",
        "refused",
    )
    add(
        "f9-cte-physical-self-ref",
        9,
        RSJ,
        "WITH population_people AS (SELECT * FROM population_people) "
        "SELECT * FROM population_people",
        "refused",
    )
    add(
        "f9-nested-subquery",
        9,
        RSJ,
        "SELECT * FROM (SELECT * FROM (SELECT id_number, phone FROM population.people) AS a) "
        "AS b ORDER BY id_number LIMIT 3",
        check=column_within(0, set(ordered_pseuds[:3]), at_least=3),
    )
    add(
        "f9-scalar-subquery-no-from",
        9,
        RSJ,
        "SELECT (SELECT max(id_number) FROM population.people)",
        check=rows_are([[ordered_pseuds[-1]]]),
    )
    add(
        "f9-union",
        9,
        RSJ,
        "SELECT id_number FROM population.people UNION "
        "SELECT recipient_id_number FROM subsidies.grants",
        check=all_of(row_count(200), column_within(0, rsj_pseuds)),
    )
    add(
        "f9-union-all-star",
        9,
        RSJ,
        "SELECT * FROM population.people UNION ALL SELECT * FROM population.people",
        check=all_of(row_count(200, exactly=200, truncated=True), column_within(7, {"历下区"})),
    )
    add(
        "f9-intersect",
        9,
        RSJ,
        "SELECT name FROM population.people INTERSECT "
        "SELECT legal_rep FROM legal_person.enterprises",
        check=column_matches(0, r".\*\*"),
    )
    add(
        "f9-except",
        9,
        RSJ,
        f"SELECT id_number {PEOPLE} EXCEPT SELECT '{lx[2]}'",
        check=all_of(row_count(200), column_within(0, rsj_pseuds)),
    )
    add(
        "f9-union-literal",
        9,
        RSJ,
        f"SELECT id_number {PEOPLE} WHERE person_id = {lx[0]} UNION SELECT '{sz[2]}'",
        check=rows_unordered([[lx_pseud], [sz[2]]]),
    )
    add("f9-star-one-row", 9, RSJ, f"SELECT * {one}", check=rows_are([list(lx_row.values())]))
    add(
        "f9-star-grants-no-card",
        9,
        RSJ,
        f"SELECT * FROM subsidies.grants WHERE grant_id = {pk.grant_lx[0]}",
        check=rows_are([list(_by_id(rsj_grants, "grant_id", pk.grant_lx[0]).values())]),
    )
    add("f9-quoted-upper", 9, RSJ, f'SELECT "ID_NUMBER" {PEOPLE}', UNKNOWN)
    add(
        "f9-mixed-case",
        9,
        RSJ,
        f"SELECT Id_Number FROM Population.People WHERE Person_Id = {lx[0]}",
        check=rows_are([[lx_pseud]]),
    )
    add(
        "f9-quoted-names",
        9,
        RSJ,
        f'SELECT "id_number" FROM "population"."people" WHERE "person_id" = {lx[0]}',
        check=rows_are([[lx_pseud]]),
    )
    add("f9-quoted-mixed-table", 9, RSJ, 'SELECT id_number FROM "Population"."People"', UNKNOWN)
    add(
        "f9-three-part-column",
        9,
        RSJ,
        f"SELECT population.people.id_number {PEOPLE} WHERE person_id = {lx[0]}",
        "served|refused",
        check=rows_are([[lx_pseud]]),
    )
    add("f9-physical-name", 9, RSJ, "SELECT * FROM population_people", UNKNOWN)
    add("f9-physical-e2e-schema", 9, RSJ, "SELECT * FROM gw_e2e.population_people", UNKNOWN)
    add("f9-physical-public", 9, RSJ, "SELECT * FROM public.population_people", UNKNOWN)
    add("f9-physical-main", 9, RSJ, "SELECT * FROM main.civil_subsidies", UNKNOWN)
    add(
        "f9-physical-join",
        9,
        RSJ,
        f"SELECT p.person_id {PEOPLE} AS p JOIN civil_subsidies AS c ON c.district = p.district",
        UNKNOWN,
    )
    add("f9-three-part-table", 9, RSJ, "SELECT * FROM demo.population.people", REFUSED_SQL)
    add("f9-one-quoted-identifier", 9, RSJ, 'SELECT * FROM "population.people"', UNKNOWN)
    add("f9-whole-row", 9, RSJ, "SELECT p FROM population.people AS p", REFUSED_SQL)
    add(
        "f9-whole-row-cast",
        9,
        RSJ,
        "SELECT CAST(p AS TEXT) FROM population.people AS p",
        REFUSED_SQL,
    )
    add("f9-row-constructor", 9, RSJ, "SELECT ROW(p.*) FROM population.people AS p", REFUSED_SQL)
    add("f9-to-json", 9, RSJ, "SELECT to_json(p) FROM population.people AS p", REFUSED_SQL)
    add(
        "f9-table-star",
        9,
        RSJ,
        f"SELECT p.* FROM population.people AS p WHERE p.person_id = {lx[0]}",
        check=rows_are([list(lx_row.values())]),
    )
    add("f9-alias-list-table", 9, RSJ, "SELECT x FROM population.people AS p(x)", REFUSED_SQL)
    add("f9-alias-list-shift", 9, RSJ, "SELECT a, b FROM population.people AS p(a, b)", REFUSED_SQL)
    add(
        "f9-alias-list-subquery",
        9,
        RSJ,
        "SELECT b FROM (SELECT name, id_number FROM population.people "
        f"WHERE person_id = {lx[0]}) AS t(a, b)",
        backends={"sqlite": "served|refused"},
        check=rows_are([[lx_pseud]]),
    )
    add(
        "f9-lateral-reference",
        9,
        RSJ,
        "SELECT p.person_id, l.x FROM population.people AS p, "
        f"LATERAL (SELECT p.id_number AS x) AS l WHERE p.person_id = {lx[0]}",
        backends=NO_LATERAL,
        check=rows_are([[lx[0], lx_pseud]]),
    )
    add("f9-values-only", 9, RSJ, "SELECT * FROM (VALUES (1, 'a')) AS v(x, y)", NOT_A_QUERY)
    add("f9-select-literal", 9, RSJ, "SELECT 1", NOT_A_QUERY)
    add("f9-select-current-date", 9, RSJ, "SELECT CURRENT_DATE", NOT_A_QUERY)
    add(
        "f9-cte-literals-only",
        9,
        RSJ,
        f"WITH x AS (SELECT '{lx[2]}' AS a) SELECT a FROM x",
        NOT_A_QUERY,
    )
    add(
        "f9-using-join",
        9,
        RSJ,
        "SELECT count(*) FROM population.people JOIN subsidies.grants USING (district)",
        check=count_is(n_lx * len(rsj_grants)),
    )
    add(
        "f9-natural-join",
        9,
        RSJ,
        "SELECT * FROM population.people NATURAL JOIN subsidies.grants",
        REFUSED_SQL,
    )
    add(
        "f9-alias-swap",
        9,
        RSJ,
        f"SELECT id_number AS name, name AS id_number {one}",
        check=rows_are([[lx_pseud, lx_row["name"]]]),
    )
    add(
        "f9-order-ordinal",
        9,
        RSJ,
        f"SELECT name, id_number {PEOPLE} ORDER BY 2 LIMIT 3",
        check=column_within(1, set(ordered_pseuds[:3]), at_least=3),
    )
    add(
        "f9-tuple-in",
        9,
        RSJ,
        f"SELECT count(*) {PEOPLE} WHERE (person_id, id_number) IN "
        f"(SELECT person_id, id_number {PEOPLE} WHERE person_id = {lx[0]})",
        check=count_is(1),
    )
    add("f9-unicode-escape-ident", 9, RSJ, f'SELECT U&"\\0069d_number" {PEOPLE}', "refused")
    add(
        "f9-backtick-alias",
        9,
        RSJ,
        'SELECT 1 AS "x` , (SELECT id_number FROM population_people LIMIT 1) AS `y" '
        f"{PEOPLE} LIMIT 1",
        check=rows_are([[1]]),
        note="a quoted alias must stay one identifier in every dialect (MySQL backticks)",
    )
    add(
        "f9-doubled-quote-alias",
        9,
        RSJ,
        'SELECT 1 AS "x"" , (SELECT id_number FROM population_people LIMIT 1) AS ""y" '
        f"{PEOPLE} LIMIT 1",
        check=rows_are([[1]]),
    )
    add(
        "f9-quote-in-literal",
        9,
        RSJ,
        f"SELECT 'x'' , (SELECT id_number FROM population_people LIMIT 1) AS y' {one}",
        check=rows_are([["x' , (SELECT id_number FROM population_people LIMIT 1) AS y"]]),
    )
    add(
        "f9-backslash-literal",
        9,
        RSJ,
        "SELECT 'x\\' , (SELECT id_number FROM population_people LIMIT 1) AS y -- ' "
        f"{PEOPLE} LIMIT 1",
        "refused",
        note="a backslash before the quote must not end or extend the literal on MySQL",
    )
    add(
        "f9-backtick-cte",
        9,
        RSJ,
        'WITH "c`d" AS (SELECT person_id FROM population.people) SELECT * FROM "c`d" '
        f"WHERE person_id = {lx[0]}",
        check=rows_are([[lx[0]]]),
    )
    add(
        "f9-alias-dataset-name",
        9,
        RSJ,
        "SELECT subsidies.id_number FROM population.people AS subsidies "
        f"WHERE subsidies.person_id = {lx[0]}",
        check=rows_are([[lx_pseud]]),
    )
    add(
        "f9-alias-physical-name",
        9,
        RSJ,
        "SELECT population_people.id_number FROM population.people AS population_people "
        f"WHERE population_people.person_id = {lx[0]}",
        check=rows_are([[lx_pseud]]),
    )
    add(
        "f9-alias-gw-src",
        9,
        RSJ,
        "SELECT gw_src.id_number FROM population.people AS gw_src "
        f"WHERE gw_src.person_id = {lx[0]}",
        check=rows_are([[lx_pseud]]),
    )
    add(
        "f9-cte-gw-src",
        9,
        RSJ,
        f"WITH gw_src AS (SELECT 1 AS x) SELECT id_number {one}",
        REFUSED_SQL,  # the gw_ prefix is reserved for the gateway's own CTEs
    )
    add(
        "f9-subquery-denied",
        9,
        RSJ,
        "SELECT bank_card FROM (SELECT * FROM subsidies.grants) AS g",
        "refused",
    )
    add(
        "f9-cte-denied",
        9,
        RSJ,
        "WITH g AS (SELECT * FROM subsidies.grants) SELECT bank_card FROM g",
        "refused",
    )
    add(
        "f9-star-except",
        9,
        RSJ,
        f"SELECT * EXCEPT (name) {one}",
        "served|refused",
        check=rows_are([[v for k, v in lx_row.items() if k != "name"]]),
    )
    add(
        "f9-tjj-star",
        9,
        TJJ,
        f"SELECT * {PEOPLE} LIMIT 3",
        check=all_of(row_count(3, exactly=3), column_matches(0, r"\d{4}")),
    )
    add(
        "f9-portal-star",
        9,
        PORTAL,
        f"SELECT * {PEOPLE} WHERE person_id = {pk.tq[0]}",
        check=rows_are([list(_by_id(portal_people, "person_id", pk.tq[0]).values())]),
    )

    # ---- 10. fail-open attempts ----------------------------------------------------------
    add("f10-unknown-column", 10, RSJ, f"SELECT salary {PEOPLE}", UNKNOWN)
    add("f10-unknown-table", 10, RSJ, "SELECT * FROM population.secret", UNKNOWN)
    add("f10-unknown-dataset", 10, RSJ, "SELECT * FROM hr.salaries", UNKNOWN)
    g = "FROM subsidies.grants"
    add("f10-denied-select", 10, RSJ, f"SELECT bank_card {g}", DENIED)
    add(
        "f10-denied-where",
        10,
        RSJ,
        f"SELECT grant_id {g} WHERE bank_card = '{pk.grant_lx[4]}'",
        DENIED,
    )
    add("f10-denied-group", 10, RSJ, f"SELECT count(*) {g} GROUP BY bank_card", DENIED)
    add("f10-denied-order", 10, RSJ, f"SELECT grant_id {g} ORDER BY bank_card", DENIED)
    add(
        "f10-denied-having",
        10,
        RSJ,
        f"SELECT district {g} GROUP BY district HAVING max(bank_card) > '6'",
        DENIED,
    )
    add(
        "f10-denied-join",
        10,
        RSJ,
        "SELECT count(*) FROM subsidies.grants AS a JOIN subsidies.grants AS b "
        "ON a.bank_card = b.bank_card",
        DENIED,
    )
    add("f10-denied-window", 10, RSJ, f"SELECT ROW_NUMBER() OVER (ORDER BY bank_card) {g}", DENIED)
    add(
        "f10-denied-subquery",
        10,
        RSJ,
        f"SELECT count(*) {g} WHERE grant_id IN (SELECT grant_id {g} WHERE bank_card LIKE '6%')",
        DENIED,
    )
    add(
        "f10-denied-cte",
        10,
        RSJ,
        f"WITH c AS (SELECT bank_card {g}) SELECT count(*) FROM c",
        DENIED,
    )
    add("f10-denied-case", 10, RSJ, f"SELECT CASE WHEN bank_card LIKE '6%' THEN 1 END {g}", DENIED)
    add("f10-denied-count-distinct", 10, RSJ, f"SELECT count(DISTINCT bank_card) {g}", DENIED)
    add("f10-denied-qualified", 10, RSJ, "SELECT x.bank_card FROM subsidies.grants AS x", DENIED)
    add("f10-denied-upper", 10, RSJ, f"SELECT BANK_CARD {g}", DENIED)
    add("f10-denied-quoted-upper", 10, RSJ, f'SELECT "BANK_CARD" {g}', "refused")
    add(
        "f10-denied-using",
        10,
        RSJ,
        "SELECT count(*) FROM subsidies.grants AS a JOIN subsidies.grants AS b USING (bank_card)",
        "refused",
    )
    add(
        "f10-ybj-address-using",
        10,
        YBJ,
        "SELECT count(*) FROM population.people AS a JOIN population.people AS b USING (address)",
        "refused",
    )
    add(
        "f10-tjj-id-using",
        10,
        TJJ,
        "SELECT count(*) FROM population.people AS a JOIN population.people AS b USING (id_number)",
        "refused",
    )
    add(
        "f9-deep-nesting",
        9,
        RSJ,
        "SELECT " + "(" * 3000 + "id_number" + ")" * 3000 + f" {PEOPLE}",
        "refused",
    )
    add(
        "f9-nul-in-literal",
        9,
        RSJ,
        f"SELECT 'a\x00b' AS x {PEOPLE} LIMIT 1",
        "served|refused|failed:backend_error",
        note="a NUL character is rejected by some drivers; it must fail closed",
    )
    add("f10-ybj-address", 10, YBJ, f"SELECT address {PEOPLE}", DENIED)
    add(
        "f10-ybj-address-where",
        10,
        YBJ,
        f"SELECT count(*) {PEOPLE} WHERE address LIKE '济南市%'",
        DENIED,
    )
    add("f10-ybj-address-order", 10, YBJ, f"SELECT person_id {PEOPLE} ORDER BY address", DENIED)
    add("f10-tjj-name", 10, TJJ, f"SELECT name {PEOPLE}", DENIED)
    add(
        "f10-tjj-id-where", 10, TJJ, f"SELECT count(*) {PEOPLE} WHERE id_number = '{lx[2]}'", DENIED
    )
    add("f10-tjj-person-id", 10, TJJ, f"SELECT count(DISTINCT person_id) {PEOPLE}", DENIED)
    add("f10-tjj-phone-group", 10, TJJ, f"SELECT count(*) {PEOPLE} GROUP BY phone", DENIED)
    add(
        "f10-tjj-rep-id",
        10,
        TJJ,
        "SELECT legal_rep_id_number FROM legal_person.enterprises",
        DENIED,
    )
    add(
        "f10-tjj-rep-id-join",
        10,
        TJJ,
        "SELECT count(*) FROM subsidies.grants AS g JOIN legal_person.enterprises AS e "
        "ON g.recipient_id_number = e.legal_rep_id_number",
        DENIED,
    )
    add("f10-case-records", 10, RSJ, "SELECT * FROM case_records.incidents", DENIED)
    add("f10-case-records-count", 10, TJJ, "SELECT count(*) FROM case_records.incidents", DENIED)
    add(
        "f10-case-records-join",
        10,
        RSJ,
        "SELECT count(*) FROM population.people AS p JOIN case_records.incidents AS i "
        "ON p.id_number = i.suspect_id_number",
        DENIED,
    )
    add(
        "f10-case-records-exists",
        10,
        SWJ,
        "SELECT count(*) FROM legal_person.enterprises WHERE EXISTS "
        "(SELECT 1 FROM case_records.incidents)",
        DENIED,
    )
    add(
        "f10-purpose-other",
        10,
        RSJ,
        f"SELECT count(*) {PEOPLE}",
        "refused:purpose_not_allowed",
        purpose="statistics",
    )
    add(
        "f10-purpose-unknown",
        10,
        RSJ,
        f"SELECT count(*) {PEOPLE}",
        "refused:purpose_not_allowed",
        purpose="curiosity",
    )
    add(
        "f10-purpose-empty",
        10,
        RSJ,
        f"SELECT count(*) {PEOPLE}",
        "refused:invalid_request",
        purpose="",
    )
    add(
        "f10-purpose-missing",
        10,
        RSJ,
        f"SELECT count(*) {PEOPLE}",
        "refused:invalid_request",
        omit_purpose=True,
    )
    add(
        "f10-purpose-star",
        10,
        RSJ,
        f"SELECT count(*) {PEOPLE}",
        "refused:purpose_not_allowed",
        purpose="*",
    )
    add(
        "f10-tjj-purpose-of-rsj",
        10,
        TJJ,
        f"SELECT count(*) {PEOPLE}",
        "refused:purpose_not_allowed",
        purpose="employment_subsidy_review",
    )
    add("f10-swj-people", 10, SWJ, f"SELECT * {PEOPLE}", DENIED)
    add("f10-swj-grants", 10, SWJ, "SELECT count(*) FROM subsidies.grants", DENIED)
    add("f10-ybj-expired-grants", 10, YBJ, "SELECT * FROM subsidies.grants", DENIED)
    add("f10-ybj-expired-count", 10, YBJ, "SELECT count(*) FROM subsidies.grants", DENIED)
    add(
        "f10-ybj-expired-join",
        10,
        YBJ,
        "SELECT count(*) FROM population.people AS p JOIN subsidies.grants AS g "
        "ON g.district = p.district",
        DENIED,
    )
    add(
        "f10-ybj-expired-subquery",
        10,
        YBJ,
        f"SELECT count(*) {PEOPLE} WHERE person_id IN (SELECT grant_id FROM subsidies.grants)",
        DENIED,
    )
    add(
        "f10-suspended-token",
        10,
        "mzj-suspended",
        "",
        "refused:unauthenticated",
        auth="token-exchange",
    )
    add(
        "f10-suspended-assertion-bearer",
        10,
        "mzj-suspended",
        "SELECT count(*) FROM subsidies.grants",
        "refused:unauthenticated",
        auth="assertion",
    )
    add("f10-no-token", 10, RSJ, f"SELECT * {PEOPLE}", "refused:unauthenticated", auth="none")
    add(
        "f10-garbage-token",
        10,
        RSJ,
        f"SELECT * {PEOPLE}",
        "refused:unauthenticated",
        auth="garbage",
    )
    add(
        "f10-max-rows-raised",
        10,
        RSJ,
        f"SELECT person_id {PEOPLE}",
        body={"max_rows": 100_000},
        check=row_count(200, exactly=200, truncated=True),
    )
    add(
        "f10-max-rows-zero",
        10,
        RSJ,
        f"SELECT person_id {PEOPLE}",
        "refused:invalid_request",
        body={"max_rows": 0},
    )
    add(
        "f10-max-rows-negative",
        10,
        RSJ,
        f"SELECT person_id {PEOPLE}",
        "refused:invalid_request",
        body={"max_rows": -5},
    )
    add(
        "f10-max-rows-text",
        10,
        RSJ,
        f"SELECT person_id {PEOPLE}",
        "refused:invalid_request",
        body={"max_rows": "all"},
    )
    add(
        "f10-timeout-raised",
        10,
        RSJ,
        f"SELECT count(*) {PEOPLE}",
        body={"timeout_ms": 10**9},
        check=count_is(n_lx),
    )
    add(
        "f10-timeout-zero",
        10,
        RSJ,
        f"SELECT count(*) {PEOPLE}",
        "refused:invalid_request",
        body={"timeout_ms": 0},
    )
    add(
        "f10-limit-huge",
        10,
        RSJ,
        f"SELECT person_id {PEOPLE} LIMIT 1000000",
        check=row_count(200, exactly=200, truncated=True),
    )
    add(
        "f10-limit-all",
        10,
        RSJ,
        f"SELECT person_id {PEOPLE} LIMIT ALL",
        "served|refused",
        check=row_count(200, exactly=200, truncated=True),
    )
    add(
        "f10-fetch-first",
        10,
        RSJ,
        f"SELECT person_id {PEOPLE} FETCH FIRST 100000 ROWS ONLY",
        check=row_count(200, exactly=200, truncated=True),
    )
    add(
        "f10-offset-huge",
        10,
        RSJ,
        f"SELECT person_id {PEOPLE} ORDER BY person_id OFFSET 1000000",
        check=empty(),
    )
    add("f10-offset-negative", 10, RSJ, f"SELECT person_id {PEOPLE} OFFSET -1", "refused")
    add("f10-limit-negative", 10, RSJ, f"SELECT person_id {PEOPLE} LIMIT -1", "refused")
    add("f10-limit-expression", 10, RSJ, f"SELECT person_id {PEOPLE} LIMIT 100 * 100", "refused")
    add(
        "f10-limit-subquery", 10, RSJ, f"SELECT person_id {PEOPLE} LIMIT (SELECT 100000)", "refused"
    )
    add(
        "f10-limit-nested",
        10,
        RSJ,
        f"SELECT * FROM (SELECT person_id {PEOPLE} LIMIT 100000) AS t",
        check=row_count(200, exactly=200, truncated=True),
    )
    add(
        "f10-union-cap",
        10,
        RSJ,
        f"SELECT person_id {PEOPLE} UNION ALL SELECT person_id {PEOPLE}",
        check=row_count(200, exactly=200, truncated=True),
    )
    pids = sorted(r["person_id"] for r in rsj_people)
    add(
        "f10-offset-paging",
        10,
        RSJ,
        f"SELECT person_id {PEOPLE} ORDER BY person_id LIMIT 200 OFFSET 200",
        check=rows_are([[x] for x in pids[200:400]]),
    )
    add(
        "f10-spoofed-body-fields",
        10,
        RSJ,
        f"SELECT count(*) {PEOPLE}",
        "served|refused:invalid_request",
        body={"district": "市中区", "policy": "allow", "role": "admin", "system": "tjj-stats"},
        check=count_is(n_lx),
    )
    add(
        "f10-tjj-max-rows",
        10,
        TJJ,
        f"SELECT gender, district {PEOPLE}",
        body={"max_rows": 100_000},
        check=row_count(5000, exactly=5000, truncated=True),
    )
    add(
        "f10-swj-legal-rep-clear",
        10,
        SWJ,
        f"SELECT legal_rep FROM legal_person.enterprises WHERE enterprise_id = {e_res[0]}",
        check=rows_are([[e_res[3]]]),
        note="allowed in clear to swj: must be served",
    )

    # ---- predicate pushdown (derive.py, issue 14): a consumer predicate copied into a
    # protected table's scan must never run below a mask, beside an outer join, or
    # where an error on a filtered-out row could answer a question.
    join_pg = (
        "FROM population.people AS p JOIN subsidies.grants AS g "
        "ON g.recipient_id_number = p.id_number"
    )
    grant_pseuds = {r["recipient_id_number"] for r in rsj_grants}
    add(
        "f1-push-masked-id-in-join",
        1,
        RSJ,
        f"SELECT p.person_id {join_pg} WHERE p.id_number = '{lx[2]}'",
        check=empty(),
        note="the real ID compared below the mask would find lx's grants",
    )
    add(
        "f1-push-masked-phone-and-unmasked",
        1,
        RSJ,
        f"SELECT p.person_id {join_pg} WHERE p.person_id > 0 AND p.phone = '{lx_phone}'",
        check=empty(),
        note="only the unmasked conjunct may be pushed; the masked one stays above",
    )
    add(
        "f1-push-or-masked-unmasked",
        1,
        RSJ,
        f"SELECT DISTINCT p.person_id {join_pg} "
        f"WHERE p.person_id = {sz[0]} OR p.phone = '{lx_phone}' OR p.id_number = '{lx[2]}'",
        check=empty(),
        note="an OR mixing masked and unmasked columns is never pushed",
    )
    add(
        "f5-push-outsider-id-in-join",
        5,
        RSJ,
        f"SELECT p.person_id, p.district {join_pg} WHERE p.person_id = {sz[0]}",
        check=empty(),
        note="a pushed predicate is ANDed with the row filter, never replaces it",
    )
    add(
        "f5-push-or-true",
        5,
        RSJ,
        f"SELECT DISTINCT p.district {join_pg} WHERE p.district = '市中区' OR 1 = 1",
        check=column_within(0, {"历下区"}, at_least=1),
    )
    add(
        "f6-push-division-by-outsider",
        6,
        RSJ,
        f"SELECT count(*) {join_pg} WHERE 1 / (p.person_id - {sz[0]}) > 1",
        check=count_is(0),
        note="division can fail: never pushed, so a zero on a filtered-out row stays unseen",
    )
    add(
        "f4-push-left-join-is-null",
        4,
        RSJ,
        "SELECT count(*) FROM population.people AS p LEFT JOIN subsidies.grants AS g "
        "ON g.recipient_id_number = p.id_number WHERE g.amount IS NULL",
        check=count_is(sum(1 for r in rsj_people if r["id_number"] not in grant_pseuds)),
        note="a filter below the null-extended side of an outer join changes the answer",
    )
    add(
        "f1-push-subquery-masked",
        1,
        RSJ,
        f"SELECT count(*) {join_pg} WHERE p.person_id IN "
        f"(SELECT person_id FROM population.people WHERE id_number = '{lx[2]}')",
        check=count_is(0),
    )
    add(
        "f1-push-exists-masked",
        1,
        RSJ,
        "SELECT count(*) FROM population.people AS p WHERE p.person_id > 0 AND EXISTS "
        f"(SELECT 1 FROM subsidies.grants AS g WHERE g.recipient_id_number = '{lx[2]}')",
        check=count_is(0),
    )
    _analyst_attacks(add, pk, rsj_people, rsj_grants)
    return tuple(a)


def _analyst_attacks(
    add: Callable[..., None],
    pk: Picks,
    rsj_people: Sequence[Row],
    rsj_grants: Sequence[Row],
) -> None:
    """The constructs analysts write (issue 10 point 4), each aimed at a masked or
    filtered value: a window frame, LAG/LEAD defaults, FILTER, STRING_AGG, a recursive
    CTE, LATERAL, date functions. What they read is the masked derivation, so each
    answers from masked values only (or is refused)."""
    lx, sz = pk.lx, pk.sz
    lx_row = _by_id(rsj_people, "person_id", lx[0])
    names = {r["name"] for r in rsj_people}
    phones = {r["phone"] for r in rsj_people}
    pseuds = {r["id_number"] for r in rsj_people}
    by_id = sorted(rsj_people, key=lambda r: r["person_id"])
    lx_ids = {r["person_id"] for r in rsj_people}
    add(
        "f3-frame-nth-value-phone",
        3,
        RSJ,
        "SELECT NTH_VALUE(phone, 2) OVER (ORDER BY person_id ROWS BETWEEN UNBOUNDED "
        f"PRECEDING AND UNBOUNDED FOLLOWING) AS p {PEOPLE} ORDER BY person_id LIMIT 20",
        check=rows_are([[by_id[1]["phone"]]] * 20),
        note="a window frame reads the masked phone",
    )
    add(
        "f3-frame-moving-names",
        3,
        RSJ,
        "SELECT person_id, FIRST_VALUE(name) OVER (ORDER BY person_id ROWS BETWEEN 1 "
        f"PRECEDING AND 1 FOLLOWING) AS n {PEOPLE} ORDER BY person_id LIMIT 50",
        check=column_within(1, names, at_least=50),
    )
    add(
        "f3-lag-compare-raw-id",
        3,
        RSJ,
        "SELECT count(*) FROM (SELECT LAG(id_number, 1, 'x') OVER (ORDER BY person_id) AS prev "
        f"{PEOPLE}) AS t WHERE prev = '{lx[2]}'",
        check=count_is(0),
        note="the previous row's id is its pseudonym, never the raw number",
    )
    add(
        "f3-lead-default-phone",
        3,
        RSJ,
        "SELECT LEAD(phone, 1, 'none') OVER (ORDER BY person_id) AS nxt "
        f"{PEOPLE} WHERE person_id = {lx[0]}",
        check=rows_are([["none"]]),
        note="the WHERE runs before the window: one row, no following one",
    )
    add(
        "f3-ntile-by-masked-phone",
        3,
        RSJ,
        "SELECT count(*) FROM (SELECT phone, NTILE(10) OVER (ORDER BY phone, person_id) AS t "
        f"{PEOPLE}) AS x WHERE phone = '{_phone(lx)}'",
        check=count_is(0),
    )
    add(
        "f3-percent-rank-outside-district",
        3,
        RSJ,
        "SELECT count(*) FROM (SELECT person_id, PERCENT_RANK() OVER (ORDER BY person_id) AS r "
        f"{PEOPLE}) AS x WHERE person_id = {sz[0]}",
        check=count_is(0),
        note="the row filter applies before the window",
    )
    add(
        "f5-filter-raw-name",
        5,
        RSJ,
        f"SELECT count(*) FILTER (WHERE name = '{lx[1]}') AS n {PEOPLE}",
        check=count_is(0),
    )
    add(
        "f5-filter-raw-id",
        5,
        RSJ,
        f"SELECT count(*) FILTER (WHERE id_number = '{lx[2]}') AS n, count(*) AS m {PEOPLE}",
        check=rows_are([[0, len(rsj_people)]]),
    )
    add(
        "f5-filter-masked-phone-max",
        5,
        RSJ,
        f"SELECT MAX(phone) FILTER (WHERE person_id = {lx[0]}) AS p {PEOPLE}",
        check=rows_are([[lx_row["phone"]]]),
    )
    add(
        "f5-string-agg-masked",
        5,
        RSJ,
        f"SELECT STRING_AGG(name || ':' || id_number, ',') AS s {PEOPLE} WHERE person_id = {lx[0]}",
        check=rows_are([[f"{lx_row['name']}:{lx_row['id_number']}"]]),
    )
    add(
        "f5-string-agg-outside-district",
        5,
        RSJ,
        f"SELECT STRING_AGG(name, ',') AS s {PEOPLE} WHERE person_id = {sz[0]}",
        check=rows_are([[None]]),
    )
    add(
        "f8-recursive-over-people",
        8,
        RSJ,
        "WITH RECURSIVE r(pid, nm, idn, k) AS (SELECT person_id, name, id_number, 1 "
        f"{PEOPLE} WHERE person_id = {lx[0]} UNION ALL SELECT p.person_id, p.name, "
        "p.id_number, r.k + 1 FROM r JOIN population.people AS p ON p.person_id > r.pid "
        "AND p.person_id <= r.pid + 3 WHERE r.k < 4) SELECT nm, idn FROM r",
        check=all_of(column_within(0, names, at_least=1), column_within(1, pseuds)),
        note="the recursive part reads the masked, filtered table",
    )
    add(
        "f8-recursive-walk-outside-district",
        8,
        RSJ,
        f"WITH RECURSIVE r(pid) AS (SELECT {sz[0]} UNION ALL SELECT pid + 1 FROM r "
        f"WHERE pid < {sz[0] + 40}) SELECT count(*) FROM r JOIN population.people AS p "
        "ON p.person_id = r.pid",
        check=count_is(sum(1 for i in range(sz[0], sz[0] + 41) if i in lx_ids)),
        note="a recursion walking ids of another district finds only the caller's rows",
    )
    add(
        "f8-recursive-raw-id",
        8,
        RSJ,
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
        f"SELECT count(*) FROM r, population.people AS p WHERE p.id_number = '{lx[2]}'",
        check=count_is(0),
    )
    add(
        "f8-recursive-unbounded",
        8,
        RSJ,
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
        f"SELECT count(*) FROM r, population.people AS p WHERE p.person_id = {lx[0]}",
        "refused:query_too_expensive",
        max_seconds=15,
        note="a recursion without end is stopped at the bound and refused, not cut",
    )
    add(
        "f8-recursive-shadow-source",
        8,
        RSJ,
        "WITH RECURSIVE population_people(n) AS (SELECT 1 UNION ALL SELECT n + 1 "
        f"FROM population_people WHERE n < 3) SELECT count(*) {PEOPLE}",
        REFUSED_SQL,
        note="a recursive CTE cannot take the name of a physical source table either",
    )
    add(
        "f4-lateral-masked-phone",
        4,
        RSJ,
        "SELECT p.person_id, l.phone FROM population.people AS p CROSS JOIN LATERAL "
        "(SELECT q.phone FROM population.people AS q WHERE q.id_number = p.id_number) AS l "
        f"WHERE p.person_id = {lx[0]}",
        backends=NO_LATERAL,
        check=rows_are([[lx[0], lx_row["phone"]]]),
    )
    add(
        "f4-lateral-raw-id",
        4,
        RSJ,
        "SELECT l.n FROM population.people AS p CROSS JOIN LATERAL (SELECT count(*) AS n "
        f"FROM subsidies.grants AS g WHERE g.recipient_id_number = '{lx[2]}') AS l "
        f"WHERE p.person_id = {lx[0]}",
        backends=NO_LATERAL,
        check=rows_are([[0]]),
    )
    add(
        "f4-lateral-outside-district",
        4,
        RSJ,
        "SELECT count(*) FROM population.people AS p CROSS JOIN LATERAL (SELECT q.name FROM "
        f"population.people AS q WHERE q.person_id = {sz[0]}) AS l",
        backends=NO_LATERAL,
        check=count_is(0),
    )
    add(
        "f2-date-trunc-masked-year",
        2,
        TJJ,
        f"SELECT DATE_TRUNC('month', birth_date) {PEOPLE} LIMIT 5",
        "refused:type_mismatch",
        note="birth_date is a year for tjj: no engine may read it as a day",
    )
    add(
        "f2-extract-doy-grant",
        2,
        TJJ,
        "SELECT count(*) FROM subsidies.grants WHERE EXTRACT(DOW FROM granted_date) = 9",
        check=count_is(0),
    )
    assert phones and rsj_grants


def build_probes(world: DemoWorld) -> tuple[Probe, ...]:
    """Pairs of queries differing only in a guess about a protected value."""
    pk = picks(world)
    lx, lx2, sz = pk.lx, pk.lx2, pk.sz
    lx_phone, sz_phone = _phone(lx), _phone(sz)
    people = "SELECT count(*) FROM population.people"
    g = pk.grant_odd
    e = pk.ent_res
    wrong_phone = lx_phone[:3] + ("0" if lx_phone[3] != "0" else "1") + lx_phone[4:]
    wrong_name = lx[1][0] + ("伟" if lx[1][1:] != "伟" else "强")
    street, number = re.match(r"(\D+?)(\d+)号", lx[6][6:]).groups()  # type: ignore[union-attr]
    fp = pk.lx_for_portal
    wrong_surname = "欧阳" if not fp[1].startswith("欧阳") else "王"
    probes = [
        Probe(
            "p-id-eq-insider",
            1,
            RSJ,
            f"{people} WHERE id_number = '{lx[2]}'",
            f"{people} WHERE id_number = '{pk.fake_id}'",
        ),
        Probe(
            "p-id-eq-outsider",
            1,
            RSJ,
            f"{people} WHERE id_number = '{sz[2]}'",
            f"{people} WHERE id_number = '{pk.fake_id}'",
        ),
        Probe(
            "p-phone-prefix-7",
            1,
            RSJ,
            f"{people} WHERE person_id = {lx[0]} AND phone LIKE '{lx_phone[:7]}%'",
            f"{people} WHERE person_id = {lx[0]} AND phone LIKE '{wrong_phone[:7]}%'",
        ),
        Probe(
            "p-phone-eq",
            1,
            RSJ,
            f"{people} WHERE phone = '{lx_phone}'",
            f"{people} WHERE phone = '{wrong_phone}'",
        ),
        Probe(
            "p-name-eq",
            1,
            RSJ,
            f"{people} WHERE name = '{lx[1]}'",
            f"{people} WHERE name = '{wrong_name}'",
        ),
        Probe(
            "p-address-number",
            1,
            RSJ,
            f"{people} WHERE address LIKE '%{street}{number}号%'",
            f"{people} WHERE address LIKE '%{street}{int(number) + 1}号%'",
        ),
        Probe(
            "p-name-length",
            2,
            RSJ,
            f"{people} WHERE person_id = {lx[0]} AND LENGTH(name) = {len(lx[1])}",
            f"{people} WHERE person_id = {lx[0]} AND LENGTH(name) = {len(lx[1]) + 2}",
        ),
        Probe(
            "p-outsider-exists",
            5,
            RSJ,
            f"{people} WHERE person_id = {sz[0]}",
            f"{people} WHERE person_id = 99999999",
        ),
        Probe(
            "p-exists-outsider-id",
            4,
            RSJ,
            "SELECT count(*) FROM legal_person.enterprises WHERE EXISTS (SELECT 1 FROM "
            f"population.people AS p WHERE p.id_number = '{sz[2]}')",
            "SELECT count(*) FROM legal_person.enterprises WHERE EXISTS (SELECT 1 FROM "
            f"population.people AS p WHERE p.id_number = '{pk.fake_id}')",
        ),
        Probe(
            "p-in-list",
            4,
            RSJ,
            f"{people} WHERE id_number IN ('{lx[2]}', '{lx2[2]}')",
            f"{people} WHERE id_number IN ('{pk.fake_id}', '{pk.fake_id2}')",
        ),
        Probe(
            "p-substring-birth",
            2,
            RSJ,
            f"{people} WHERE person_id = {lx[0]} AND SUBSTRING(id_number, 7, 8) = '{lx[3]:%Y%m%d}'",
            f"{people} WHERE person_id = {lx[0]} AND SUBSTRING(id_number, 7, 8) = '19000101'",
        ),
        Probe(
            "p-recipient-eq",
            1,
            RSJ,
            f"SELECT count(*) FROM subsidies.grants WHERE recipient_id_number = '{pk.grant_lx[1]}'",
            f"SELECT count(*) FROM subsidies.grants WHERE recipient_id_number = '{pk.fake_id}'",
        ),
        Probe(
            "p-legal-rep-name",
            1,
            RSJ,
            f"SELECT count(*) FROM legal_person.enterprises WHERE enterprise_id = {e[0]} "
            f"AND legal_rep = '{e[3]}'",
            f"SELECT count(*) FROM legal_person.enterprises WHERE enterprise_id = {e[0]} "
            f"AND legal_rep = '{e[3][0]}某某'",
        ),
        Probe(
            "p-legal-rep-id",
            1,
            RSJ,
            f"SELECT count(*) FROM legal_person.enterprises WHERE legal_rep_id_number = '{e[4]}'",
            f"SELECT count(*) FROM legal_person.enterprises WHERE legal_rep_id_number = "
            f"'{pk.fake_id}'",
        ),
        Probe(
            "p-ybj-id-region",
            1,
            YBJ,
            f"{people} WHERE id_number LIKE '{sz[2][:6]}%'",
            f"{people} WHERE id_number LIKE '370199%'",
        ),
        Probe(
            "p-ybj-phone-prefix",
            1,
            YBJ,
            f"{people} WHERE person_id = {sz[0]} AND phone LIKE '{sz_phone[:4]}%'",
            f"{people} WHERE person_id = {sz[0]} AND phone LIKE "
            f"'{sz_phone[:3]}{'0' if sz_phone[3] != '0' else '1'}%'",
        ),
        Probe(
            "p-tjj-amount-eq",
            1,
            TJJ,
            f"SELECT count(*) FROM subsidies.grants WHERE grant_id = {g[0]} AND amount = '{g[3]}'",
            f"SELECT count(*) FROM subsidies.grants WHERE grant_id = {g[0]} "
            f"AND amount = '{g[3] + 10}'",
        ),
        Probe(
            "p-tjj-amount-range",
            1,
            TJJ,
            f"SELECT count(*) FROM subsidies.grants WHERE grant_id = {g[0]} "
            f"AND amount > {g[3] - 1}",
            f"SELECT count(*) FROM subsidies.grants WHERE grant_id = {g[0]} "
            f"AND amount > {g[3] + 1}",
            expect="refused:type_mismatch",
            note="binary search on the raw amount inside its bucket",
        ),
        Probe(
            "p-tjj-amount-like",
            1,
            TJJ,
            f"SELECT count(*) FROM subsidies.grants WHERE grant_id = {g[0]} "
            f"AND amount LIKE '{g[3]}%'",
            f"SELECT count(*) FROM subsidies.grants WHERE grant_id = {g[0]} "
            f"AND amount LIKE '{g[3] + 10}%'",
        ),
        Probe(
            "p-tjj-birth-date",
            1,
            TJJ,
            f"{people} WHERE birth_date = '{lx[3]}'",
            f"{people} WHERE birth_date = '{lx[3].replace(day=1 if lx[3].day != 1 else 2)}'",
            backends=COERCE,
        ),
        Probe(
            "p-tjj-cross-dept",
            4,
            TJJ,
            "SELECT count(*) FROM subsidies.grants WHERE recipient_id_number = "
            f"'{world.pseudonym('rsj', pk.grant_lx[1])}'",
            f"SELECT count(*) FROM subsidies.grants WHERE recipient_id_number = '{pk.fake_hex}'",
        ),
        Probe(
            "p-swj-rep-id",
            1,
            SWJ,
            f"SELECT count(*) FROM legal_person.enterprises WHERE legal_rep_id_number = '{e[4]}'",
            f"SELECT count(*) FROM legal_person.enterprises WHERE legal_rep_id_number = "
            f"'{pk.fake_id}'",
        ),
        Probe(
            "p-portal-outsider",
            5,
            PORTAL,
            f"{people} WHERE birth_date = '{fp[3]}' AND name LIKE '{fp[1][0]}%'",
            f"{people} WHERE birth_date = '{fp[3]}' AND name LIKE '{wrong_surname}%'",
        ),
        Probe(
            "p-error-division-outsider",
            6,
            RSJ,
            f"{people} WHERE 1 / (person_id - {sz[0]}) IS NOT NULL",
            f"{people} WHERE 1 / (person_id - 99999999) IS NOT NULL",
            note="a predicate evaluated before the row filter would fail on the outsider",
        ),
        Probe(
            "p-error-division-district",
            6,
            RSJ,
            f"{people} WHERE 1 / (CASE WHEN district = '市中区' THEN 0 ELSE 1 END) = 1",
            f"{people} WHERE 1 / (CASE WHEN district = '某某区' THEN 0 ELSE 1 END) = 1",
        ),
        Probe(
            "p-error-cast-outsider",
            6,
            RSJ,
            f"{people} WHERE CAST(CASE WHEN person_id = {sz[0]} THEN 'x' ELSE '1' END "
            "AS INTEGER) = 1",
            f"{people} WHERE CAST(CASE WHEN person_id = 99999999 THEN 'x' ELSE '1' END "
            "AS INTEGER) = 1",
        ),
        Probe(
            "p-error-division-ybj",
            6,
            YBJ,
            f"{people} WHERE 1 / (CASE WHEN person_id = {lx[0]} THEN 0 ELSE 1 END) = 1",
            f"{people} WHERE 1 / (CASE WHEN person_id = 99999999 THEN 0 ELSE 1 END) = 1",
        ),
        Probe(
            "p-shadow-cte-linkage",
            4,
            RSJ,
            _shadow_people(pk.grant_lx[1], "历下区") + "SELECT count(*) FROM "
            "population.people AS p JOIN subsidies.grants AS g "
            "ON g.recipient_id_number = p.id_number",
            _shadow_people(pk.fake_id, "历下区") + "SELECT count(*) FROM "
            "population.people AS p JOIN subsidies.grants AS g "
            "ON g.recipient_id_number = p.id_number",
            expect="served|refused",
            note="a CTE shadowing population_people turns the rewrite into a pseudonym "
            "oracle: does this known ID number receive assistance?",
        ),
        Probe(
            "p-push-division-outsider",
            6,
            RSJ,
            "SELECT count(*) FROM population.people AS p JOIN subsidies.grants AS g "
            f"ON g.recipient_id_number = p.id_number WHERE 1 / (p.person_id - {sz[0]}) > 1",
            "SELECT count(*) FROM population.people AS p JOIN subsidies.grants AS g "
            "ON g.recipient_id_number = p.id_number WHERE 1 / (p.person_id - 99999999) > 1",
            note="a failing predicate pushed next to the row filter would confirm that an "
            "outsider's person_id exists",
        ),
        Probe(
            "p-push-phone-in-join",
            1,
            RSJ,
            "SELECT count(*) FROM population.people AS p JOIN subsidies.grants AS g "
            f"ON g.recipient_id_number = p.id_number WHERE p.person_id > 0 "
            f"AND p.phone = '{lx_phone}'",
            "SELECT count(*) FROM population.people AS p JOIN subsidies.grants AS g "
            f"ON g.recipient_id_number = p.id_number WHERE p.person_id > 0 "
            f"AND p.phone = '{wrong_phone}'",
        ),
    ]
    return tuple(probes)


def family_counts(items: Iterable[Attack | Probe]) -> dict[int, int]:
    return dict(sorted(Counter(i.family for i in items).items()))
