"""The store seam's values: a SearchQuery is valid once built and selects exactly what the
stores' SQL narrows to; the factory reads locations through the one DSN parser."""

from __future__ import annotations

import pytest

from gateway.audit.record import Outcome
from gateway.audit.signing import CheckpointSigner
from gateway.audit.store.open import open_audit_store
from gateway.audit.store.protocol import (
    MAX_SEARCH_LIMIT,
    SearchColumns,
    SearchQuery,
    search_columns,
)
from gateway.errors import ConfigurationError
from tests.unit.audit.support import make_record, test_signer

COLUMNS = SearchColumns(
    audit_id="a1",
    time="2026-11-23T19:00:05.000000Z",
    department="市公安局",
    system="population-portal",
    purpose="social_assistance",
    outcome="served",
    datasets=" population tax ",
    sql="SELECT name FROM population.people WHERE x LIKE 'a_%'",
)


@pytest.mark.parametrize(
    ("query", "selected"),
    [
        (SearchQuery(), True),
        (SearchQuery(department="市公安局"), True),
        (SearchQuery(department="市公安"), False),  # equality, not substring
        (SearchQuery(system="population-portal", purpose="social_assistance"), True),
        (SearchQuery(system="other"), False),
        (SearchQuery(outcome=Outcome.SERVED), True),
        (SearchQuery(outcome=Outcome.REFUSED), False),
        (SearchQuery(since="2026-11-23T19:00:05.000000Z"), True),  # inclusive
        (SearchQuery(since="2026-11-23T19:00:05.000001Z"), False),
        (SearchQuery(until="2026-11-23T19:00:05.000000Z"), False),  # exclusive
        (SearchQuery(until="2026-11-23T19:00:05.000001Z"), True),
        (SearchQuery(dataset="tax"), True),
        (SearchQuery(dataset="ta"), False),  # whole dataset names only
        (SearchQuery(dataset="population tax"), True),  # the delimiter is a space
        (SearchQuery(text="LIKE 'a_%'"), True),  # a literal substring, '_' and '%' too
        (SearchQuery(text="like"), False),  # case-sensitive
        (SearchQuery(text=""), True),
        (SearchQuery(before=8), True),
        (SearchQuery(before=7), False),  # only indices below it
    ],
)
def test_matches(query: SearchQuery, selected: bool) -> None:
    assert query.matches(7, COLUMNS) is selected


def test_text_never_matches_a_record_without_sql() -> None:
    assert not SearchQuery(text="").matches(0, COLUMNS._replace(sql=None))


def test_the_columns_of_a_record_are_what_it_is_searched_by() -> None:
    record = make_record(0, tables=("tax.returns", "population.people", "tax.refunds"))
    columns = search_columns(record)
    assert columns.datasets == " population tax "
    assert SearchQuery(dataset="tax", department=record.department).matches(0, columns)


def test_an_outcome_may_be_named_by_its_value() -> None:
    query = SearchQuery(outcome="refused")  # type: ignore[arg-type]  # as a web form gives it
    assert query.outcome is Outcome.REFUSED


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"since": "2026-11-23"}, ValueError),
        ({"until": "2026-11-23T19:00:00Z"}, ValueError),
        ({"limit": 0}, ValueError),
        ({"limit": MAX_SEARCH_LIMIT + 1}, ValueError),
        ({"limit": 1.5}, TypeError),
        ({"limit": True}, TypeError),
        ({"before": "7"}, TypeError),
        ({"before": False}, TypeError),
        ({"outcome": "maybe"}, ValueError),
    ],
)
def test_an_unusable_query_cannot_be_built(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        SearchQuery(**kwargs)  # type: ignore[arg-type]


def test_a_query_is_a_value() -> None:
    assert SearchQuery(system="s", limit=5) == SearchQuery(system="s", limit=5)
    with pytest.raises(AttributeError):
        SearchQuery().limit = 7  # type: ignore[misc]


@pytest.fixture
def signer() -> CheckpointSigner:
    return test_signer()


def test_the_factory_names_the_setting_and_never_echoes_a_password(
    signer: CheckpointSigner,
) -> None:
    with pytest.raises(ConfigurationError) as info:
        open_audit_store("mysql://root:s3cret@db.example/audit", signer)
    assert "GATEWAY_AUDIT_DSN" in info.value.detail
    assert "s3cret" not in info.value.detail
    assert "s3cret" not in (info.value.internal_detail or "")


def test_the_factory_opens_a_memory_store(signer: CheckpointSigner) -> None:
    store = open_audit_store("memory:", signer)
    try:
        assert store.append(make_record(0)) == 0
        assert store.origin == signer.origin
    finally:
        store.close()
