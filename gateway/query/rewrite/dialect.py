"""Transpile: the protected query, written in the consumer dialect, to the backend's.

sqlglot does most of it; the few constructs it emits wrongly for a target are adapted
here first (measured on the real engines, research/tech-probe.md §2.4), and anything it
cannot express raises instead of producing SQL with another meaning.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from gateway.errors import UnsupportedStatementError
from gateway.query.rewrite.dates import transpile_dates

__all__ = ["to_backend_sql"]


def to_backend_sql(query: exp.Query, dialect: str) -> str:
    """Generate ``query`` for ``dialect`` without comments (consumer comments and hints
    are never forwarded). Raises UnsupportedStatementError when the target cannot
    express the query."""
    query = transpile_dates(query, dialect)
    try:
        return query.sql(dialect=dialect, comments=False, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as exc:
        # A consumer never learns which engine is behind the gateway: the engine and
        # sqlglot's wording (which may name it) go to the audit record only.
        raise UnsupportedStatementError(
            "The query uses a construct that cannot be run on the database of this dataset "
            "(for example INTERSECT ALL, EXCEPT ALL or a column list on a derived table's "
            "alias); write it with the plain forms.",
            internal_detail=f"{dialect}: {str(exc).splitlines()[0]}",
        ) from None
