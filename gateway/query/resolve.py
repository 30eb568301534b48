"""Resolve: bind every name in the query to the catalog, as the consumer may see it.

After this step the AST is qualified (every column carries its table alias, ``*`` is
expanded) against the *visible* schema of the principal: denied columns and inaccessible
tables are simply not there, so they can't be reached by any path — ``*``, USING,
subqueries, CTEs, set operations. ``qualify`` does not reject unknown tables by itself
(research/tech-probe.md §2.3 item 7), so every table node is checked explicitly here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope, traverse_scope
from sqlglot.schema import MappingSchema

from gateway.catalog import Catalog
from gateway.domain import ColumnAction, DecisionSnapshot
from gateway.errors import (
    AccessDeniedError,
    AmbiguousTableError,
    UnknownDatasetError,
    UnsupportedStatementError,
)
from gateway.i18n import msg
from gateway.query.parse import CONSUMER_DIALECT
from gateway.query.typecheck import check_value_types
from gateway.query.validate import construct_name

__all__ = [
    "OUTPUT_NAME",
    "ResolvedQuery",
    "catalog_tables",
    "name_unaliased_outputs",
    "resolve_query",
    "visible_schema",
]

_SQL_TYPES = {
    "text": "TEXT",
    "integer": "BIGINT",
    "decimal": "DECIMAL",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "boolean": "BOOLEAN",
}


@dataclass(frozen=True, slots=True)
class ResolvedQuery:
    query: exp.Query
    #: Catalog tables referenced, ``dataset.table``, sorted.
    tables: tuple[str, ...]
    backend: str


def visible_schema(
    snapshot: DecisionSnapshot, catalog: Catalog, masked_type: Callable[..., str]
) -> MappingSchema:
    """The schema the principal may see: accessible tables, non-denied columns, with the
    types they have *after* masking. Built once per snapshot (callers cache it)."""
    mapping: dict[str, dict[str, dict[str, str]]] = {}
    for name, decision in snapshot.tables.items():
        if not decision.is_accessible():
            continue
        table = catalog.table(name)
        if table is None:
            continue
        columns: dict[str, str] = {}
        for col in table.columns.values():
            d = decision.columns.get(col.name)
            if d is None or d.action is ColumnAction.DENY:
                continue
            ctype = masked_type(d.mask, col.type) if d.mask is not None else col.type
            columns[col.name] = _SQL_TYPES.get(ctype, "TEXT")
        mapping.setdefault(table.dataset, {})[table.name] = columns
    return MappingSchema(
        cast(dict[str, object], mapping), dialect=CONSUMER_DIALECT, normalize=False
    )


def resolve_query(
    query: exp.Query,
    snapshot: DecisionSnapshot,
    catalog: Catalog,
    schema: MappingSchema,
    search_path: Sequence[str] = (),
) -> ResolvedQuery:
    """Qualify ``query`` (modified in place) against ``schema``.

    An unqualified table name that is not a CTE is looked up in the datasets of
    ``search_path`` (the system's, else the catalog's, else every dataset) and qualified
    on the AST before anything else looks at it. Raises UnknownDatasetError for names
    that are not in the catalog, AmbiguousTableError for a name several datasets of the
    search path hold, AccessDeniedError for tables or columns the policy refuses (naming
    them and the clause), and UnsupportedStatementError for what cannot be resolved safely.
    """
    query = normalize_identifiers(query, dialect=CONSUMER_DIALECT)
    cte_names = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    _check_cte_names(cte_names, catalog)
    referenced: dict[str, str] = {}  # alias or name -> dataset.table
    for table in query.find_all(exp.Table):
        if not table.db:
            if table.name in cte_names:
                continue
            _qualify_table(table, catalog, snapshot, search_path)
        qualified = f"{table.db}.{table.name}"
        _check_table_access(qualified, snapshot, catalog)
        referenced[table.alias_or_name] = qualified
    tables = tuple(sorted(set(referenced.values())))
    if not tables:
        raise UnsupportedStatementError(
            "The query reads no catalog table: name at least one table of the catalog "
            f"(see GET /v1/catalog), e.g. {_example_tables(catalog, snapshot)}."
        )
    backends = {catalog.datasets[t.split(".")[0]].backend for t in tables}
    if len(backends) > 1:
        raise UnsupportedStatementError(
            "These tables live in different databases and cannot be combined in one query: "
            + ", ".join(tables)
        )
    _check_no_denied_columns(query, snapshot)
    name_unaliased_outputs(query)
    try:
        qualified_query = qualify(
            query,
            schema=schema,
            dialect=CONSUMER_DIALECT,
            validate_qualify_columns=True,
            quote_identifiers=True,
            identify=True,
        )
    except OptimizeError as exc:
        raise UnknownDatasetError(
            f"The query does not resolve against the catalog: {_first_line(exc)}"
        ) from None
    if not isinstance(qualified_query, exp.Query):
        raise UnsupportedStatementError("Only queries are accepted.")
    _check_every_table(qualified_query, set(tables))
    _check_every_column_resolved(qualified_query)
    check_value_types(qualified_query, schema)
    return ResolvedQuery(
        query=qualified_query,
        tables=tables,
        backend=next(iter(backends)) if backends else "",
    )


#: Where a display name is kept on an unaliased output expression (qualify then aliases
#: it ``_col_<i>`` in the SQL; describe.py reports this name instead).
OUTPUT_NAME = "gw_output_name"


def name_unaliased_outputs(query: exp.Query) -> None:
    """Give each unaliased, computed output of ``query`` the name PostgreSQL would give
    it (FigureColname: a function's name — ``count``, ``sum``, ``coalesce`` —, ``case``,
    a cast's operand's name, else ``?column?``), so a result column is ``count`` on every
    backend rather than the ``_col_0`` the SQL carries."""
    root: exp.Expr = query
    while isinstance(root, exp.SetOperation):  # the first branch names a set operation
        root = root.this
    if isinstance(root, exp.Subquery):
        root = root.unnest()
    if not isinstance(root, exp.Select):
        return
    for projection in root.expressions:
        if isinstance(projection, (exp.Alias, exp.Column, exp.Star)):
            continue
        projection.meta[OUTPUT_NAME] = _figure_name(projection)


def _figure_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Column):
        return node.name
    if isinstance(node, (exp.Cast, exp.Paren)):
        return _figure_name(node.this)
    if isinstance(node, exp.Window):
        return _figure_name(node.this)
    if isinstance(node, exp.Filter):
        return _figure_name(node.this)
    if isinstance(node, exp.Case):
        return "case"
    if isinstance(node, exp.Func):
        return construct_name(node).removesuffix("()").lower()
    return "?column?"


def _qualify_table(
    table: exp.Table, catalog: Catalog, snapshot: DecisionSnapshot, search_path: Sequence[str]
) -> None:
    """Give an unqualified table node its dataset, as PostgreSQL's search_path would —
    except that a name found in two datasets is refused rather than silently taken from
    the first: the consumer must say which one it means."""
    candidates = catalog.unqualified(table.name, search_path)
    if not candidates:
        raise UnknownDatasetError(
            f"Table {table.name!r} is not a catalog table. Name tables as dataset.table, or "
            f"by their name alone when it is in your search path (see GET /v1/catalog), "
            f"e.g. {_example_tables(catalog, snapshot)}."
        )
    if len(candidates) > 1:
        names = [t.qualified_name for t in candidates]
        raise AmbiguousTableError(
            f"Table name {table.name!r} is ambiguous: it is a table of "
            f"{len(names)} datasets in your search path ({', '.join(names)}). "
            "Qualify it with its dataset.",
            extra={"candidates": names},
        )
    table.set("db", exp.to_identifier(candidates[0].dataset))


def _example_tables(catalog: Catalog, snapshot: DecisionSnapshot) -> str:
    """Names of this deployment's own tables for a hint: the caller's accessible ones
    first (never the demo's names on a deployment that does not have them)."""
    tables = catalog.tables()
    ordered = sorted(
        tables,
        key=lambda t: (
            not ((d := snapshot.table(t.qualified_name)) is not None and d.is_accessible())
        ),
    )
    examples = [t.qualified_name for t in ordered[:2]]
    if ordered:
        examples.append(ordered[0].name)
    return ", ".join(examples) if examples else "dataset.table"


def catalog_tables(query: exp.Expr) -> list[exp.Table]:
    """Every table node of a qualified query that is not a reference to a CTE."""
    cte_refs: set[int] = set()
    for scope in traverse_scope(query):
        for table in scope.tables:
            if not table.db and table.name in scope.cte_sources:
                cte_refs.add(id(table))
    return [t for t in query.find_all(exp.Table) if id(t) not in cte_refs]


def _check_cte_names(cte_names: set[str], catalog: Catalog) -> None:
    """A CTE must not take the name of a physical source table: the derived tables name
    their sources unqualified (the schema is the backend's search path), so such a CTE
    would *replace* the real table inside the protection and feed it attacker rows."""
    physical = {t.source.rsplit(".", 1)[-1].lower() for t in catalog.tables()}
    for name in cte_names:
        if name.lower() in physical or name.lower().startswith("gw_"):
            raise UnsupportedStatementError(
                f"The CTE name {name!r} is reserved; choose another name."
            )


def _check_table_access(qualified: str, snapshot: DecisionSnapshot, catalog: Catalog) -> None:
    if catalog.table(qualified) is None:
        raise UnknownDatasetError(
            msg(
                "Table {table} is not in the catalog. See GET /v1/catalog for the datasets "
                "you may query.",
                table=qualified,
            )
        )
    decision = snapshot.table(qualified)
    if decision is None:
        raise AccessDeniedError(msg("Table {table} is not shared with you.", table=qualified))
    if decision.refusal:
        raise AccessDeniedError(
            msg("Table {table} is refused: {reason}.", table=qualified, reason=decision.refusal)
        )
    if not decision.is_accessible():
        raise AccessDeniedError(
            msg(
                "Table {table} is not shared with your system for purpose {purpose!r}. "
                "Request access from the owning department.",
                table=qualified,
                purpose=snapshot.purpose,
            )
        )


def _check_no_denied_columns(query: exp.Query, snapshot: DecisionSnapshot) -> None:
    """Name a denied column precisely (and the clause it appears in) rather than letting
    qualify report it as unknown. Security does not depend on this: denied columns are
    absent from the visible schema anyway, so this is a friendly-message layer only.

    Each column is looked up as the database would: in the sources of its own SELECT
    first (a derived table's or CTE's *output* named like a denied column is that
    output, not the denied column), then in the enclosing SELECTs (correlation)."""
    try:
        root = build_scope(query)
    except OptimizeError:
        return  # qualify reports what does not resolve
    if root is None:
        return
    scopes = {id(scope.expression): scope for scope in root.traverse()}
    for column in query.find_all(exp.Column):
        scope = _scope_of(column, scopes)
        target = _denied_source(column, scope, snapshot) if scope is not None else None
        if target is None:
            continue
        name = column.name
        raise AccessDeniedError(
            msg(
                "Column {column} is denied to your system (used in {clause}). Remove it "
                "from the query; denied columns may not be used in any clause.",
                column=".".join((target, name)),
                clause=_clause(column),
            ),
            extra={"column": f"{target}.{name}", "clause": _clause(column)},
        )


def _scope_of(node: exp.Expr, scopes: dict[int, Scope]) -> Scope | None:
    parent = node.parent
    while parent is not None:
        scope = scopes.get(id(parent))
        if scope is not None:
            return scope
        parent = parent.parent
    return None


def _denied_source(column: exp.Column, scope: Scope, snapshot: DecisionSnapshot) -> str | None:
    """The catalog table whose *denied* column ``column`` names, or None when it names
    something else (a visible column, a derived table's output, an output alias) or
    nothing the database would find (qualify reports that)."""
    name = column.name
    current: Scope | None = scope
    while current is not None:
        sources = {alias: source for alias, (_node, source) in current.selected_sources.items()}
        if column.table:
            if column.table in sources:
                state, table = _column_state(sources[column.table], name, snapshot)
                return table if state == "denied" else None
        else:
            if current is scope and _is_output_alias(column, current):
                return None
            states = [_column_state(source, name, snapshot) for source in sources.values()]
            if any(state == "visible" for state, _ in states):
                return None
            denied = [table for state, table in states if state == "denied"]
            if denied:
                return denied[0]
        current = current.parent
    return None


def _column_state(
    source: exp.Table | Scope, name: str, snapshot: DecisionSnapshot
) -> tuple[str | None, str | None]:
    """("visible" | "denied" | None, catalog table) for column ``name`` of ``source``."""
    if isinstance(source, Scope):
        expression = source.expression
        alias = expression.parent.args.get("alias") if expression.parent else None
        if isinstance(alias, exp.TableAlias) and alias.columns:
            names = [c.name for c in alias.columns]
        else:
            names = expression.named_selects if isinstance(expression, exp.Query) else []
        return ("visible" if name in names else None), None
    if not source.db:
        return None, None
    qualified = f"{source.db}.{source.name}"
    decision = snapshot.table(qualified)
    d = decision.columns.get(name) if decision is not None else None
    if d is None:
        return None, None
    return ("denied" if d.action is ColumnAction.DENY else "visible"), qualified


def _is_output_alias(column: exp.Column, scope: Scope) -> bool:
    """``ORDER BY x`` where ``x`` is an alias of the select list (``grant_id AS x``)."""
    select = scope.expression
    if not isinstance(select, exp.Select) or any(
        column is c for p in select.expressions for c in p.find_all(exp.Column)
    ):
        return False
    return any(isinstance(p, exp.Alias) and p.alias == column.name for p in select.expressions)


def _check_every_table(query: exp.Query, allowed: set[str]) -> None:
    # Default deny over every table node left after qualification (defence in depth).
    for table in catalog_tables(query):
        if f"{table.db}.{table.name}" not in allowed:
            raise UnknownDatasetError(f"Table {table.sql()} is not a catalog table.")


def _check_every_column_resolved(query: exp.Query) -> None:
    """After qualify every column names its source; an unqualified column is only legal
    as a reference to an output alias (ORDER BY / GROUP BY / HAVING alias)."""
    for whole_row in query.find_all(exp.TableColumn):
        raise UnsupportedStatementError(
            f"{whole_row.sql(dialect=CONSUMER_DIALECT)} is a whole-row reference; whole-row "
            "references are not supported — name the columns."
        )
    for column in query.find_all(exp.Column):
        if column.table:
            continue
        order = column.find_ancestor(exp.Order)
        if (
            order is not None
            and isinstance(order.parent, exp.SetOperation)
            and column.name in order.parent.named_selects
        ):
            continue  # ORDER BY an output column of UNION / INTERSECT / EXCEPT
        select = column.find_ancestor(exp.Select)
        in_projection = select is not None and any(
            column is c for p in select.expressions for c in p.find_all(exp.Column)
        )
        if select is None or in_projection or column.name not in select.named_selects:
            raise UnsupportedStatementError(
                f"{column.sql(dialect=CONSUMER_DIALECT)} does not name a column of a table in "
                "the query (whole-row references are not supported)."
            )


def _clause(node: exp.Expr) -> str:
    names = {
        exp.Where: "WHERE",
        exp.Join: "JOIN",
        exp.Group: "GROUP BY",
        exp.Having: "HAVING",
        exp.Order: "ORDER BY",
        exp.Window: "a window",
        exp.Subquery: "a subquery",
        exp.CTE: "a CTE",
    }
    parent = node.parent
    while parent is not None:
        for kind, label in names.items():
            if isinstance(parent, kind):
                return label
        if isinstance(parent, exp.Select):
            return "the select list"
        parent = parent.parent
    return "the query"


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
