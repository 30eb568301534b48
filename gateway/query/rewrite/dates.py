"""Date functions with PostgreSQL's meaning on every backend: ``DATE_TRUNC`` and ``EXTRACT``.

``DATE_TRUNC(unit, x)`` gives the *timestamp* (without time zone) at the start of the
unit: PostgreSQL's value, without the session time zone its ``date`` overload adds.
Weeks start on Monday (ISO 8601, as PostgreSQL's). ``EXTRACT(field FROM x)`` gives an
integer; ``DOW`` counts from Sunday = 0, ``DOY`` from 1 January = 1, as PostgreSQL does.
Units and fields are the ones validate.py allows; each target's form is a template in the
target's own dialect, whose placeholder ``gw_x`` is replaced by the argument (measured
against PostgreSQL on all four engines in tests/e2e/test_analyst_sql.py).
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from gateway.errors import UnsupportedStatementError

__all__ = ["transpile_dates"]

_PLACEHOLDER = "gw_x"

#: dialect -> unit -> template of DATE_TRUNC (``gw_x`` is the argument).
_TRUNC: dict[str, dict[str, str]] = {
    "sqlite": {
        "YEAR": "DATETIME(gw_x, 'start of year')",
        "QUARTER": "DATETIME(gw_x, 'start of year', "
        "'+' || ((CAST(STRFTIME('%m', gw_x) AS INTEGER) - 1) / 3 * 3) || ' months')",
        "MONTH": "DATETIME(gw_x, 'start of month')",
        "WEEK": "DATETIME(gw_x, 'start of day', "
        "'-' || ((CAST(STRFTIME('%w', gw_x) AS INTEGER) + 6) % 7) || ' days')",
        "DAY": "DATETIME(gw_x, 'start of day')",
        "HOUR": "STRFTIME('%Y-%m-%d %H:00:00', gw_x)",
        "MINUTE": "STRFTIME('%Y-%m-%d %H:%M:00', gw_x)",
    },
    "mysql": {
        "YEAR": "CAST(DATE_FORMAT(gw_x, '%Y-01-01') AS DATETIME)",
        "QUARTER": "CAST(CONCAT(YEAR(gw_x), '-', QUARTER(gw_x) * 3 - 2, '-01') AS DATETIME)",
        "MONTH": "CAST(DATE_FORMAT(gw_x, '%Y-%m-01') AS DATETIME)",
        "WEEK": "CAST(DATE_SUB(DATE(gw_x), INTERVAL WEEKDAY(gw_x) DAY) AS DATETIME)",
        "DAY": "CAST(DATE(gw_x) AS DATETIME)",
        "HOUR": "CAST(DATE_FORMAT(gw_x, '%Y-%m-%d %H:00:00') AS DATETIME)",
        "MINUTE": "CAST(DATE_FORMAT(gw_x, '%Y-%m-%d %H:%i:00') AS DATETIME)",
    },
}

#: dialect -> field -> template of EXTRACT, where the target's own EXTRACT differs.
_EXTRACT: dict[str, dict[str, str]] = {
    "sqlite": {
        "YEAR": "CAST(STRFTIME('%Y', gw_x) AS INTEGER)",
        "QUARTER": "(CAST(STRFTIME('%m', gw_x) AS INTEGER) + 2) / 3",
        "MONTH": "CAST(STRFTIME('%m', gw_x) AS INTEGER)",
        "DAY": "CAST(STRFTIME('%d', gw_x) AS INTEGER)",
        "DOW": "CAST(STRFTIME('%w', gw_x) AS INTEGER)",
        "DOY": "CAST(STRFTIME('%j', gw_x) AS INTEGER)",
        "HOUR": "CAST(STRFTIME('%H', gw_x) AS INTEGER)",
        "MINUTE": "CAST(STRFTIME('%M', gw_x) AS INTEGER)",
    },
    "mysql": {
        "DOW": "DAYOFWEEK(gw_x) - 1",
        "DOY": "DAYOFYEAR(gw_x)",
    },
}


def transpile_dates(query: exp.Query, dialect: str) -> exp.Query:
    """``query`` (modified in place) with DATE_TRUNC and EXTRACT in ``dialect``'s form."""
    transformed = query.transform(lambda node: _date_node(node, dialect), copy=False)
    if not isinstance(transformed, exp.Query):  # a transform of the root never happens
        raise UnsupportedStatementError("Only queries are accepted.")
    return transformed


def _date_node(node: exp.Expr, dialect: str) -> exp.Expr:
    if isinstance(node, exp.TimestampTrunc):
        unit = node.args["unit"].name.upper()
        argument = node.this
        template = _TRUNC.get(dialect, {}).get(unit)
        if template is None:  # PostgreSQL, DuckDB: their own, over a timestamp
            return exp.TimestampTrunc(
                this=exp.cast(argument, exp.DataType.Type.TIMESTAMP),
                unit=exp.Literal.string(unit),
            )
        return _fill(template, dialect, argument)
    if isinstance(node, exp.Extract):
        field = node.this.name.upper()
        template = _EXTRACT.get(dialect, {}).get(field)
        if template is not None:
            return exp.paren(_fill(template, dialect, node.expression), copy=False)
    return node


def _fill(template: str, dialect: str, argument: exp.Expr) -> exp.Expr:
    tree = sqlglot.parse_one(template, read=dialect)
    for column in list(tree.find_all(exp.Column)):
        if column.name == _PLACEHOLDER:
            column.replace(argument.copy())
    return tree
