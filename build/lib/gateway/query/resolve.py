"""Resolve: bind every name in the query to the catalog, as the consumer may see it.

After this step the AST is qualified (every column carries its table alias, ``*`` is
expanded) against the *visible* schema of the principal: denied columns and inaccessible
tables are simply not there, so they can't be reached by any path — ``*``, USING,
subqueries, CTEs, set operations. ``qualify`` does not reject unknown tables by itself
(research/tech-probe.md §2.3 item 7), so every table node is checked explicitly here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import traverse_scope
from sqlglot.schema import MappingSchema

from gateway.catalog import Catalog
from gateway.domain import ColumnAction, DecisionSnapshot
from gateway.errors import AccessDeniedError, UnknownDatasetError, UnsupportedStatementError
from gateway.query.parse import CONSUMER_DIALECT

__all__ = ["ResolvedQuery", "catalog_tables", "resolve_query", "visible_schema"]

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
    query: exp.Query, snapshot: DecisionSnapshot, catalog: Catalog, schema: MappingSchema
) -> ResolvedQuery:
    """Qualify ``query`` (modified in place) against ``schema``.

    Raises UnknownDatasetError for names that are not in the catalog, AccessDeniedError
    for tables or columns the policy refuses (naming them and the clause), and
    UnsupportedStatementError for what cannot be resolved safely.
    """
    query = normalize_identifiers(query, dialect=CONSUMER_DIALECT)
    cte_names = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    _check_cte_names(cte_names, catalog)
    referenced: dict[str, str] = {}  # alias or name -> dataset.table
    for table in query.find_all(exp.Table):
        if not table.db:
            if table.name in cte_names:
                continue
            raise UnknownDatasetError(
                f"Table {table.name!r} is not a catalog table. Name tables as dataset.table "
                "(see GET /v1/catalog), e.g. population.people."
            )
        qualified = f"{table.db}.{table.name}"
        _check_table_access(qualified, snapshot, catalog)
        referenced[table.alias_or_name] = qualified
    tables = tuple(sorted(set(referenced.values())))
    if not tables:
        raise UnsupportedStatementError(
            "The query reads no catalog table: name at least one dataset.table "
            "(see GET /v1/catalog)."
        )
    backends = {catalog.datasets[t.split(".")[0]].backend for t in tables}
    if len(backends) > 1:
        raise UnsupportedStatementError(
            "These tables live in different databases and cannot be combined in one query: "
            + ", ".join(tables)
        )
    _check_no_denied_columns(query, referenced, snapshot)
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
    return ResolvedQuery(
        query=qualified_query,
        tables=tables,
        backend=next(iter(backends)) if backends else "",
    )


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
            f"Table {qualified} is not in the catalog. See GET /v1/catalog for the datasets "
            "you may query."
        )
    decision = snapshot.table(qualified)
    if decision is None:
        raise AccessDeniedError(f"Table {qualified} is not shared with you.")
    if decision.refusal:
        raise AccessDeniedError(f"Table {qualified} is refused: {decision.refusal}.")
    if not decision.is_accessible():
        raise AccessDeniedError(
            f"Table {qualified} is not shared with your system for purpose "
            f"{snapshot.purpose!r}. Request access from the owning department."
        )


def _check_no_denied_columns(
    query: exp.Query, referenced: dict[str, str], snapshot: DecisionSnapshot
) -> None:
    """Name a denied column precisely (and the clause it appears in) rather than letting
    qualify report it as unknown. Security does not depend on this: denied columns are
    absent from the visible schema anyway."""
    denied: dict[str, list[str]] = {}
    visible: set[str] = set()
    for qualified in set(referenced.values()):
        decision = snapshot.table(qualified)
        if decision is None:
            continue
        for col, d in decision.columns.items():
            if d.action is ColumnAction.DENY:
                denied.setdefault(col, []).append(qualified)
            else:
                visible.add(col)
    for column in query.find_all(exp.Column):
        name = column.name
        if name not in denied:
            continue
        owner = referenced.get(column.table) if column.table else None
        if owner is not None and owner in denied[name]:
            target = owner
        elif not column.table and name not in visible and not _is_output_alias(column):
            target = denied[name][0]
        else:
            continue
        raise AccessDeniedError(
            f"Column {target}.{name} is denied to your system (used in {_clause(column)}). "
            "Remove it from the query; denied columns may not be used in any clause.",
            extra={"column": f"{target}.{name}", "clause": _clause(column)},
        )


def _is_output_alias(column: exp.Column) -> bool:
    """``ORDER BY x`` where ``x`` is an alias of the select list (``grant_id AS x``)."""
    select = column.find_ancestor(exp.Select)
    if select is None or any(
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
