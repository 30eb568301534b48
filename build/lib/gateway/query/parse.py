"""Parse: consumer SQL text → exactly one read-only statement as a sqlglot AST.

Consumers write one canonical dialect (PostgreSQL flavour) whatever the backend is.
sqlglot falls back to ``exp.Command`` (with only a logged warning) for syntax it does not
understand, so the root type is checked here; everything deeper is validate.py's job.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from gateway.errors import SqlSyntaxError, UnsupportedStatementError

__all__ = ["CONSUMER_DIALECT", "parse_sql"]

CONSUMER_DIALECT = "postgres"

_QUERY_ROOTS = (exp.Select, exp.SetOperation)


def parse_sql(sql: str) -> exp.Query:
    """Parse ``sql``; guarantees a single SELECT or set operation.

    Raises SqlSyntaxError (with line/column) when the text does not parse, and
    UnsupportedStatementError for more than one statement or anything but a query.
    """
    try:
        statements = [s for s in sqlglot.parse(sql, read=CONSUMER_DIALECT) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        raise SqlSyntaxError(
            f"The SQL does not parse: {first.get('description') or 'syntax error'}. "
            "Write one SELECT statement in the PostgreSQL dialect.",
            line=first.get("line"),
            column=first.get("col"),
        ) from None
    except TokenError as exc:
        raise SqlSyntaxError(
            f"The SQL does not parse: {exc}. Check quotes and comments are closed."
        ) from None
    if not statements:
        raise SqlSyntaxError("The SQL is empty: send one SELECT statement.")
    if len(statements) > 1:
        raise UnsupportedStatementError(
            f"Send exactly one statement; this request holds {len(statements)}."
        )
    root = statements[0]
    while isinstance(root, exp.Subquery) and not root.alias:  # "(SELECT ...)" at the top
        root = root.this
    if not isinstance(root, _QUERY_ROOTS):
        kind = root.key.upper() if not isinstance(root, exp.Command) else str(root.this).upper()
        raise UnsupportedStatementError(f"Only read-only SELECT queries are accepted; got {kind}.")
    return root
