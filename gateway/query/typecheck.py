"""Type checks a backend would make differently: refused before execution with a 422.

A masked column holds its masked value, with the masked type (``year`` turns a date
into an integer, ``bucket`` an integer into text). Where the consumer then asks for a
date function of a non-date or compares text with a number, PostgreSQL and DuckDB fail
the statement while SQLite and MariaDB coerce and answer something else (SQLite reads an
integer as a Julian day). Checked here on the types of the visible schema, so every
backend gives the same answer: a :class:`~gateway.errors.TypeMismatchError` saying why.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.schema import MappingSchema

from gateway.errors import TypeMismatchError
from gateway.i18n import msg
from gateway.query.parse import CONSUMER_DIALECT

__all__ = ["check_value_types"]

_T = exp.DataType.Type
_DATES = frozenset({_T.DATE, _T.TIMESTAMP, _T.DATETIME, _T.TIMESTAMPTZ})
_TEXT = frozenset({_T.TEXT, _T.VARCHAR, _T.CHAR})
_NUMBERS = frozenset({_T.INT, _T.BIGINT, _T.SMALLINT, _T.TINYINT, _T.DECIMAL, _T.DOUBLE, _T.FLOAT})
_COMPARISONS = (exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE)


def check_value_types(query: exp.Query, schema: MappingSchema) -> None:
    """Raise TypeMismatchError for a date function of a non-date value, or a comparison
    of text with a number, in the qualified ``query``."""
    annotated = annotate_types(query.copy(), schema=schema)
    for node in annotated.walk():
        if isinstance(node, (exp.Extract, exp.TimestampTrunc)):
            value = node.expression if isinstance(node, exp.Extract) else node.this
            if _kind(value) not in (None, "date"):
                raise TypeMismatchError(
                    msg(
                        "{function} needs a date or a timestamp, and {value} is not one here "
                        "(a masked column holds its masked value: see GET /v1/catalog).",
                        function="EXTRACT" if isinstance(node, exp.Extract) else "DATE_TRUNC",
                        value=_text(value),
                    )
                )
        elif isinstance(node, _COMPARISONS):
            _check_comparison(node, node.this, node.expression)
        elif isinstance(node, exp.Between):
            for bound in (node.args.get("low"), node.args.get("high")):
                if bound is not None:
                    _check_comparison(node, node.this, bound)
        elif isinstance(node, exp.In) and not node.args.get("query"):
            for item in node.expressions:
                _check_comparison(node, node.this, item)


def _check_comparison(node: exp.Expr, left: exp.Expr, right: exp.Expr) -> None:
    kinds = {_kind(left), _kind(right)}
    if kinds == {"text", "number"}:
        text_side = left if _kind(left) == "text" else right
        raise TypeMismatchError(
            msg(
                "{value} is text here and cannot be compared with a number (a masked column "
                "holds its masked value: see GET /v1/catalog); compare it with text, e.g. "
                "'500-999'.",
                value=_text(text_side),
            ),
            extra={"clause": _text(node)},
        )


def _kind(node: exp.Expr) -> str | None:
    """ "date", "text", "number", another type's name, or None when unknown (NULL, a
    parameter-free literal the backend converts, anything not annotated)."""
    if isinstance(node, exp.Literal) and node.is_string:
        return None  # PostgreSQL gives an unknown-typed literal the other side's type
    if isinstance(node, exp.Null):
        return None
    dtype = node.type
    if dtype is None:
        return None
    if dtype.this in _DATES:
        return "date"
    if dtype.this in _TEXT:
        return "text"
    if dtype.this in _NUMBERS:
        return "number"
    return None


def _text(node: exp.Expr) -> str:
    if isinstance(node, exp.Column):
        return node.name  # as the consumer wrote it, not the qualified form
    text = " ".join(node.sql(dialect=CONSUMER_DIALECT).split())
    return text if len(text) <= 60 else text[:59] + "…"
