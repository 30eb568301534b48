"""Parse: consumer SQL text → exactly one read-only statement as a sqlglot AST.

Consumers write one canonical dialect (PostgreSQL flavour) whatever the backend is.
sqlglot falls back to ``exp.Command`` (with only a logged warning) for syntax it does not
understand, so the root type is checked here; everything deeper is validate.py's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from gateway.errors import SqlSyntaxError, UnsupportedStatementError
from gateway.i18n import msg

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
        raise _syntax_error(exc.errors[0] if exc.errors else {}) from None
    except TokenError:
        # sqlglot's text quotes the tokenizer's state ("Error tokenizing 'SELECT 'abc'").
        raise SqlSyntaxError(
            msg("The SQL could not be read: check that quotes and comments are closed.")
        ) from None
    if not statements:
        raise SqlSyntaxError(msg("The SQL is empty: send one SELECT statement."))
    if len(statements) > 1:
        raise UnsupportedStatementError(
            msg("Send exactly one statement; this request holds {count}.", count=len(statements))
        )
    root = statements[0]
    while isinstance(root, exp.Subquery) and not root.alias:  # "(SELECT ...)" at the top
        root = root.this
    if not isinstance(root, _QUERY_ROOTS):
        kind = root.key.upper() if not isinstance(root, exp.Command) else str(root.this).upper()
        raise UnsupportedStatementError(
            msg("Only read-only SELECT queries are accepted; got {kind}.", kind=kind)
        )
    return root


def _syntax_error(error: Mapping[str, Any]) -> SqlSyntaxError:
    """The consumer's view of a parse error: where, and the text found there. sqlglot's
    own description is never shown: it can name parser internals ("Required keyword:
    'this' missing for <class 'sqlglot.expressions.Column'>", "Expected table name but
    got <Token token_type: …>"), which tell the consumer nothing they wrote."""
    line, column = error.get("line"), error.get("col")
    near = str(error.get("highlight") or "").strip()[:40]
    description = str(error.get("description") or "")
    if description == "Expecting )":
        message = msg(
            "The SQL does not parse: a closing parenthesis is missing after {near!r} "
            "(line {line}, column {column}).",
            near=near,
            line=line,
            column=column,
        )
    elif near and line is not None:
        message = msg(
            "The SQL does not parse near {near!r} (line {line}, column {column}). Write one "
            "SELECT statement in the PostgreSQL dialect.",
            near=near,
            line=line,
            column=column,
        )
    else:
        message = msg(
            "The SQL does not parse. Write one SELECT statement in the PostgreSQL dialect."
        )
    return SqlSyntaxError(message, line=line, column=column)
