"""Describe the result columns: name, type, and which masks shaped each one.

Computed on the qualified query *before* protection, by following each output column
back through subqueries, CTEs and set operations to the catalog columns it derives
from. Informational only — protection never depends on it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.scope import Scope, build_scope
from sqlglot.schema import MappingSchema

from gateway.catalog import Catalog
from gateway.domain import ColumnAction, DecisionSnapshot, MaskSpec, ResultColumn
from gateway.query.resolve import OUTPUT_NAME

__all__ = ["describe_columns"]

_TYPE_NAMES = {
    exp.DataType.Type.TEXT: "text",
    exp.DataType.Type.VARCHAR: "text",
    exp.DataType.Type.CHAR: "text",
    exp.DataType.Type.BIGINT: "integer",
    exp.DataType.Type.INT: "integer",
    exp.DataType.Type.SMALLINT: "integer",
    exp.DataType.Type.TINYINT: "integer",
    exp.DataType.Type.DECIMAL: "decimal",
    exp.DataType.Type.DOUBLE: "decimal",
    exp.DataType.Type.FLOAT: "decimal",
    exp.DataType.Type.DATE: "date",
    exp.DataType.Type.TIMESTAMP: "timestamp",
    exp.DataType.Type.BOOLEAN: "boolean",
}


def describe_columns(
    query: exp.Query,
    snapshot: DecisionSnapshot,
    catalog: Catalog,
    schema: MappingSchema,
) -> tuple[ResultColumn, ...]:
    annotated = annotate_types(query.copy(), schema=schema)
    root = build_scope(query)
    names = _display_names(query)
    types = [_type_name(p) for p in _projections(annotated)]
    masks_per_column: list[set[str]] = [set() for _ in names]
    if root is not None:
        for i in range(len(names)):
            masks_per_column[i] = _masks_of_output(root, i, snapshot, _lookup_mask(snapshot))
    return tuple(
        ResultColumn(
            name=name,
            type=types[i] if i < len(types) else "unknown",
            masks=tuple(sorted(masks_per_column[i])),
        )
        for i, name in enumerate(names)
    )


def _display_names(query: exp.Query) -> list[str]:
    """Output names as the consumer sees them: an unaliased computed output by the name
    resolve.py figured for it (``count``), not the ``_col_0`` alias of the SQL."""
    names = list(query.named_selects)
    for i, projection in enumerate(_projections(query)):
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        figured = inner.meta.get(OUTPUT_NAME) if inner.meta else None
        if i < len(names) and isinstance(figured, str):
            names[i] = figured
    return names


def _lookup_mask(snapshot: DecisionSnapshot) -> Callable[[str, str], MaskSpec | None]:
    def lookup(table: str, column: str) -> MaskSpec | None:
        decision = snapshot.table(table)
        d = decision.columns.get(column) if decision else None
        return d.mask if d is not None and d.action is ColumnAction.MASK else None

    return lookup


def _projections(query: exp.Expr) -> list[exp.Expr]:
    while isinstance(query, exp.SetOperation):
        query = query.this
    return list(query.expressions) if isinstance(query, exp.Select) else []


def _type_name(node: exp.Expr) -> str:
    if isinstance(node.unalias(), exp.TimestampTrunc):
        return "timestamp"  # rewrite/dates.py: a timestamp on every backend
    dtype = node.type
    if dtype is None:
        return "unknown"
    return _TYPE_NAMES.get(dtype.this, "unknown")


def _masks_of_output(
    scope: Scope,
    index: int,
    snapshot: DecisionSnapshot,
    lookup: Callable[[str, str], MaskSpec | None],
    depth: int = 0,
) -> set[str]:
    if depth > 32:
        return set()
    if isinstance(scope.expression, exp.SetOperation):
        found: set[str] = set()
        for branch in scope.set_operation_scopes:
            found |= _masks_of_output(branch, index, snapshot, lookup, depth + 1)
        return found
    projections = _projections(scope.expression)
    if index >= len(projections):
        return set()
    return _masks_in(projections[index], scope, snapshot, lookup, depth)


def _masks_in(
    node: exp.Expr,
    scope: Scope,
    snapshot: DecisionSnapshot,
    lookup: Callable[[str, str], MaskSpec | None],
    depth: int,
) -> set[str]:
    found: set[str] = set()
    inner_scopes = {id(s.expression): s for s in scope.subquery_scopes}
    for column in node.find_all(exp.Column):
        owner = column.find_ancestor(exp.Select)
        col_scope = inner_scopes.get(id(owner), scope) if owner is not None else scope
        source = col_scope.sources.get(column.table)
        if isinstance(source, exp.Table):
            spec = lookup(f"{source.db}.{source.name}", column.name)
            if spec is not None:
                found.add(str(spec))
        elif isinstance(source, Scope):
            expression = source.expression
            names = expression.named_selects if isinstance(expression, exp.Query) else []
            if column.name in names:
                found |= _masks_of_output(
                    source, names.index(column.name), snapshot, lookup, depth + 1
                )
    return found
