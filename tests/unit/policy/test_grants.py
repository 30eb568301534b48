"""The engine under grants: a conditional dataset is served only under an approved
application covering the caller, its purpose and the moment, and never wider than the
policy; an unconditional dataset needs none."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.catalog import load_catalog
from gateway.domain import ColumnAction, MaskSpec, Principal
from gateway.i18n import Language, Message, translate
from gateway.policy.engine import MODEL_CONF, CasbinPolicyEngine, PolicyFiles
from gateway.policy.grants import Grant
from gateway.query.rewrite.masks import check_mask_spec

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CATALOG = load_catalog(ROOT / "policies" / "catalog.toml")
FILES = PolicyFiles(
    MODEL_CONF.read_text(encoding="utf-8"),
    (ROOT / "policies" / "policy.csv").read_text(encoding="utf-8"),
)
RSJ = Principal(
    "rsj-subsidy", "rsj", {"district": "历下区", "city": "济南市"},
    frozenset({"employment_subsidy_review"}),
)  # fmt: skip
PURPOSE = "employment_subsidy_review"
PEOPLE = "population.people"
ALL = frozenset(CATALOG.table(PEOPLE).columns)  # type: ignore[union-attr]


@dataclass
class MutableGrants:
    """A grant source whose content a test changes (as approvals and revocations do)."""

    grants: list[Grant] = field(default_factory=list)
    counter: int = 0

    def epoch(self) -> int:
        return self.counter

    def grants_of(self, department: str) -> tuple[Grant, ...]:
        return tuple(g for g in self.grants if g.department == department)

    def replace(self, *grants: Grant) -> None:
        self.grants = list(grants)
        self.counter += 1


def grant(**changes: object) -> Grant:
    values: dict[str, object] = {
        "id": "GR-1",
        "application_id": "SQ-1",
        "department": "rsj",
        "systems": frozenset({"rsj-subsidy"}),
        "dataset": "population",
        "columns": {PEOPLE: ALL},
        "purpose": PURPOSE,
        "valid_from": NOW - timedelta(days=1),
    }
    values.update(changes)
    return Grant(**values)  # type: ignore[arg-type]


def engine(source: MutableGrants) -> CasbinPolicyEngine:
    return CasbinPolicyEngine(
        CATALOG, FILES, version="t", check_mask=check_mask_spec, grants=source
    )


def test_without_a_grant_a_conditional_table_is_refused_with_how_to_apply() -> None:
    snap = engine(MutableGrants()).snapshot(RSJ, PURPOSE, NOW)
    people = snap.tables[PEOPLE]
    assert not people.is_accessible()
    assert people.refusal is not None and "POST /v1/applications" in str(people.refusal)
    assert "有条件共享" in str(people.refusal)
    # legal_person is unconditional: no application needed.
    assert snap.tables["legal_person.enterprises"].is_accessible()


def test_a_full_grant_gives_exactly_the_policy_and_names_itself() -> None:
    source = MutableGrants([grant()])
    snap = engine(source).snapshot(RSJ, PURPOSE, NOW)
    policy = engine(MutableGrants()).policy_snapshot(RSJ, PURPOSE, NOW)
    people = snap.tables[PEOPLE]
    assert {c: (d.action, d.mask) for c, d in people.columns.items()} == {
        c: (d.action, d.mask) for c, d in policy.tables[PEOPLE].columns.items()
    }
    assert people.row_filters == policy.tables[PEOPLE].row_filters
    assert people.grants == ("GR-1",)


def test_a_narrowed_grant_drops_masks_filters_and_caps() -> None:
    source = MutableGrants(
        [
            grant(
                columns={PEOPLE: ALL - {"phone"}},
                masks={f"{PEOPLE}.address": MaskSpec("constant", "***")},
                row_filters={PEOPLE: "gender = '女'"},
                row_cap=50,
            )
        ]
    )
    people = engine(source).snapshot(RSJ, PURPOSE, NOW).tables[PEOPLE]
    assert people.columns["phone"].action is ColumnAction.DENY
    assert people.columns["address"].mask == MaskSpec("constant", "***")
    assert people.row_filters[-1] == "gender = '女'" and len(people.row_filters) == 2
    assert people.max_rows == 50


def test_a_grant_never_widens_the_policy() -> None:
    ybj = Principal("ybj-insurance", "ybj", {"district": "市中区"},
                    frozenset({"medical_insurance_enrollment"}))  # fmt: skip
    source = MutableGrants(
        [
            grant(
                department="ybj",
                systems=frozenset({"ybj-insurance"}),
                purpose="medical_insurance_enrollment",
            )
        ]
    )
    people = engine(source).snapshot(ybj, "medical_insurance_enrollment", NOW).tables[PEOPLE]
    assert people.columns["address"].action is ColumnAction.DENY  # the policy denies it


def test_other_systems_purposes_and_times_are_not_covered() -> None:
    portal = Principal("rsj-portal", "rsj", {"district": "天桥区"}, frozenset({PURPOSE}))
    for source, who, when in (
        (MutableGrants([grant()]), portal, NOW),
        (MutableGrants([grant(purpose="statistics")]), RSJ, NOW),
        (MutableGrants([grant(valid_until=NOW)]), RSJ, NOW),
        (MutableGrants([grant(valid_from=NOW + timedelta(hours=1))]), RSJ, NOW),
    ):
        assert not engine(source).snapshot(who, PURPOSE, when).tables[PEOPLE].is_accessible()


def test_a_change_of_grants_is_seen_at_the_next_decision() -> None:
    source = MutableGrants([grant()])
    eng = engine(source)
    assert eng.snapshot(RSJ, PURPOSE, NOW).tables[PEOPLE].is_accessible()
    source.replace()  # revoked
    assert not eng.snapshot(RSJ, PURPOSE, NOW).tables[PEOPLE].is_accessible()
    source.replace(grant(id="GR-2"))
    assert eng.snapshot(RSJ, PURPOSE, NOW).tables[PEOPLE].grants == ("GR-2",)


def test_grant_expiry_and_start_end_the_cached_snapshot() -> None:
    ends = NOW + timedelta(hours=1)
    eng = engine(MutableGrants([grant(valid_until=ends)]))
    snap = eng.snapshot(RSJ, PURPOSE, NOW)
    assert snap.valid_until is not None and snap.valid_until <= ends
    assert not eng.snapshot(RSJ, PURPOSE, ends).tables[PEOPLE].is_accessible()
    starts = NOW + timedelta(hours=2)
    later = engine(MutableGrants([grant(valid_from=starts)]))
    first = later.snapshot(RSJ, PURPOSE, NOW)
    assert not first.tables[PEOPLE].is_accessible()
    assert first.valid_until is not None and first.valid_until <= starts
    assert later.snapshot(RSJ, PURPOSE, starts).tables[PEOPLE].is_accessible()


def test_an_expired_grant_is_named_with_when_it_expired_in_both_languages() -> None:
    expired_at = NOW - timedelta(hours=2)
    source = MutableGrants([grant(valid_until=expired_at)])
    people = engine(source).snapshot(RSJ, PURPOSE, NOW).tables[PEOPLE]
    assert not people.is_accessible()
    assert isinstance(people.refusal, Message)
    english = str(people.refusal)
    assert "GR-1" in english and "expired at 2026-11-23T10:00:00Z" in english
    assert "/v1/applications/SQ-1/renewal" in english
    chinese = translate(people.refusal, Language.ZH)
    assert "已于 2026-11-23T10:00:00Z 过期" in chinese and "GR-1" in chinese


def test_a_grant_for_another_purpose_is_not_called_expired() -> None:
    source = MutableGrants([grant(purpose="statistics", valid_until=NOW - timedelta(hours=2))])
    people = engine(source).snapshot(RSJ, PURPOSE, NOW).tables[PEOPLE]
    assert "expired" not in str(people.refusal)
    assert "no approved application" in str(people.refusal)
