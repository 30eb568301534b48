"""Property tests of the rewriter over queries generated from a small grammar.

The grammar (see :class:`_Gen`) builds consumer queries over the catalog as one principal
sees it: random projections of visible columns, WHERE predicates (also on masked columns,
with literals drawn from both the masked and the raw values), inner and LEFT joins on
identifier and district columns, IN / EXISTS / scalar subqueries (correlated or not),
GROUP BY with aggregates and HAVING, DISTINCT, CASE, COALESCE, EXTRACT, RANK/COUNT
windows, UNION [ALL] / INTERSECT / EXCEPT, CTE and derived-table wrapping, ORDER BY and
LIMIT. Each query is kept as a small tree so it can be rendered against different tables
(catalog names, physical tables, reference tables) and mutated (an unknown table, a denied
column in some clause).

The rewrite runs the planner's stages directly (parse, validate, resolve, protect, cap,
transpile), with either the real masks or an identity mask, on a small SQLite demo
database (300 residents) built once per session with ``ensure_demo_database``. Reference
answers never come from the rewriter: the physical tables as stored (optionally behind the
row filter, spelled out by hand below), or in-memory tables holding the *Python* reference
of each mask (:func:`mask_value`) over the generated demo data.

Properties:

(a) the rewritten SQL re-parses in each target dialect (and transpiles without error);
(b) identity masks, row filters kept: on the monotone fragment (no aggregates, negation,
    LEFT JOIN, EXCEPT or scalar subqueries) the rows are a sub-multiset of the
    unprotected query's rows on the physical tables; on the whole grammar they equal the
    query run over the physically filtered tables;
(c) real masks and filters: no raw protected value and no value of a filtered-out row
    appears in the results; and the results equal the query run over tables holding the
    Python-masked, filtered rows (so every clause saw only masked values);
(d) a reference to an unknown table always raises UnknownDatasetError;
(e) a reference to a denied column in any clause raises AccessDeniedError, and so does a
    reference to a table that is not shared;
and a set operation may be ordered by its output columns (fails today: resolve.py refuses
any column of an ORDER BY attached to a set operation, see the e2e tests too).
"""

from __future__ import annotations

import copy
import functools
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import pytest
import sqlglot
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from sqlglot import exp

from gateway.catalog import Table
from gateway.demo.generate import DEMO_TABLES, DemoData, generate_demo_data
from gateway.demo.load import ensure_demo_database
from gateway.domain import ColumnAction, DecisionSnapshot, MaskSpec, Principal
from gateway.errors import AccessDeniedError, UnknownDatasetError
from gateway.query.parse import parse_sql
from gateway.query.resolve import resolve_query, visible_schema
from gateway.query.rewrite.derive import build_derived_select, protect_tables
from gateway.query.rewrite.dialect import to_backend_sql
from gateway.query.rewrite.limit import cap_row_limit
from gateway.query.rewrite.masks import (
    DIALECTS,
    MaskContext,
    derive_pseudonym_key,
    mask_expression,
    mask_value,
    masked_type,
    sqlite_functions,
)
from gateway.query.rewrite.portable import make_portable
from gateway.query.validate import check_query_is_allowed
from tests.unit.query.rewrite.fixture_support import CATALOG, ENGINE, NOW, RSJ

# A small world keeps every example fast: 300 residents, 75 enterprises, 150 payments.
PEOPLE_COUNT = 300
SEED = 20261123
MASTER_SECRET = b"property-tests-master-secret-0123456789"

PRINCIPALS: Mapping[str, tuple[Principal, str]] = {
    "rsj": (RSJ, "employment_subsidy_review"),
    "ybj": (
        Principal("ybj-insurance", "ybj", {"district": "市中区", "city": "济南市"},
                  frozenset({"medical_insurance_enrollment"})),
        "medical_insurance_enrollment",
    ),
    "tjj": (
        Principal("tjj-stats", "tjj", {"city": "济南市"}, frozenset({"statistics"})),
        "statistics",
    ),
    "swj": (
        Principal("swj-tax", "swj", {"district": "槐荫区", "city": "济南市"},
                  frozenset({"tax_administration"})),
        "tax_administration",
    ),
}  # fmt: skip
SNAPSHOTS: Mapping[str, DecisionSnapshot] = {
    who: ENGINE.snapshot(p, purpose, NOW) for who, (p, purpose) in PRINCIPALS.items()
}
#: The row filters of policy.csv, written out independently: (who, table) -> district.
ROW_FILTERS: Mapping[tuple[str, str], str] = {
    ("rsj", "population.people"): "历下区",
    ("rsj", "subsidies.grants"): "历下区",
    ("ybj", "population.people"): "市中区",
}
MASK_CONTEXTS: Mapping[str, MaskContext] = {
    who: MaskContext(derive_pseudonym_key(MASTER_SECRET, p.department), CATALOG.regions)
    for who, (p, _) in PRINCIPALS.items()
}
SOURCES = {"population.people": "population_people", "legal_person.enterprises":
           "market_enterprises", "subsidies.grants": "civil_subsidies"}  # fmt: skip
NOT_SHARED = "case_records.incidents"
NO_CAP = 10**7

Mode = Literal["full", "monotone"]


# ----------------------------------------------------------------------------- the world


@dataclass(frozen=True)
class VCol:
    """A column as one principal sees it."""

    table: str
    name: str
    #: Type after masking (what the consumer's SQL works with).
    type: str
    mask: MaskSpec | None


def _table(name: str) -> Table:
    table = CATALOG.table(name)
    assert table is not None
    return table


def accessible(who: str) -> list[str]:
    return sorted(t for t, d in SNAPSHOTS[who].tables.items() if d.is_accessible() and t in SOURCES)


def visible(who: str, table: str) -> list[VCol]:
    decision = SNAPSHOTS[who].tables[table]
    out = []
    for col in _table(table).columns.values():
        d = decision.columns.get(col.name)
        if d is None or d.action is ColumnAction.DENY:
            continue
        vtype = masked_type(d.mask, col.type) if d.mask is not None else col.type
        out.append(VCol(table, col.name, vtype, d.mask))
    return out


def denied(who: str, table: str) -> list[str]:
    names = {c.name for c in visible(who, table)}
    return [c for c in _table(table).columns if c not in names]


@functools.cache
def demo() -> DemoData:
    return generate_demo_data(SEED, PEOPLE_COUNT)


def raw_rows(table: str) -> list[dict[str, Any]]:
    for spec, rows in demo().tables():
        if spec.name == SOURCES[table]:
            return [dict(zip(spec.column_names, r, strict=True)) for r in rows]
    raise KeyError(table)


def _cell(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _types(table: str) -> dict[str, str]:
    spec = next(s for s in DEMO_TABLES if s.name == SOURCES[table])
    return {c.name: c.type for c in spec.columns}


@functools.cache
def view(who: str, table: str) -> tuple[dict[str, Any], ...]:
    """Python reference of what ``who`` sees: filtered rows, visible columns, masked."""
    district = ROW_FILTERS.get((who, table))
    types = _types(table)
    rows = []
    for raw in raw_rows(table):
        if district is not None and raw["district"] != district:
            continue
        row = {}
        for col in visible(who, table):
            value = raw[col.name]
            if col.mask is not None:
                value = mask_value(
                    col.mask, value, column_type=types[col.name], ctx=MASK_CONTEXTS[who]
                )
            row[col.name] = _cell(value)
        rows.append(row)
    return tuple(rows)


@functools.cache
def domain(who: str, col: VCol) -> list[Any]:
    """Literals for predicates on ``col``: some masked values the principal sees, and
    some raw values of the right type (which must then match nothing masked)."""
    masked = {r[col.name] for r in view(who, col.table)} - {None}
    raw = {_cell(r[col.name]) for r in raw_rows(col.table)} - {None}
    want = int if col.type == "integer" else str
    raw = {v for v in raw if isinstance(v, want)}
    values: list[Any] = []
    for pool in (masked, raw):
        ordered = sorted(pool, key=repr)
        step = max(1, len(ordered) // 12)
        values += ordered[::step][:12]
    return sorted(set(values), key=repr) or ([0] if want is int else ["x"])


#: Pairs of columns that hold the same kind of value, for joins and IN/EXISTS.
_KEY_GROUPS = (
    {("population.people", "id_number"), ("subsidies.grants", "recipient_id_number"),
     ("legal_person.enterprises", "legal_rep_id_number")},
    {("population.people", "district"), ("subsidies.grants", "district"),
     ("legal_person.enterprises", "district")},
    {("population.people", "person_id"), ("subsidies.grants", "grant_id"),
     ("legal_person.enterprises", "enterprise_id")},
    {("population.people", "name"), ("legal_person.enterprises", "legal_rep")},
)  # fmt: skip


def partners(who: str, left: VCol, table: str) -> list[VCol]:
    """Visible columns of ``table`` that may be compared with ``left``."""
    out = []
    for group in _KEY_GROUPS:
        if (left.table, left.name) in group:
            out += [c for c in visible(who, table) if (table, c.name) in group]
    return out


# ----------------------------------------------------------------------------- query trees


@dataclass
class TableItem:
    table: str
    alias: str


@dataclass
class SubItem:
    query: Query
    alias: str


@dataclass
class CteItem:
    name: str
    alias: str


FromItem = TableItem | SubItem | CteItem


@dataclass
class Frag:
    """SQL text with embedded subqueries: parts are text or queries (rendered in parens)."""

    parts: list[str | Query]


@dataclass
class Out:
    expr: Frag
    alias: str
    type: str
    #: Columns whose (visible) values this output can hold, or None if computed.
    sources: frozenset[tuple[str, str]] | None
    #: A column to draw literals from when filtering on this output.
    col: VCol | None = None


@dataclass
class Join:
    kind: str
    item: FromItem
    on: Frag


@dataclass
class Select:
    outs: list[Out]
    base: FromItem
    joins: list[Join] = field(default_factory=list)
    where: list[Frag] = field(default_factory=list)
    group_by: list[Frag] = field(default_factory=list)
    having: list[Frag] = field(default_factory=list)
    order_by: list[str] = field(default_factory=list)
    limit: int | None = None
    distinct: bool = False


@dataclass
class SetOp:
    op: str
    left: Query
    right: Query


@dataclass
class With:
    name: str
    inner: Query
    outer: Select


Query = Select | SetOp | With

TableRef = Callable[[str], str]


def outs_of(q: Query) -> list[Out]:
    if isinstance(q, Select):
        return q.outs
    if isinstance(q, SetOp):
        left, right = outs_of(q.left), outs_of(q.right)
        return [
            Out(Frag([a.alias]), a.alias, a.type,
                None if a.sources is None or b.sources is None else a.sources | b.sources)
            for a, b in zip(left, right, strict=True)
        ]  # fmt: skip
    return q.outer.outs


def render(q: Query, tref: TableRef) -> str:
    if isinstance(q, SetOp):
        return f"{render(q.left, tref)} {q.op} {render(q.right, tref)}"
    if isinstance(q, With):
        return f"WITH {q.name} AS ({render(q.inner, tref)}) {render(q.outer, tref)}"
    sql = "SELECT " + ("DISTINCT " if q.distinct else "")
    sql += ", ".join(f"{_frag(o.expr, tref)} AS {o.alias}" for o in q.outs)
    sql += " FROM " + _item(q.base, tref)
    for j in q.joins:
        sql += f" {j.kind} {_item(j.item, tref)} ON {_frag(j.on, tref)}"
    if q.where:
        sql += " WHERE " + " AND ".join(f"({_frag(w, tref)})" for w in q.where)
    if q.group_by:
        sql += " GROUP BY " + ", ".join(_frag(g, tref) for g in q.group_by)
    if q.having:
        sql += " HAVING " + " AND ".join(f"({_frag(h, tref)})" for h in q.having)
    if q.order_by:
        sql += " ORDER BY " + ", ".join(q.order_by)
    if q.limit is not None:
        sql += f" LIMIT {q.limit}"
    return sql


def _item(item: FromItem, tref: TableRef) -> str:
    if isinstance(item, TableItem):
        return f"{tref(item.table)} AS {item.alias}"
    if isinstance(item, SubItem):
        return f"({render(item.query, tref)}) AS {item.alias}"
    return f"{item.name} AS {item.alias}"


def _frag(f: Frag, tref: TableRef) -> str:
    return "".join(p if isinstance(p, str) else f"({render(p, tref)})" for p in f.parts)


def catalog_ref(name: str) -> str:
    return name


def physical_ref(name: str) -> str:
    return SOURCES.get(name, name)


def filtered_ref(who: str) -> TableRef:
    def ref(name: str) -> str:
        district = ROW_FILTERS.get((who, name))
        if district is None:
            return SOURCES[name]
        return f"(SELECT * FROM {SOURCES[name]} WHERE district = {_lit(district)})"

    return ref


def _lit(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def walk_selects(q: Query, scope: tuple[str, ...] = ()) -> Iterator[tuple[Select, tuple[str, ...]]]:
    """Every SELECT of the tree with the catalog aliases it may reference (its own and,
    for subqueries in expressions, those of the enclosing SELECTs)."""
    if isinstance(q, SetOp):
        yield from walk_selects(q.left, scope)
        yield from walk_selects(q.right, scope)
        return
    if isinstance(q, With):
        yield from walk_selects(q.inner, ())
        yield from walk_selects(q.outer, scope)
        return
    items = [q.base, *(j.item for j in q.joins)]
    own = tuple(i.alias for i in items if isinstance(i, TableItem))
    here = scope + own
    yield q, here
    for item in items:
        if isinstance(item, SubItem):
            yield from walk_selects(item.query, ())
    frags = [o.expr for o in q.outs] + q.where + q.having + q.group_by + [j.on for j in q.joins]
    for f in frags:
        for part in f.parts:
            if not isinstance(part, str):
                yield from walk_selects(part, here)


def table_items(q: Query) -> list[TableItem]:
    found: list[TableItem] = []
    for select, _ in walk_selects(q):
        for item in [select.base, *(j.item for j in select.joins)]:
            if isinstance(item, TableItem):
                found.append(item)
    return found


# ----------------------------------------------------------------------------- the grammar


class _Gen:
    """Draws one query for one principal. ``mode="monotone"`` leaves out everything that
    can make a query return *more* when a table loses rows (aggregates, LEFT JOIN,
    NOT IN/EXISTS, EXCEPT, scalar subqueries)."""

    def __init__(self, draw: st.DrawFn, who: str, mode: Mode) -> None:
        self.draw = draw
        self.who = who
        self.mode = mode
        self.n = 0
        self.tables = accessible(who)

    def fresh(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def pick(self, options: list[Any]) -> Any:
        return self.draw(st.sampled_from(options))

    def chance(self, p: float) -> bool:
        return self.draw(st.floats(0, 1)) < p

    # -- top level

    def query(self, depth: int = 0, top: bool = True) -> Query:
        kinds = ["select", "select", "join", "setop", "cte", "derived"]
        if self.mode == "full":
            kinds += ["group", "group"]
        if depth >= 2:
            kinds = ["select", "join"] + (["group"] if self.mode == "full" else [])
        kind = self.pick(kinds)
        if kind == "setop":
            return self.setop(depth)
        if kind in ("cte", "derived"):
            return self.wrapped(kind, depth, top)
        if kind == "group":
            return self.group(depth, top)
        return self.select(depth, top, join=kind == "join")

    def scope(self, sel: Select) -> list[tuple[str, VCol]]:
        cols = []
        for item in [sel.base, *(j.item for j in sel.joins)]:
            if isinstance(item, TableItem):
                cols += [(item.alias, c) for c in visible(self.who, item.table)]
        return cols

    def select(self, depth: int, top: bool, join: bool, width: int | None = None) -> Select:
        base = TableItem(self.pick(self.tables), self.fresh("t"))
        sel = Select(outs=[], base=base)
        if join:
            self.add_join(sel, base)
        cols = self.scope(sel)
        width = width or self.draw(st.integers(1, 4))
        for i in range(width):
            sel.outs.append(self.out(cols, f"c{i}", depth))
        for _ in range(self.draw(st.integers(0, 2))):
            sel.where.append(self.predicate(cols, depth))
        sel.distinct = self.chance(0.2)
        if top:
            self.order_and_limit(sel)
        return sel

    def add_join(self, sel: Select, base: TableItem) -> None:
        kinds = ["JOIN"] + (["LEFT JOIN"] if self.mode == "full" else [])
        other = TableItem(self.pick(self.tables), self.fresh("t"))
        pairs = [
            (a, b)
            for a in visible(self.who, base.table)
            for b in partners(self.who, a, other.table)
        ]
        if not pairs:
            return
        a, b = self.pick(pairs)
        on = Frag([f"{base.alias}.{a.name} = {other.alias}.{b.name}"])
        sel.joins.append(Join(self.pick(kinds), other, on))

    def out(self, cols: list[tuple[str, VCol]], alias: str, depth: int) -> Out:
        shapes = ["col", "col", "col"]
        if self.mode == "full":
            shapes += ["coalesce", "case", "window", "extract"] + (["scalar"] if depth < 2 else [])
        shape = self.pick(shapes)
        a, c = self.pick(cols)
        ref = f"{a}.{c.name}"
        if shape == "col" or (shape == "extract" and c.type != "date"):
            return Out(Frag([ref]), alias, c.type, frozenset({(c.table, c.name)}), c)
        if shape == "extract":
            unit = self.pick(["YEAR", "MONTH", "DAY"])
            return Out(Frag([f"EXTRACT({unit} FROM {ref})"]), alias, "integer", None)
        if shape == "window":
            b, d = self.pick(cols)
            # RANK and COUNT, not ROW_NUMBER: their values do not depend on how ties are
            # broken, so every engine and every plan give the same rows.
            func = self.pick(["RANK()", "DENSE_RANK()", "COUNT(*)"])
            return Out(Frag([f"{func} OVER (PARTITION BY {ref} ORDER BY {b}.{d.name})"]),
                       alias, "integer", None)  # fmt: skip
        if shape == "coalesce":
            fallback = self.pick(domain(self.who, c))
            return Out(Frag([f"COALESCE({ref}, {_lit(fallback)})"]), alias, c.type, None)
        if shape == "case":
            cond = self.leaf(cols)
            return Out(Frag(["CASE WHEN ", *cond.parts, " THEN 1 ELSE 0 END"]), alias,
                       "integer", None)  # fmt: skip
        sub = self.count_subquery(cols, depth)
        return Out(Frag([sub]), alias, "integer", None)

    def count_subquery(self, outer: list[tuple[str, VCol]], depth: int) -> Select:
        item = TableItem(self.pick(self.tables), self.fresh("t"))
        sub = Select(outs=[Out(Frag(["COUNT(*)"]), "n", "integer", None)], base=item)
        inner = [(item.alias, c) for c in visible(self.who, item.table)]
        if self.chance(0.5):
            sub.where.append(self.leaf(inner))
        pairs = [
            (o, i) for o in outer for i in inner if i[1] in partners(self.who, o[1], item.table)
        ]
        if pairs and self.chance(0.5):
            (oa, oc), (ia, ic) = self.pick(pairs)
            sub.where.append(Frag([f"{ia}.{ic.name} = {oa}.{oc.name}"]))
        return sub

    # -- predicates

    def leaf(self, cols: list[tuple[str, VCol]]) -> Frag:
        a, c = self.pick(cols)
        ref = f"{a}.{c.name}"
        values = domain(self.who, c)
        v = self.pick(values)
        ops = ["=", "<>", "<", ">=", "is null", "is not null", "in"]
        if c.type == "text":
            ops.append("like")
        if c.type == "integer":
            ops.append("between")
        op = self.pick(ops)
        if op == "is null":
            return Frag([f"{ref} IS NULL"])
        if op == "is not null":
            return Frag([f"{ref} IS NOT NULL"])
        if op == "in":
            w = self.pick(values)
            return Frag([f"{ref} IN ({_lit(v)}, {_lit(w)})"])
        if op == "like":
            return Frag([f"{ref} LIKE {_lit(str(v)[:2] + '%')}"])
        if op == "between":
            w = self.pick(values)
            return Frag([f"{ref} BETWEEN {_lit(min(v, w))} AND {_lit(max(v, w))}"])
        return Frag([f"{ref} {op} {_lit(v)}"])

    def predicate(self, cols: list[tuple[str, VCol]], depth: int) -> Frag:
        kinds = ["leaf", "leaf", "leaf", "and", "or", "not"]
        if depth < 2:
            kinds += ["in", "exists"]
        kind = self.pick(kinds)
        if kind == "leaf":
            return self.leaf(cols)
        if kind in ("and", "or"):
            a, b = self.leaf(cols), self.leaf(cols)
            return Frag(["(", *a.parts, f") {kind.upper()} (", *b.parts, ")"])
        if kind == "not":
            return Frag(["NOT (", *self.leaf(cols).parts, ")"])
        negate = self.mode == "full" and self.chance(0.3)
        oa, oc = self.pick(cols)
        table = self.pick(self.tables)
        options = partners(self.who, oc, table)
        if not options:
            return self.leaf(cols)
        ic = self.pick(options)
        item = TableItem(table, self.fresh("t"))
        inner = [(item.alias, c) for c in visible(self.who, table)]
        if kind == "in":
            sub = Select(outs=[Out(Frag([f"{item.alias}.{ic.name}"]), "k", ic.type, None)],
                         base=item)  # fmt: skip
            if self.chance(0.6):
                sub.where.append(self.predicate(inner, depth + 1))
            # NOT IN over a NULL-able column is legitimately empty; keep it IS NOT NULL.
            sub.where.append(Frag([f"{item.alias}.{ic.name} IS NOT NULL"]))
            return Frag([f"{oa}.{oc.name} {'NOT IN' if negate else 'IN'} ", sub])
        sub = Select(outs=[Out(Frag(["1"]), "one", "integer", None)], base=item)
        sub.where.append(Frag([f"{item.alias}.{ic.name} = {oa}.{oc.name}"]))
        if self.chance(0.6):
            sub.where.append(self.predicate(inner, depth + 1))
        return Frag(["NOT EXISTS " if negate else "EXISTS ", sub])

    # -- other shapes

    def group(self, depth: int, top: bool) -> Select:
        base = TableItem(self.pick(self.tables), self.fresh("t"))
        sel = Select(outs=[], base=base)
        if self.chance(0.4):
            self.add_join(sel, base)
        cols = self.scope(sel)
        keys = self.draw(st.lists(st.sampled_from(cols), min_size=1, max_size=2, unique=True))
        for i, (a, c) in enumerate(keys):
            sel.outs.append(Out(Frag([f"{a}.{c.name}"]), f"c{i}", c.type,
                                frozenset({(c.table, c.name)}), c))  # fmt: skip
            sel.group_by.append(Frag([f"{a}.{c.name}"]))
        for j in range(self.draw(st.integers(1, 3))):
            a, c = self.pick(cols)
            ref = f"{a}.{c.name}"
            aggs = ["COUNT(*)", f"COUNT({ref})", f"COUNT(DISTINCT {ref})", "MIN", "MAX"]
            if c.type == "integer":
                aggs.append("SUM")
            agg = self.pick(aggs)
            alias = f"c{len(keys) + j}"
            if agg in ("MIN", "MAX"):
                sel.outs.append(Out(Frag([f"{agg}({ref})"]), alias, c.type,
                                    frozenset({(c.table, c.name)}), c))  # fmt: skip
            elif agg == "SUM":
                sel.outs.append(Out(Frag([f"SUM({ref})"]), alias, "integer", None))
            else:
                sel.outs.append(Out(Frag([agg]), alias, "integer", None))
        if self.chance(0.5):
            sel.where.append(self.predicate(cols, depth))
        if self.chance(0.4):
            sel.having.append(Frag([f"COUNT(*) >= {self.draw(st.integers(1, 3))}"]))
        if top:
            self.order_and_limit(sel)
        return sel

    def setop(self, depth: int) -> SetOp:
        ops = ["UNION", "UNION ALL", "INTERSECT"] + (["EXCEPT"] if self.mode == "full" else [])
        width = self.draw(st.integers(1, 3))
        left = self.select(depth + 1, False, join=self.chance(0.3), width=width)
        right = self.select(depth + 1, False, join=self.chance(0.3), width=width)
        return SetOp(self.pick(ops), left, right)

    def wrapped(self, kind: str, depth: int, top: bool) -> Select | With:
        inner = self.query(depth + 1, top=False)
        inner_outs = outs_of(inner)
        name = self.fresh("w" if kind == "cte" else "d")
        item: FromItem = CteItem(name, name) if kind == "cte" else SubItem(inner, name)
        chosen = self.draw(
            st.lists(st.sampled_from(range(len(inner_outs))), min_size=1, unique=True)
        )
        sel = Select(outs=[], base=item)
        for i, k in enumerate(chosen):
            o = inner_outs[k]
            sel.outs.append(Out(Frag([f"{name}.{o.alias}"]), f"c{i}", o.type, o.sources, o.col))
        filterable = [o for o in inner_outs if o.col is not None]
        if filterable and self.chance(0.5):
            o = self.pick(filterable)
            assert o.col is not None
            v = self.pick(domain(self.who, o.col))
            op = self.pick(["=", "<>", ">=", "IS NOT NULL"])
            cond = f"{name}.{o.alias} {op}" + ("" if op == "IS NOT NULL" else f" {_lit(v)}")
            sel.where.append(Frag([cond]))
        if top:
            self.order_and_limit(sel)
        return With(name, inner, sel) if kind == "cte" else sel

    def order_and_limit(self, sel: Select) -> None:
        aliases = [o.alias for o in sel.outs]
        if self.chance(0.4):
            # LIMIT only under an ORDER BY of every output: ties are then equal rows, so
            # which rows come back is determined.
            sel.order_by = aliases
            sel.limit = self.draw(st.integers(0, 30))
        elif self.chance(0.5):
            sel.order_by = self.draw(st.permutations(aliases))[: self.draw(st.integers(1, 2))]


@st.composite
def queries(draw: st.DrawFn, mode: Mode = "full") -> tuple[str, Query]:
    who = draw(st.sampled_from(sorted(PRINCIPALS)))
    return who, _Gen(draw, who, mode).query()


# ----------------------------------------------------------------------------- rewrite


MaskFn = Callable[[exp.Expression, MaskSpec, str], exp.Expression]


def identity_mask(ref: exp.Expression, _spec: MaskSpec, _type: str) -> exp.Expression:
    return ref.copy()


def real_mask(who: str, dialect: str) -> MaskFn:
    def mask(ref: exp.Expression, spec: MaskSpec, column_type: str) -> exp.Expression:
        return mask_expression(
            spec, ref, column_type=column_type, dialect=dialect, ctx=MASK_CONTEXTS[who]
        )

    return mask


def _schema_type(spec: MaskSpec | None, column_type: str) -> str:
    return masked_type(spec, column_type) if spec is not None else column_type


def rewrite(sql: str, who: str, dialect: str, mask: MaskFn, allowed: int = NO_CAP) -> str:
    """The planner's stages, in order, for ``who`` (see gateway/query/plan.py)."""
    snapshot = SNAPSHOTS[who]
    query = parse_sql(sql)
    check_query_is_allowed(query)
    schema = visible_schema(snapshot, CATALOG, _schema_type)
    resolved = resolve_query(query, snapshot, CATALOG, schema)
    protected = protect_tables(
        resolved.query,
        lambda name: build_derived_select(_table(name), snapshot.tables[name], mask),
        dialect=dialect,
    )
    portable = make_portable(protected, dialect)
    cap_row_limit(portable, allowed)
    return to_backend_sql(portable, dialect)


def consumer_sql(q: Query) -> str:
    return render(q, catalog_ref)


def show(who: str, q: Query) -> None:
    """Put the consumer SQL into Hypothesis' report of a falsifying example."""
    note(f"{who}: {consumer_sql(q)}")


def strip_top_limit(q: Query) -> Query:
    q = copy.deepcopy(q)
    top = q.outer if isinstance(q, With) else q
    if isinstance(top, Select):
        top.limit = None
    return q


# ----------------------------------------------------------------------------- databases


class Dbs:
    def __init__(self, demo_path: Path) -> None:
        self.demo = sqlite3.connect(f"file:{demo_path}?mode=ro", uri=True)
        for name, n, fn in sqlite_functions():
            self.demo.create_function(name, n, fn, deterministic=True)
        self.masked: dict[str, sqlite3.Connection] = {}
        for who in PRINCIPALS:
            conn = sqlite3.connect(":memory:")
            for table in accessible(who):
                cols = visible(who, table)
                decl = ", ".join(
                    f"{c.name} {'INTEGER' if c.type == 'integer' else 'TEXT'}" for c in cols
                )
                conn.execute(f"CREATE TABLE {SOURCES[table]} ({decl})")
                marks = ", ".join("?" for _ in cols)
                conn.executemany(
                    f"INSERT INTO {SOURCES[table]} VALUES ({marks})",
                    [tuple(r[c.name] for c in cols) for r in view(who, table)],
                )
            self.masked[who] = conn

    def close(self) -> None:
        self.demo.close()
        for conn in self.masked.values():
            conn.close()


def run(conn: sqlite3.Connection, sql: str) -> list[tuple[Any, ...]]:
    return conn.execute(sql).fetchall()


_STRFTIME = {"YEAR": "%Y", "MONTH": "%m", "DAY": "%d"}


def _extract_to_strftime(node: exp.Expression) -> exp.Expression:
    # SQLite has no EXTRACT; its dates are ISO-8601 text.
    if isinstance(node, exp.Extract):
        fmt = exp.Literal.string(_STRFTIME[node.this.name.upper()])
        return exp.Cast(
            this=exp.Anonymous(this="STRFTIME", expressions=[fmt, node.expression]),
            to=exp.DataType.build("INTEGER"),
        )
    return node


def as_sqlite(pg_sql: str) -> str:
    """The reference query for SQLite (sqlglot's transpiler, EXTRACT spelt out)."""
    tree = sqlglot.parse_one(pg_sql, read="postgres").transform(_extract_to_strftime)
    return tree.sql(dialect="sqlite")


def multiset(rows: list[tuple[Any, ...]]) -> Counter[tuple[Any, ...]]:
    return Counter(rows)


@pytest.fixture(scope="session")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dbs]:
    path = tmp_path_factory.mktemp("rewrite-properties") / "demo.sqlite"
    ensure_demo_database(f"sqlite:{path}", seed=SEED, people=PEOPLE_COUNT)
    handles = Dbs(path)
    yield handles
    handles.close()


FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# ----------------------------------------------------------------------------- (a)


@FAST
@given(queries())
def test_rewritten_sql_reparses_in_every_dialect(case: tuple[str, Query]) -> None:
    who, q = case
    show(who, q)
    sql = consumer_sql(q)
    for dialect in sorted(DIALECTS):
        out = rewrite(sql, who, dialect, real_mask(who, dialect))
        reparsed = sqlglot.parse_one(out, read=dialect)
        assert isinstance(reparsed, exp.Query), out
        # The reparsed statement still reads physical tables only, each inside a derived
        # table (on SQLite: inside a gateway CTE `gw_t<n>` whose body reads one source).
        gateway_ctes = {
            c.alias: c for c in reparsed.find_all(exp.CTE) if c.alias.startswith("gw_t")
        }
        for cte in gateway_ctes.values():
            assert {t.name for t in cte.this.find_all(exp.Table)} <= set(SOURCES.values()), out
        names = {t.name for t in reparsed.find_all(exp.Table)}
        allowed = set(SOURCES.values()) | {o.name for o in _cte_items(q)} | set(gateway_ctes)
        assert names <= allowed, out


@FAST
@given(queries(), st.integers(1, 50))
def test_the_cap_is_the_outermost_limit_in_every_dialect(
    case: tuple[str, Query], allowed: int
) -> None:
    """Design.md "Row limits": the gateway's LIMIT bounds the rows returned, so it is the
    LIMIT of the outermost query of what each backend runs (never moved inside by a
    dialect's transpilation), and it is at most ``allowed + 1``."""
    who, q = case
    show(who, q)
    for dialect in sorted(DIALECTS):
        out = rewrite(consumer_sql(q), who, dialect, real_mask(who, dialect), allowed)
        limit = sqlglot.parse_one(out, read=dialect).args.get("limit")
        assert isinstance(limit, exp.Limit), (dialect, out)
        assert int(limit.expression.this) <= allowed + 1, (dialect, out)


def _cte_items(q: Query) -> list[CteItem]:
    return [s.base for s, _ in walk_selects(q) if isinstance(s.base, CteItem)]


# ----------------------------------------------------------------------------- (b)


@FAST
@given(queries(mode="monotone"))
def test_identity_masks_return_a_subset_of_the_unprotected_rows(
    dbs: Dbs, case: tuple[str, Query]
) -> None:
    who, q = case
    show(who, q)
    protected = run(dbs.demo, rewrite(consumer_sql(q), who, "sqlite", identity_mask, 200))
    unprotected = run(dbs.demo, as_sqlite(render(strip_top_limit(q), physical_ref)))
    assert not multiset(protected) - multiset(unprotected)


@FAST
@given(queries())
def test_identity_masks_equal_the_query_over_filtered_tables(
    dbs: Dbs, case: tuple[str, Query]
) -> None:
    who, q = case
    show(who, q)
    protected = run(dbs.demo, rewrite(consumer_sql(q), who, "sqlite", identity_mask))
    reference = run(dbs.demo, as_sqlite(render(q, filtered_ref(who))))
    assert multiset(protected) == multiset(reference)


# ----------------------------------------------------------------------------- (c)

_ID_LIKE = re.compile(r"[0-9X]{11,}")
_ID_LENGTHS = (11, 16, 17, 18, 19)
#: Masks whose raw input is identifying (city/year/bucket generalise non-unique values;
#: those are checked by value provenance instead).
_IDENTIFYING = {"name", "id_number", "phone", "bank_card", "address", "pseudonym"}


@functools.cache
def protected_values(who: str) -> tuple[frozenset[str], frozenset[str]]:
    """(raw text values ``who`` must never receive, the identifiers among them)."""
    secret: set[str] = set()
    in_clear: set[Any] = set()
    for table in accessible(who):
        decision = SNAPSHOTS[who].tables[table]
        types = _types(table)
        for column, d in decision.columns.items():
            values = {r[column] for r in raw_rows(table)}
            if d.action is ColumnAction.ALLOW:
                in_clear |= values
            elif types[column] == "text" and (
                d.action is ColumnAction.DENY or (d.mask and d.mask.kind in _IDENTIFYING)
            ):
                secret |= {v for v in values if isinstance(v, str)}
    secret -= in_clear
    ids = frozenset(v for v in secret if _ID_LIKE.fullmatch(v))
    return frozenset(secret), ids


def _leaks(cell: str, secret: frozenset[str], ids: frozenset[str]) -> bool:
    if cell in secret:
        return True
    for run_ in _ID_LIKE.findall(cell):
        for n in _ID_LENGTHS:
            if any(run_[i : i + n] in ids for i in range(len(run_) - n + 1)):
                return True
    return False


@FAST
@given(queries())
def test_no_raw_value_and_no_filtered_row_in_masked_results(
    dbs: Dbs, case: tuple[str, Query]
) -> None:
    who, q = case
    show(who, q)
    rows = run(dbs.demo, rewrite(consumer_sql(q), who, "sqlite", real_mask(who, "sqlite")))
    secret, ids = protected_values(who)
    outs = outs_of(q)
    allowed = [
        None if o.sources is None
        else {r[c] for t, c in o.sources for r in view(who, t)} | {None}
        for o in outs
    ]  # fmt: skip
    for row in rows:
        for i, cell in enumerate(row):
            assert not (isinstance(cell, str) and _leaks(cell, secret, ids)), (cell, row)
            values = allowed[i]
            if values is not None:
                # The value is a column value of a row this principal may see, masked.
                assert cell in values, (outs[i].alias, cell)


@FAST
@given(queries())
def test_masked_results_equal_the_query_over_python_masked_tables(
    dbs: Dbs, case: tuple[str, Query]
) -> None:
    who, q = case
    show(who, q)
    protected = run(dbs.demo, rewrite(consumer_sql(q), who, "sqlite", real_mask(who, "sqlite")))
    reference = run(dbs.masked[who], as_sqlite(render(q, physical_ref)))
    assert multiset(protected) == multiset(reference)


# ----------------------------------------------------------------------------- (d), (e)

_WORD = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)


@st.composite
def unknown_names(draw: st.DrawFn) -> str:
    word = "zz" + draw(_WORD)
    datasets = sorted(CATALOG.datasets)
    return draw(
        st.sampled_from(
            [
                word,  # unqualified, not a CTE
                f"{word}.{word}",  # unknown dataset
                f"{draw(st.sampled_from(datasets))}.{word}",  # unknown table, known dataset
                f"population.{draw(st.sampled_from(['enterprises', 'grants', 'peoples']))}",
                '"Population"."people"',  # quoted: case is kept, so not the catalog name
                "population_people",  # the physical name is not a catalog name
            ]
        )
    )


@FAST
@given(queries(), unknown_names(), st.data())
def test_unknown_table_raises_unknown_dataset(
    case: tuple[str, Query], name: str, data: st.DataObject
) -> None:
    who, q = case
    show(who, q)
    q = copy.deepcopy(q)
    item = data.draw(st.sampled_from(table_items(q)))
    item.table = name
    show(who, q)
    with pytest.raises(UnknownDatasetError):
        rewrite(consumer_sql(q), who, "sqlite", real_mask(who, "sqlite"))


Clause = Literal["select", "where", "order", "group", "having", "on", "case", "window", "agg"]


def inject(sel: Select, ref: str, clause: Clause, top: bool) -> None:
    if clause == "select" or (clause == "order" and not top):
        sel.outs.append(Out(Frag([ref]), "x_injected", "text", None))
    elif clause == "where":
        sel.where.append(Frag([f"{ref} IS NOT NULL"]))
    elif clause == "order":
        sel.order_by.append(ref)
    elif clause == "group":
        sel.group_by.append(Frag([ref]))
    elif clause == "having":
        sel.having.append(Frag([f"COUNT({ref}) >= 0"]))
    elif clause == "on" and sel.joins:
        sel.joins[0].on = Frag([*sel.joins[0].on.parts, f" AND {ref} IS NOT NULL"])
    elif clause == "case":
        sel.where.append(Frag([f"CASE WHEN {ref} IS NULL THEN 1 ELSE 0 END = 0"]))
    elif clause == "window":
        sel.outs.append(
            Out(Frag([f"ROW_NUMBER() OVER (PARTITION BY {ref} ORDER BY {ref})"]), "x_rn",
                "integer", None)
        )  # fmt: skip
    else:
        sel.where.append(Frag([f"COALESCE({ref}, {ref}) IS NOT NULL"]))


@FAST
@given(queries(), st.data())
def test_denied_column_anywhere_raises_access_denied(
    case: tuple[str, Query], data: st.DataObject
) -> None:
    who, q = case
    show(who, q)
    q = copy.deepcopy(q)
    tables_by_alias = {t.alias: t.table for t in table_items(q)}
    top = q.outer if isinstance(q, With) else q
    targets = [
        (sel, alias, column)
        for sel, scope in walk_selects(q)
        for alias in scope
        for column in denied(who, tables_by_alias[alias])
    ]
    assume(targets)
    sel, alias, column = data.draw(st.sampled_from(targets))
    # Unqualified too, when no table of the query has a visible column of that name.
    visible_names = {c.name for t in tables_by_alias.values() for c in visible(who, t)}
    forms = [f"{alias}.{column}"] + ([column] if column not in visible_names else [])
    ref = data.draw(st.sampled_from(forms))
    clauses: list[Clause] = ["select", "where", "order", "group", "having", "on", "case",
                             "window", "agg"]  # fmt: skip
    clause = data.draw(st.sampled_from(clauses))
    # ORDER BY belongs to the outermost SELECT only (elsewhere the select list is used).
    inject(sel, ref, clause, top=sel is top)
    show(who, q)
    with pytest.raises(AccessDeniedError, match=rf"\.{column} is denied"):
        rewrite(consumer_sql(q), who, "sqlite", real_mask(who, "sqlite"))


@FAST
@given(queries(), st.data())
def test_not_shared_table_anywhere_raises_access_denied(
    case: tuple[str, Query], data: st.DataObject
) -> None:
    who, q = case
    show(who, q)
    q = copy.deepcopy(q)
    item = data.draw(st.sampled_from(table_items(q)))
    item.table = NOT_SHARED
    show(who, q)
    with pytest.raises(AccessDeniedError, match=re.escape(NOT_SHARED)):
        rewrite(consumer_sql(q), who, "sqlite", real_mask(who, "sqlite"))


def test_the_grammar_reaches_every_shape() -> None:
    """A cheap guard that the generator is not degenerate: over a fixed set of draws,
    every shape of the grammar occurs."""
    seen: set[str] = set()

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(queries())
    def collect(case: tuple[str, Query]) -> None:
        sql = consumer_sql(case[1]).upper()
        for word in ("JOIN", "LEFT JOIN", "GROUP BY", "HAVING", "UNION", "INTERSECT",
                     "EXCEPT", "WITH", "EXISTS", " IN (SELECT", "ORDER BY", "LIMIT",
                     "DISTINCT", "COALESCE", "CASE", "(SELECT COUNT(*)", " OVER (",
                     "EXTRACT("):  # fmt: skip
            if word in sql:
                seen.add(word)

    collect()
    assert len(seen) == 18, seen


@st.composite
def ordered_set_operations(draw: st.DrawFn) -> tuple[str, SetOp]:
    who = draw(st.sampled_from(sorted(PRINCIPALS)))
    return who, _Gen(draw, who, "full").setop(0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ordered_set_operations())
def test_set_operation_ordered_by_its_outputs(dbs: Dbs, case: tuple[str, SetOp]) -> None:
    """``<set operation> ORDER BY <output columns>`` is ordinary SQL; the rows come back
    in the order of the query over the physically filtered tables (ties are equal rows)."""
    who, q = case
    show(who, q)
    order = " ORDER BY " + ", ".join(o.alias for o in outs_of(q))
    note(f"... {order}")
    protected = run(dbs.demo, rewrite(consumer_sql(q) + order, who, "sqlite", identity_mask))
    reference = run(dbs.demo, as_sqlite(render(q, filtered_ref(who)) + order))
    assert protected == reference
