"""Decide: casbin → decision snapshots, fail closed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.catalog import load_catalog
from gateway.domain import ColumnAction, MaskSpec, Principal
from gateway.errors import ConfigurationError, PolicyEngineError
from gateway.policy.engine import MODEL_CONF, CasbinPolicyEngine, PolicyFiles
from gateway.query.rewrite.masks import check_mask_spec
from tests.unit.policy.support import demo_full_grants

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CATALOG = load_catalog(ROOT / "policies" / "catalog.toml")
MODEL = MODEL_CONF.read_text(encoding="utf-8")
DEMO_POLICY = (ROOT / "policies" / "policy.csv").read_text(encoding="utf-8")

RSJ = Principal(
    "rsj-subsidy",
    "rsj",
    {"district": "历下区", "city": "济南市"},
    frozenset({"employment_subsidy_review"}),
)
YBJ = Principal(
    "ybj-insurance", "ybj", {"district": "市中区"}, frozenset({"medical_insurance_enrollment"})
)


def engine(policy: str = DEMO_POLICY) -> CasbinPolicyEngine:
    """The demo policy with every demo system holding a full grant on every conditional
    dataset: the policy lines alone decide (grants are tested in test_grants.py)."""
    return CasbinPolicyEngine(
        CATALOG,
        PolicyFiles(MODEL, policy),
        version="test",
        check_mask=check_mask_spec,
        grants=demo_full_grants(CATALOG),
    )


def test_demo_decisions_for_rsj() -> None:
    snap = engine().snapshot(RSJ, "employment_subsidy_review", NOW)
    people = snap.tables["population.people"]
    assert people.columns["id_number"].action is ColumnAction.MASK
    assert people.columns["id_number"].mask == MaskSpec("pseudonym")
    # `mask` alone takes the catalog default (name -> name)
    assert people.columns["name"].mask == MaskSpec("name")
    assert people.columns["district"].action is ColumnAction.ALLOW
    assert people.row_filters == ("district = '历下区'",)
    assert people.max_rows == 200
    grants = snap.tables["subsidies.grants"]
    assert grants.columns["bank_card"].action is ColumnAction.DENY
    # the matched rule is kept for the audit record
    assert grants.columns["bank_card"].rule[6] == "deny"


def test_other_purpose_gets_nothing() -> None:
    snap = engine().snapshot(RSJ, "statistics", NOW)
    people = snap.tables["population.people"]
    assert all(d.action is ColumnAction.DENY for d in people.columns.values())
    assert not people.is_accessible()


def test_expired_grant_no_longer_matches() -> None:
    snap = engine().snapshot(YBJ, "medical_insurance_enrollment", NOW)
    assert not snap.tables["subsidies.grants"].is_accessible()
    before = engine().snapshot(
        YBJ, "medical_insurance_enrollment", datetime(2025, 1, 1, tzinfo=UTC)
    )
    assert before.tables["subsidies.grants"].columns["amount"].action is ColumnAction.ALLOW


def test_not_shared_dataset_is_refused_even_with_a_rule() -> None:
    policy = DEMO_POLICY + (
        "\np, 1, rsj-subsidy, rsj, case_records.incidents.*, select, *, allow, "
        "2099-12-31T00:00:00Z, allow\n"
    )
    snap = engine(policy).snapshot(RSJ, "employment_subsidy_review", NOW)
    incidents = snap.tables["case_records.incidents"]
    assert incidents.refusal and "不予共享" in str(incidents.refusal)
    assert not incidents.is_accessible()


def test_unknown_system_is_denied_everything() -> None:
    stranger = Principal(
        "nobody", "rsj", {"district": "历下区"}, frozenset({"employment_subsidy_review"})
    )
    snap = engine().snapshot(stranger, "employment_subsidy_review", NOW)
    assert not any(t.is_accessible() for t in snap.tables.values())


def test_missing_filter_attribute_refuses_the_table() -> None:
    no_district = Principal("rsj-subsidy", "rsj", {}, frozenset({"employment_subsidy_review"}))
    snap = engine().snapshot(no_district, "employment_subsidy_review", NOW)
    refusal = snap.tables["population.people"].refusal
    assert refusal is not None and "district" in str(refusal)
    assert not snap.tables["population.people"].is_accessible()


def test_filters_are_anded_and_limits_take_the_minimum() -> None:
    policy = DEMO_POLICY + (
        "\np2, rsj-subsidy, rsj, population.people, *, gender = '女', 2099-12-31T00:00:00Z\n"
        "p3, rsj-subsidy, rsj, population.*, *, 50, 2099-12-31T00:00:00Z\n"
    )
    people = (
        engine(policy).snapshot(RSJ, "employment_subsidy_review", NOW).tables["population.people"]
    )
    assert sorted(people.row_filters) == ["district = '历下区'", "gender = '女'"]
    assert people.max_rows == 50


def test_a_table_no_limit_line_matches_has_the_catalog_default() -> None:
    tjj = Principal("tjj-stats", "tjj", {"city": "济南市"}, frozenset({"statistics"}))
    snap = engine().snapshot(tjj, "statistics", NOW)
    # p3 lines cover subsidies.* and population.* for tjj, nothing covers legal_person
    assert snap.tables["subsidies.grants"].max_rows == 5000
    assert snap.tables["legal_person.enterprises"].max_rows == CATALOG.default_max_rows == 1000
    # a dataset's own default applies to its tables, and a p3 line still overrides it
    raw_catalog = replace(
        CATALOG,
        datasets={
            **CATALOG.datasets,
            "legal_person": replace(CATALOG.datasets["legal_person"], default_max_rows=7),
            "subsidies": replace(CATALOG.datasets["subsidies"], default_max_rows=9),
        },
    )
    snap = CasbinPolicyEngine(
        raw_catalog, PolicyFiles(MODEL, DEMO_POLICY), version="t", check_mask=check_mask_spec
    ).snapshot(tjj, "statistics", NOW)
    assert snap.tables["legal_person.enterprises"].max_rows == 7
    assert snap.tables["subsidies.grants"].max_rows == 5000


def test_attribute_values_are_bound_as_literals() -> None:
    evil = Principal(
        "rsj-subsidy", "rsj", {"district": "x' OR '1'='1"}, frozenset({"employment_subsidy_review"})
    )
    people = engine().snapshot(evil, "employment_subsidy_review", NOW).tables["population.people"]
    assert people.row_filters == ("district = 'x'' OR ''1''=''1'",)


def test_snapshot_is_cached_until_a_matched_rule_expires() -> None:
    expiry = NOW + timedelta(hours=1)
    stamp = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
    policy = (
        "g, rsj-subsidy, role:r, rsj\n"
        f"p, 10, role:r, rsj, population.people.gender, select, *, allow, {stamp}, allow\n"
    )
    eng = engine(policy)
    first = eng.snapshot(RSJ, "employment_subsidy_review", NOW)
    assert first.valid_until == expiry
    assert eng.snapshot(RSJ, "employment_subsidy_review", NOW + timedelta(minutes=1)) is first
    # At the expiry instant the rule no longer holds: the cached snapshot is not used.
    at_expiry = eng.snapshot(RSJ, "employment_subsidy_review", expiry)
    assert at_expiry is not first
    assert at_expiry.tables["population.people"].columns["gender"].action is ColumnAction.DENY
    later = eng.snapshot(RSJ, "employment_subsidy_review", expiry + timedelta(seconds=1))
    assert later is not first
    assert later.tables["population.people"].columns["gender"].action is ColumnAction.DENY


def test_snapshot_cache_is_bounded_and_can_be_off() -> None:
    files = PolicyFiles(MODEL, DEMO_POLICY)
    one = CasbinPolicyEngine(
        CATALOG, files, version="test", check_mask=check_mask_spec, cache_size=1
    )
    rsj = one.snapshot(RSJ, "employment_subsidy_review", NOW)
    assert one.snapshot(RSJ, "employment_subsidy_review", NOW) is rsj
    one.snapshot(YBJ, "medical_insurance_enrollment", NOW)  # evicts RSJ's
    again = one.snapshot(RSJ, "employment_subsidy_review", NOW)
    assert again is not rsj and again == rsj
    off = CasbinPolicyEngine(
        CATALOG, files, version="test", check_mask=check_mask_spec, cache_size=0
    )
    first = off.snapshot(RSJ, "employment_subsidy_review", NOW)
    assert off.snapshot(RSJ, "employment_subsidy_review", NOW) is not first


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "p, 10, r, rsj, population.peple.name, select, *, allow, 2099-12-31T00:00:00Z, allow",
            "unknown table",
        ),
        (
            "p, 10, r, rsj, population.people.nme, select, *, allow, 2099-12-31T00:00:00Z, allow",
            "no column",
        ),
        (
            "p, 10, r, rsj, population.people.name, select, *, mask:rot13, 2099-12-31T00:00:00Z, "
            "allow",
            "rot13",
        ),
        (
            "p, 10, r, rsj, population.people.gender, select, *, mask, 2099-12-31T00:00:00Z, allow",
            "default_mask",
        ),
        ("p, 10, r, rsj, population.people.name, select, *, allow, next year, allow", "expiry"),
        (
            "p, 10, r, rsj, population.people.name, select, *, permit, 2099-12-31T00:00:00Z, allow",
            "unknown rule",
        ),
        (
            "p, 10, r, rsj, population.people.name, delete, *, allow, 2099-12-31T00:00:00Z, allow",
            "action",
        ),
        ("p2, r, rsj, population.people, *, salary > 1, 2099-12-31T00:00:00Z", "not a column"),
        (
            "p2, r, rsj, population.people, *, district IN (SELECT 1), 2099-12-31T00:00:00Z",
            "subqueries",
        ),
        (
            "p, 10, r, rsj, population.people.name, select, *, mask:name:fill=lenght, "
            "2099-12-31T00:00:00Z, allow",
            "p line for population.people.name: mask 'name:fill=lenght': fill must be 'length'",
        ),
        (
            "p, 10, r, rsj, population.people.*, select, *, mask:regex:pattern=(x), "
            "2099-12-31T00:00:00Z, allow",
            "p line for population.people.*: mask 'regex:pattern=\\(x\\)'",
        ),
        (
            "p, 10, r, rsj, population.people.birth_date, select, *, "
            "mask:date_shift:days=30;key=person, 2099-12-31T00:00:00Z, allow",
            "needs key=person to be a text or integer column of population.people",
        ),
        (
            "p, 10, r, rsj, population.people.birth_date, select, *, "
            "mask:date_shift:days=30;key=birth_date, 2099-12-31T00:00:00Z, allow",
            "needs key=birth_date to be a text or integer column",
        ),
        ("p3, r, rsj, population.people, *, lots, 2099-12-31T00:00:00Z", "max_rows"),
        ("p3, r, rsj, nothing.*, *, 5, 2099-12-31T00:00:00Z", "names nothing"),
    ],
)
def test_policy_mistakes_are_refused_at_load(line: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        engine(line + "\n")


def test_casbin_failure_fails_closed() -> None:
    broken_model = MODEL.replace("keyMatch(r.obj, p.obj)", "noSuchFunction(r.obj, p.obj)")
    eng = CasbinPolicyEngine(
        CATALOG, PolicyFiles(broken_model, DEMO_POLICY), version="x", check_mask=check_mask_spec
    )
    with pytest.raises(PolicyEngineError):
        eng.snapshot(RSJ, "employment_subsidy_review", NOW)


def test_officers_masks_with_parameters_are_decided_as_written() -> None:
    policy = (
        "p, 10, role:r, rsj, population.people.name, select, *, mask:name:fill=length, "
        "2099-12-31T00:00:00Z, allow\n"
        "p, 10, role:r, rsj, population.people.birth_date, select, *, "
        "mask:date_shift:days=30;key=id_number, 2099-12-31T00:00:00Z, allow\n"
        "g, rsj-subsidy, role:r, rsj\n"
    )
    people = engine(policy).snapshot(RSJ, "employment_subsidy_review", NOW)
    columns = people.tables["population.people"].columns
    assert columns["name"].mask == MaskSpec("name", "fill=length")
    assert columns["birth_date"].mask == MaskSpec("date_shift", "days=30;key=id_number")


def test_every_catalog_default_mask_is_checked_even_if_no_rule_uses_it() -> None:
    people = CATALOG.datasets["population"].tables["people"]
    bad = replace(people.columns["gender"], default_mask=MaskSpec("partial", "fill=0"))
    tables = {**CATALOG.datasets["population"].tables}
    tables["people"] = replace(people, columns={**people.columns, "gender": bad})
    catalog = replace(
        CATALOG,
        datasets={
            **CATALOG.datasets,
            "population": replace(CATALOG.datasets["population"], tables=tables),
        },
    )
    with pytest.raises(
        ConfigurationError,
        match=r"catalog column population.people.gender default_mask: mask 'partial:fill=0'",
    ):
        CasbinPolicyEngine(
            catalog, PolicyFiles(MODEL, DEMO_POLICY), version="t", check_mask=check_mask_spec
        )


def _short(policy: str) -> str:
    """The demo policy with every p line in the short form (no priority, no effect)."""
    out = []
    for line in policy.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if fields[0] == "p" and len(fields) == 10:
            line = ", ".join(["p", *fields[2:9]])
        out.append(line)
    return "\n".join(out) + "\n"


def test_short_p_lines_decide_as_the_demo_policy_with_its_priorities() -> None:
    """The demo's hand-set priorities (deny 5, column 10, table.* 20) are exactly what the
    short form implies: every decision of every demo system is the same."""
    short = _short(DEMO_POLICY)
    assert short != DEMO_POLICY and ", 10, " not in short.replace("p3", "")
    full, implied = engine(), engine(short)
    systems = [RSJ, YBJ, replace(RSJ, purposes=frozenset({"statistics"}))]
    for principal in systems:
        for purpose in sorted(principal.purposes):
            a = full.snapshot(principal, purpose, NOW).tables
            b = implied.snapshot(principal, purpose, NOW).tables
            assert a.keys() == b.keys()
            for name in a:
                assert {c: (d.action, d.mask) for c, d in a[name].columns.items()} == {
                    c: (d.action, d.mask) for c, d in b[name].columns.items()
                }, name


@pytest.mark.parametrize(
    ("lines", "phone"),
    [
        # At the same object, deny wins over allow whatever the order of the lines.
        (["allow", "deny"], ColumnAction.DENY),
        (["deny", "allow"], ColumnAction.DENY),
    ],
)
def test_a_short_deny_beats_an_allow_on_the_same_object(
    lines: list[str], phone: ColumnAction
) -> None:
    base = "\n".join(
        line
        for line in DEMO_POLICY.splitlines()
        if "population.people.phone" not in line or "rsj" not in line
    )
    extra = "\n".join(
        f"p, role:rsj-reviewer, rsj, population.people.phone, select, *, {rule}, never"
        for rule in lines
    )
    snap = engine(base + "\n" + extra + "\n").snapshot(RSJ, "employment_subsidy_review", NOW)
    assert snap.tables["population.people"].columns["phone"].action is phone


def test_a_short_column_rule_beats_a_short_table_deny() -> None:
    policy = DEMO_POLICY + (
        "p, role:rsj-reviewer, rsj, subsidies.grants.*, select, *, deny, never\n"
        "p, role:rsj-reviewer, rsj, subsidies.grants.program, select, *, allow, never\n"
    )
    # The table-wide deny (15) beats the demo's table-wide allow (20) and the column
    # masks (10) still apply; only the named column is allowed again.
    cols = (
        engine(policy)
        .snapshot(RSJ, "employment_subsidy_review", NOW)
        .tables["subsidies.grants"]
        .columns
    )
    assert cols["program"].action is ColumnAction.ALLOW
    assert cols["granted_date"].action is ColumnAction.DENY
    assert cols["recipient_id_number"].action is ColumnAction.MASK
