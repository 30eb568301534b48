"""Transpile: the protected query, written in the consumer dialect, to the backend's.

sqlglot does most of it; the few constructs it emits wrongly for a target are adapted
here first (measured on the real engines, research/tech-probe.md §2.4), and anything it
cannot express raises instead of producing SQL with another meaning.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from gateway.errors import UnsupportedStatementError

__all__ = ["to_backend_sql"]

_SQLITE_EXTRACT = {"YEAR": "%Y", "MONTH": "%m", "DAY": "%d"}


def to_backend_sql(query: exp.Query, dialect: str) -> str:
    """Generate ``query`` for ``dialect`` without comments (consumer comments and hints
    are never forwarded). Raises UnsupportedStatementError when the target cannot
    express the query."""
    if dialect == "sqlite":
        transformed = query.transform(_sqlite_extract, copy=False)
        if not isinstance(transformed, exp.Query):
            raise UnsupportedStatementError("Only queries are accepted.")
        query = transformed
    try:
        return query.sql(dialect=dialect, comments=False, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        raise UnsupportedStatementError(
            f"The query uses a construct the dataset's database ({dialect}) cannot run: "
            f"{str(exc).splitlines()[0]}"
        ) from None


def _sqlite_extract(node: exp.Expr) -> exp.Expr:
    # SQLite has no EXTRACT; dates are stored as ISO text there.
    if isinstance(node, exp.Extract):
        fmt = _SQLITE_EXTRACT[node.this.name.upper()]
        return exp.Cast(
            this=exp.Anonymous(
                this="STRFTIME", expressions=[exp.Literal.string(fmt), node.expression]
            ),
            to=exp.DataType.build("INTEGER"),
        )
    return node
