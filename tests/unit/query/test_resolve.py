"""Resolve: unqualified table names through the search path, and per-table sharing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.catalog.load import parse_catalog
from gateway.domain import DecisionSnapshot, Principal
from gateway.errors import (
    AccessDeniedError,
    AmbiguousTableError,
    ConfigurationError,
    UnknownDatasetError,
    UnsupportedStatementError,
)
from gateway.policy.engine import MODEL_CONF, CasbinPolicyEngine, PolicyFiles
from gateway.query.parse import parse_sql
from gateway.query.resolve import resolve_query, visible_schema
from gateway.query.rewrite.masks import check_mask_spec, masked_type

ROOT = Path(__file__).resolve().parents[3]
MODEL = MODEL_CONF.read_text(encoding="utf-8")
NOW = datetime(2026, 11, 23, tzinfo=UTC)

_TABLE = """
[datasets.{ds}.tables.{t}]
description = "{t}"
{extra}
columns = [
  {{ name = "id", type = "integer", sensitivity = "internal", description = "id" }},
  {{ name = "note", type = "text", sensitivity = "internal", description = "note" }},
]
"""


def catalog_text(search_path: str = "") -> str:
    head = f"""
default_max_rows = 100
{search_path}
[departments.mzj]
name = "民政局"
[departments.rsj]
name = "人社局"
[purposes.review]
name = "review"
"""
    datasets = ""
    for ds in ("civil", "archive"):
        datasets += f"""
[datasets.{ds}]
title = "{ds}"
owner = "mzj"
backend = "main"
sharing_class = "unconditional"
grade = "general"
update_cycle = "daily"
description = "{ds}"
"""
    tables = _TABLE.format(ds="civil", t="residents", extra="")
    tables += _TABLE.format(ds="civil", t="subsidies", extra="")
    tables += _TABLE.format(ds="civil", t="internal_notes", extra='sharing_class = "not_shared"')
    tables += _TABLE.format(ds="archive", t="residents", extra="")
    return head + datasets + tables


POLICY = """
p, 10, clerk, rsj, civil.residents.*, select, *, allow, 2099-12-31T00:00:00Z, allow
p, 10, clerk, rsj, civil.subsidies.*, select, *, allow, 2099-12-31T00:00:00Z, allow
p, 10, clerk, rsj, archive.residents.*, select, *, allow, 2099-12-31T00:00:00Z, allow
"""

CLERK = Principal("clerk", "rsj", {}, frozenset({"review"}))


def resolve(sql: str, *, catalog_search: str = "", system_path: tuple[str, ...] = ()) -> str:
    import tomllib

    catalog = parse_catalog(tomllib.loads(catalog_text(catalog_search)))
    engine = CasbinPolicyEngine(
        catalog, PolicyFiles(MODEL, POLICY), version="t", check_mask=check_mask_spec
    )
    snapshot: DecisionSnapshot = engine.snapshot(CLERK, "review", NOW)
    schema = visible_schema(snapshot, catalog, masked_type)
    resolved = resolve_query(parse_sql(sql), snapshot, catalog, schema, search_path=system_path)
    return ",".join(resolved.tables)


def test_unqualified_name_resolves_through_the_catalog_search_path() -> None:
    assert resolve("SELECT id FROM residents", catalog_search='search_path = ["civil"]') == (
        "civil.residents"
    )
    assert resolve("SELECT id FROM residents", catalog_search='search_path = ["archive"]') == (
        "archive.residents"
    )


def test_system_search_path_replaces_the_catalog_one() -> None:
    tables = resolve(
        "SELECT r.id FROM residents AS r",
        catalog_search='search_path = ["civil"]',
        system_path=("archive",),
    )
    assert tables == "archive.residents"


def test_name_in_two_datasets_is_ambiguous_and_lists_the_candidates() -> None:
    with pytest.raises(AmbiguousTableError) as info:
        resolve("SELECT id FROM residents")  # no search path: every dataset
    assert info.value.status == 400
    assert info.value.extra["candidates"] == ["civil.residents", "archive.residents"]
    assert "civil.residents" in info.value.detail and "archive.residents" in info.value.detail


def test_unique_name_resolves_without_a_search_path_and_qualified_names_still_work() -> None:
    assert resolve("SELECT s.id FROM subsidies AS s JOIN civil.residents AS r ON r.id = s.id") == (
        "civil.residents,civil.subsidies"
    )


def test_cte_named_like_a_table_is_refused_not_resolved() -> None:
    # A CTE taking a table's name would feed its own rows where the protected table is
    # read; it is refused whatever the search path says.
    with pytest.raises(UnsupportedStatementError, match="reserved"):
        resolve(
            "WITH residents AS (SELECT 1 AS id) SELECT id FROM residents",
            catalog_search='search_path = ["civil"]',
        )


def test_unknown_name_hint_names_this_deployments_tables_not_the_demo() -> None:
    with pytest.raises(UnknownDatasetError) as info:
        resolve("SELECT id FROM people")
    assert "population.people" not in info.value.detail
    assert "civil.residents" in info.value.detail


def test_not_shared_table_in_shared_dataset_is_refused() -> None:
    with pytest.raises(AccessDeniedError, match=r"civil\.internal_notes is not shared"):
        resolve("SELECT note FROM internal_notes", catalog_search='search_path = ["civil"]')
    # while its siblings in the same dataset are served
    assert resolve("SELECT note FROM civil.subsidies") == "civil.subsidies"


def test_table_cannot_be_less_strict_than_its_dataset() -> None:
    import tomllib

    text = catalog_text().replace('sharing_class = "not_shared"', 'sharing_class = "unconditional"')
    text = text.replace(
        '[datasets.civil]\ntitle = "civil"\nowner = "mzj"\nbackend = "main"\n'
        'sharing_class = "unconditional"',
        '[datasets.civil]\ntitle = "civil"\nowner = "mzj"\nbackend = "main"\n'
        'sharing_class = "conditional"',
    )
    with pytest.raises(ConfigurationError, match="less strict"):
        parse_catalog(tomllib.loads(text))


def test_search_path_naming_an_unknown_dataset_suggests_the_close_one() -> None:
    import tomllib

    with pytest.raises(ConfigurationError, match="did you mean 'civil'"):
        parse_catalog(tomllib.loads(catalog_text('search_path = ["civl"]')))
