"""Run rewriter fixtures: ``-- title:`` / optional ``-- dialect: <target>`` (default
postgres) / input SQL / ``-- expect:`` output in that dialect, or
``-- error: <ErrorClass>: <substring>``.

Masks are replaced by a readable stand-in, ``MASK_<KIND>(column)``, so the fixtures pin the
*placement* of masks and filters (mask SQL per dialect is tested in test_masks*.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlglot import exp

from gateway.catalog import Catalog, Table, load_catalog
from gateway.domain import DecisionSnapshot, MaskSpec, Principal
from gateway.policy.engine import MODEL_CONF, CasbinPolicyEngine, PolicyFiles
from gateway.query.parse import parse_sql
from gateway.query.resolve import resolve_query, visible_schema
from gateway.query.rewrite.derive import build_derived_select, protect_tables
from gateway.query.rewrite.dialect import to_backend_sql
from gateway.query.rewrite.limit import cap_row_limit
from gateway.query.rewrite.masks import check_mask_spec, masked_type
from gateway.query.rewrite.portable import make_portable
from gateway.query.validate import check_query_is_allowed
from tests.unit.policy.support import demo_full_grants

ROOT = Path(__file__).resolve().parents[4]
FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 11, 23, tzinfo=UTC)
CATALOG: Catalog = load_catalog(ROOT / "policies" / "catalog.toml")
ENGINE = CasbinPolicyEngine(
    CATALOG,
    PolicyFiles(
        MODEL_CONF.read_text(encoding="utf-8"),
        (ROOT / "policies" / "policy.csv").read_text(encoding="utf-8"),
    ),
    version="fixtures",
    check_mask=check_mask_spec,
    grants=demo_full_grants(CATALOG),
)
RSJ = Principal(
    "rsj-subsidy",
    "rsj",
    {"district": "历下区", "city": "济南市"},
    frozenset({"employment_subsidy_review"}),
)


@dataclass(frozen=True)
class Case:
    title: str
    sql: str
    expect: str | None
    error: str | None
    dialect: str = "postgres"

    def __str__(self) -> str:
        return self.title if self.dialect == "postgres" else f"{self.title} [{self.dialect}]"


def load_cases(name: str) -> list[Case]:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    cases = []
    for block in re.split(r"^-- title: ", text, flags=re.M)[1:]:
        title, _, rest = block.partition("\n")
        dialect = "postgres"
        chosen = re.match(r"-- dialect: (\w+)\n", rest)
        if chosen is not None:
            dialect, rest = chosen.group(1), rest[chosen.end() :]
        marker = re.search(r"^-- (expect|error):(.*)", rest, flags=re.M | re.S)
        if marker is None:
            raise ValueError(f"{name}: case {title!r} has no -- expect: or -- error: line")
        result = marker.group(2).strip()
        cases.append(
            Case(
                title.strip(),
                rest[: marker.start()].strip(),
                result if marker.group(1) == "expect" else None,
                result if marker.group(1) == "error" else None,
                dialect,
            )
        )
    return cases


def _table(name: str) -> Table:
    table = CATALOG.table(name)
    if table is None:
        raise KeyError(name)
    return table


def fake_mask(ref: exp.Expression, spec: MaskSpec, _type: str) -> exp.Expression:
    return exp.Anonymous(this=f"MASK_{spec.kind.upper()}", expressions=[ref])


def rewrite(
    sql: str,
    snapshot: DecisionSnapshot | None = None,
    allowed: int = 200,
    dialect: str = "postgres",
) -> str:
    snapshot = snapshot or ENGINE.snapshot(RSJ, "employment_subsidy_review", NOW)
    query = parse_sql(sql)
    check_query_is_allowed(query)
    schema = visible_schema(
        snapshot, CATALOG, lambda s, t: masked_type(s, t) if s is not None else t
    )
    resolved = resolve_query(query, snapshot, CATALOG, schema)
    protected = protect_tables(
        resolved.query,
        lambda name: build_derived_select(
            _table(name),
            snapshot.tables[name],
            fake_mask,
        ),
        dialect=dialect,
    )
    portable = make_portable(protected, dialect)
    cap_row_limit(portable, allowed)
    return to_backend_sql(portable, dialect)
