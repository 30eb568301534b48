"""Row-filter templates: ``district = {principal.district}``.

A template is parsed once at load into a sqlglot AST in the canonical (PostgreSQL)
dialect; ``{principal.<attr>}`` becomes a placeholder. Binding replaces placeholders with
*literals* built by sqlglot (never string formatting), so an attribute value can't
inject SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from gateway.catalog import Table
from gateway.errors import ConfigurationError

__all__ = ["RowFilterTemplate", "parse_row_filter"]

_PLACEHOLDER = re.compile(r"\{principal\.([a-z_][a-z0-9_]*)\}")
_PREFIX = "gw_principal_attr__"


@dataclass(frozen=True, slots=True)
class RowFilterTemplate:
    text: str
    expression: exp.Expr
    attributes: frozenset[str]

    def bind(self, values: Mapping[str, str]) -> str:
        """Bound filter as canonical SQL. Raises KeyError(attr) if an attribute is missing."""
        missing = sorted(self.attributes - values.keys())
        if missing:
            raise KeyError(missing[0])

        def replace(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Column) and node.name.startswith(_PREFIX) and not node.table:
                return exp.Literal.string(values[node.name[len(_PREFIX) :]])
            return node

        return self.expression.copy().transform(replace).sql(dialect="postgres", comments=False)


def parse_row_filter(text: str, table: Table) -> RowFilterTemplate:
    """Parse and validate a template against ``table``: it must be one boolean
    expression over the table's catalog columns and principal attributes, without
    subqueries. Raises ConfigurationError naming the problem."""
    where = f"row filter {text!r} on {table.qualified_name}"
    attributes = frozenset(_PLACEHOLDER.findall(text))
    try:
        expression = sqlglot.parse_one(
            _PLACEHOLDER.sub(lambda m: _PREFIX + m.group(1), text), read="postgres"
        )
    except ParseError as exc:
        raise ConfigurationError(
            f"{where}: does not parse: {exc.errors[0]['description']}"
        ) from exc
    if "{" in _PLACEHOLDER.sub("", text):
        raise ConfigurationError(
            f"{where}: only {{principal.<attribute>}} placeholders are allowed"
        )
    if isinstance(expression, exp.Query) or expression.find(exp.Query, exp.Subquery):
        raise ConfigurationError(f"{where}: subqueries are not allowed in row filters")
    for column in expression.find_all(exp.Column):
        if column.name.startswith(_PREFIX):
            continue
        if column.table or table.column(column.name) is None:
            raise ConfigurationError(f"{where}: {column.sql()} is not a column of the table")
    return RowFilterTemplate(text=text, expression=expression, attributes=attributes)
