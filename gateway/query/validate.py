"""Validate: an allow-list over every node of the parsed query.

Nothing is denied by name: a node type, function or cast type that is not listed here is
refused. This is what blocks data-modifying CTEs hiding under a SELECT root, file and
sleep functions, system information functions, locks, ``SELECT INTO``, parameters and
non-literal limits (research/tech-probe.md §2.3). Recursive CTEs are accepted and bounded
by rewrite/recursion.py.
"""

from __future__ import annotations

from sqlglot import exp

from gateway.errors import UnsupportedStatementError
from gateway.i18n import Message, msg

__all__ = ["TRUNC_UNITS", "check_query_is_allowed", "construct_name"]

#: Structural nodes a read-only query may contain.
_STRUCTURE: tuple[type[exp.Expr], ...] = (
    exp.Select,
    exp.Union,
    exp.Intersect,
    exp.Except,
    exp.Subquery,
    exp.With,
    exp.CTE,
    exp.From,
    exp.Join,
    exp.Where,
    exp.Group,
    exp.Having,
    exp.Order,
    exp.Ordered,
    exp.Limit,
    exp.Offset,
    exp.Fetch,
    exp.LimitOptions,
    exp.Distinct,
    exp.Window,
    exp.WindowSpec,
    exp.Lateral,
    exp.Table,
    exp.TableAlias,
    exp.Alias,
    exp.Column,
    exp.Identifier,
    exp.Star,
    exp.Literal,
    exp.Null,
    exp.Boolean,
    exp.Paren,
    exp.Tuple,
    exp.Values,
    exp.DataType,
    exp.DataTypeParam,
    exp.Var,
    exp.Filter,
)

#: Operators and predicates. (AND/OR/EXISTS are exp.Func subclasses in sqlglot.)
_OPERATORS: tuple[type[exp.Expr], ...] = (
    exp.And,
    exp.Or,
    exp.Not,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.Exists,
    exp.Any,
    exp.All,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
    exp.Neg,
    exp.DPipe,
    exp.Case,
    exp.If,
    exp.Cast,
)

#: Functions, by sqlglot class. Anything else — including every exp.Anonymous (a name
#: sqlglot does not know) — is refused.
_FUNCTIONS: tuple[type[exp.Func], ...] = (
    exp.Count,
    exp.Sum,
    exp.Avg,
    exp.Min,
    exp.Max,
    exp.Coalesce,
    exp.Nullif,
    exp.Greatest,
    exp.Least,
    exp.Abs,
    exp.Round,
    exp.Floor,
    exp.Ceil,
    exp.Lower,
    exp.Upper,
    exp.Length,
    exp.Substring,
    exp.Trim,
    exp.Replace,
    exp.StrPosition,
    exp.Extract,
    exp.CurrentDate,
    exp.RowNumber,
    exp.Rank,
    exp.DenseRank,
    exp.Lag,
    exp.Lead,
    exp.FirstValue,
    exp.LastValue,
    exp.NthValue,
    exp.Ntile,
    exp.PercentRank,
    exp.CumeDist,
    exp.GroupConcat,
    exp.TimestampTrunc,
)

_ALLOWED = frozenset(_STRUCTURE + _OPERATORS + _FUNCTIONS)

#: Cast targets. No OID/regclass types (they read the system catalog), no bytea.
_CAST_TYPES = frozenset(
    {
        exp.DataType.Type.TEXT,
        exp.DataType.Type.VARCHAR,
        exp.DataType.Type.CHAR,
        exp.DataType.Type.INT,
        exp.DataType.Type.BIGINT,
        exp.DataType.Type.SMALLINT,
        exp.DataType.Type.DECIMAL,
        exp.DataType.Type.DOUBLE,
        exp.DataType.Type.FLOAT,
        exp.DataType.Type.DATE,
        exp.DataType.Type.TIMESTAMP,
        exp.DataType.Type.BOOLEAN,
    }
)

#: EXTRACT fields every backend computes with PostgreSQL's meaning (rewrite/dates.py).
_EXTRACT_UNITS = frozenset({"YEAR", "QUARTER", "MONTH", "DAY", "DOW", "DOY", "HOUR", "MINUTE"})

#: DATE_TRUNC units every backend computes with PostgreSQL's meaning (rewrite/dates.py).
TRUNC_UNITS = frozenset({"YEAR", "QUARTER", "MONTH", "WEEK", "DAY", "HOUR", "MINUTE"})


def check_query_is_allowed(query: exp.Expr) -> None:
    """Walk every node; raise UnsupportedStatementError naming the first construct that
    is not on the allow-list."""
    for node in query.walk():
        if type(node) not in _ALLOWED:
            raise UnsupportedStatementError(_describe(node))
        _check_node(node)


def _check_node(node: exp.Expr) -> None:
    if isinstance(node, exp.Select):
        if node.args.get("into"):
            raise UnsupportedStatementError("SELECT ... INTO is not allowed.")
        if node.args.get("locks"):
            raise UnsupportedStatementError("Row locks (FOR UPDATE/SHARE) are not allowed.")
    if isinstance(node, exp.Table):
        if not isinstance(node.this, exp.Identifier):
            raise UnsupportedStatementError(
                "Table functions are not allowed in FROM; name a catalog table as dataset.table."
            )
        if node.args.get("catalog"):
            raise UnsupportedStatementError(
                "Three-part names are not allowed; name tables as dataset.table."
            )
        alias = node.args.get("alias")
        if isinstance(alias, exp.TableAlias) and alias.columns:
            raise UnsupportedStatementError(
                "Column alias lists on catalog tables are not allowed; alias columns in the "
                "select list instead."
            )
        for arg in ("joins", "laterals", "pivots", "version", "when", "sample"):
            if node.args.get(arg):
                raise UnsupportedStatementError(f"Table modifier {arg.upper()} is not allowed.")
    if isinstance(node, exp.Fetch):
        _check_fetch(node)
    if isinstance(node, exp.Distinct) and isinstance(node.parent, exp.Func):
        _check_aggregate_distinct(node)
    if isinstance(node, exp.Tuple):
        _check_row_value(node)
    if isinstance(node, (exp.Any, exp.All)):
        _check_quantified(node)
    if isinstance(node, exp.Filter) and not isinstance(node.this, _FILTERABLE):
        raise UnsupportedStatementError(
            "FILTER (WHERE …) applies to aggregate functions only (COUNT, SUM, AVG, MIN, "
            "MAX); for other functions move the condition into a CASE expression."
        )
    if isinstance(node, exp.Join) and node.args.get("method"):
        raise UnsupportedStatementError(
            f"{node.args['method']} joins are not allowed; write the join condition."
        )
    if isinstance(node, (exp.Limit, exp.Offset)):
        _check_integer_literal(node.expression, node.key.upper())
    if isinstance(node, exp.Fetch):
        _check_integer_literal(node.args.get("count"), "FETCH FIRST")
    if isinstance(node, exp.Cast):
        to = node.args.get("to")
        if not isinstance(to, exp.DataType) or to.this not in _CAST_TYPES:
            raise UnsupportedStatementError(
                f"CAST to {to.sql() if to else '?'} is not allowed; use text, integer, "
                "bigint, numeric, double precision, date, timestamp or boolean."
            )
    if isinstance(node, exp.Extract):
        unit = node.this.name.upper() if isinstance(node.this, (exp.Var, exp.Identifier)) else ""
        if unit not in _EXTRACT_UNITS:
            raise UnsupportedStatementError(
                msg(
                    "EXTRACT({unit} FROM …) is not supported; EXTRACT takes one of {units}.",
                    unit=unit or "?",
                    units=", ".join(sorted(_EXTRACT_UNITS)),
                )
            )
    if isinstance(node, exp.TimestampTrunc):
        _check_date_trunc(node)
    if isinstance(node, exp.WindowSpec):
        _check_frame(node)
    if isinstance(node, exp.GroupConcat):
        _check_string_agg(node)
    if isinstance(node, exp.Lateral):
        _check_lateral(node)
    if isinstance(node, (exp.Ntile, exp.NthValue)):
        _check_positive_argument(node)
    if isinstance(node, exp.Literal) and not node.is_string and not _is_number(node.this):
        raise UnsupportedStatementError("Malformed numeric literal.")


_COMPARISONS = (exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE)

#: Aggregates that take ``FILTER (WHERE …)``.
_FILTERABLE = (exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.GroupConcat)

_FRAME_KINDS = frozenset({"ROWS", "RANGE"})
_FRAME_BOUNDS = frozenset({"UNBOUNDED", "CURRENT ROW"})


def _check_date_trunc(node: exp.TimestampTrunc) -> None:
    unit = node.args.get("unit")
    name = unit.name.upper() if isinstance(unit, (exp.Var, exp.Literal, exp.Identifier)) else ""
    if name not in TRUNC_UNITS:
        raise UnsupportedStatementError(
            msg(
                "DATE_TRUNC('{unit}', …) is not supported; the unit is one of {units}, "
                "written as a string literal.",
                unit=name.lower() or "?",
                units=", ".join(f"'{u.lower()}'" for u in sorted(TRUNC_UNITS)),
            )
        )
    if node.args.get("zone") is not None:
        raise UnsupportedStatementError(
            msg("DATE_TRUNC with a time zone is not supported; truncate without one.")
        )


def _check_frame(spec: exp.WindowSpec) -> None:
    """A window frame every backend runs with PostgreSQL's meaning: ROWS or RANGE, each
    bound UNBOUNDED, CURRENT ROW or a non-negative integer literal, no EXCLUDE."""
    kind = str(spec.args.get("kind") or "").upper()
    if kind not in _FRAME_KINDS:
        raise UnsupportedStatementError(
            msg(
                "Window frames of kind {kind} are not supported; write ROWS BETWEEN … or "
                "RANGE BETWEEN ….",
                kind=kind or "?",
            )
        )
    if spec.args.get("exclude") is not None:
        raise UnsupportedStatementError(
            msg("EXCLUDE in a window frame is not supported; write the frame without it.")
        )
    for arg in ("start", "end"):
        bound = spec.args.get(arg)
        if bound is None or (isinstance(bound, str) and bound.upper() in _FRAME_BOUNDS):
            continue
        if not (isinstance(bound, exp.Literal) and bound.is_int and int(bound.this) >= 0):
            raise UnsupportedStatementError(
                msg(
                    "A window frame bound is UNBOUNDED, CURRENT ROW or a non-negative integer "
                    "literal followed by PRECEDING or FOLLOWING."
                )
            )


def _check_string_agg(node: exp.GroupConcat) -> None:
    separator = node.args.get("separator")
    if not (isinstance(separator, exp.Literal) and separator.is_string):
        raise UnsupportedStatementError(
            msg("STRING_AGG takes a value and a separator written as a string literal.")
        )


def _check_lateral(node: exp.Lateral) -> None:
    if node.args.get("view") or not isinstance(node.this, exp.Subquery):
        raise UnsupportedStatementError(
            msg("LATERAL is supported before a subquery only: LATERAL (SELECT …) AS alias.")
        )


def _check_positive_argument(node: exp.Ntile | exp.NthValue) -> None:
    value = node.this if isinstance(node, exp.Ntile) else node.args.get("offset")
    if not (isinstance(value, exp.Literal) and value.is_int and int(value.this) > 0):
        name = "NTILE" if isinstance(node, exp.Ntile) else "NTH_VALUE"
        raise UnsupportedStatementError(
            msg("{function} takes a positive integer literal.", function=name)
        )


def _check_fetch(node: exp.Fetch) -> None:
    options = node.args.get("limit_options")
    if not isinstance(options, exp.LimitOptions):
        return
    if options.args.get("percent"):
        raise UnsupportedStatementError(
            "FETCH FIRST … PERCENT is not supported; write FETCH FIRST n ROWS ONLY or LIMIT n."
        )
    if options.args.get("with_ties"):
        query = node.parent
        if not isinstance(query, exp.Query) or not query.args.get("order"):
            raise UnsupportedStatementError(
                "FETCH FIRST … WITH TIES needs an ORDER BY: ties are rows equal in the "
                "ORDER BY keys."
            )


def _check_aggregate_distinct(node: exp.Distinct) -> None:
    values = node.expressions
    if len(values) == 1 and not isinstance(values[0], exp.Tuple):
        return
    raise UnsupportedStatementError(
        "An aggregate over DISTINCT takes one value: COUNT(DISTINCT (a, b)) and "
        "COUNT(DISTINCT a, b) are not supported. Count distinct combinations with "
        "SELECT COUNT(*) FROM (SELECT DISTINCT a, b FROM …) AS d."
    )


def _check_row_value(node: exp.Tuple) -> None:
    """A row value ``(a, b)`` stands where every target gives it PostgreSQL's meaning:
    compared with a row value of the same length, tested with IN against rows of the same
    length or a subquery, as a VALUES row or a DISTINCT ON list. Anywhere else (a select
    list, a function argument) it is a composite value only some databases have."""
    parent = node.parent
    width = len(node.expressions)
    if isinstance(parent, exp.Values) or (
        isinstance(parent, exp.Distinct) and node.arg_key == "on"
    ):
        return
    if isinstance(parent, exp.Distinct) and isinstance(parent.parent, exp.Func):
        return  # reported by _check_aggregate_distinct, with what to write instead
    if isinstance(parent, _COMPARISONS):
        other = parent.expression if parent.this is node else parent.this
        if isinstance(other, (exp.Any, exp.All)):
            return  # reported by _check_quantified
        if isinstance(other, exp.Tuple) and len(other.expressions) == width:
            return
    if isinstance(parent, exp.In):
        tested = parent.this
        rows = parent.expressions
        if isinstance(tested, exp.Tuple) and (
            parent.args.get("query") is not None
            or all(
                isinstance(r, exp.Tuple) and len(r.expressions) == len(tested.expressions)
                for r in rows
            )
        ):
            return
    raise UnsupportedStatementError(
        "A row value (a, b) is only allowed compared with a row value of the same length, "
        "or tested with IN, e.g. (a, b) IN (SELECT x, y FROM …); select its columns "
        "separately instead."
    )


def _check_quantified(node: exp.Any | exp.All) -> None:
    """``x <op> ANY|ALL (subquery)``: one value against a subquery's single column."""
    comparison = node.parent
    word = "ANY" if isinstance(node, exp.Any) else "ALL"
    if not isinstance(comparison, _COMPARISONS) or comparison.expression is not node:
        raise UnsupportedStatementError(
            f"{word} is only allowed on the right of a comparison: x > {word} (SELECT …)."
        )
    if not isinstance(node.this, (exp.Query, exp.Subquery)):
        raise UnsupportedStatementError(
            f"{word} takes a subquery of one column: x = {word} (subquery)."
        )
    if isinstance(comparison.this, exp.Tuple):
        raise UnsupportedStatementError(
            f"A row value cannot be compared with {word}; test it with IN (subquery) or "
            "compare one column at a time."
        )


def _check_integer_literal(value: exp.Expr | None, clause: str) -> None:
    if value is None:
        return
    if not (isinstance(value, exp.Literal) and value.is_int and int(value.this) >= 0):
        raise UnsupportedStatementError(f"{clause} must be a non-negative integer literal.")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


#: Constructs by the words a consumer writes, for refusals (never a parser class name).
_CONSTRUCTS: tuple[tuple[type[exp.Expr], str], ...] = (
    (exp.Interval, "INTERVAL values"),
    (exp.Pivot, "PIVOT"),
    (exp.TableSample, "TABLESAMPLE"),
    (exp.Array, "ARRAY values"),
    (exp.Bracket, "array subscripts"),
    (exp.Struct, "row constructors"),
    (exp.JSONExtract, "JSON operators"),
    (exp.JSONBExtract, "JSON operators"),
    (exp.Collate, "COLLATE"),
    (exp.RegexpLike, "regular-expression matching"),
    (exp.SimilarTo, "SIMILAR TO"),
    (exp.Unnest, "UNNEST"),
    (exp.Lambda, "lambda expressions"),
    (exp.BitwiseAnd, "bitwise operators"),
    (exp.BitwiseOr, "bitwise operators"),
    (exp.BitwiseXor, "bitwise operators"),
    (exp.BitwiseNot, "bitwise operators"),
    (exp.BitwiseLeftShift, "bitwise operators"),
    (exp.BitwiseRightShift, "bitwise operators"),
)


def construct_name(node: exp.Expr) -> str:
    """What the consumer wrote, in their terms: a function by the name it has in the
    consumer dialect (``DATE_TRUNC``, not sqlglot's ``TIMESTAMP_TRUNC``), a construct by
    its SQL words, else the start of its own SQL text."""
    if isinstance(node, exp.Anonymous):
        return f"{node.name}()"
    if isinstance(node, exp.Func):
        try:
            text = node.sql(dialect="postgres")
        except Exception:  # a name for a message: fall back, never fail
            text = ""
        head = text.split("(", 1)[0].strip()
        if head and head.replace("_", "").isalnum():
            return f"{head.upper()}()"
        return f"{node.sql_name()}()"
    for kind, words in _CONSTRUCTS:
        if isinstance(node, kind):
            return words
    try:
        text = " ".join(node.sql(dialect="postgres").split())
    except Exception:  # as above
        text = ""
    return repr(text[:40] + ("…" if len(text) > 40 else "")) if text else "this construct"


def _describe(node: exp.Expr) -> str | Message:
    if isinstance(node, exp.Anonymous):
        return msg(
            "Function {function} is not allowed. Allowed functions: {allowed}.",
            function=construct_name(node),
            allowed=", ".join(sorted({f"{_consumer_name(f)}" for f in _FUNCTIONS})),
        )
    if isinstance(node, exp.Func):
        return msg("Function {function} is not allowed.", function=construct_name(node))
    if isinstance(node, (exp.Placeholder, exp.Parameter, exp.SessionParameter)):
        return "Parameters and placeholders are not allowed; write literal values."
    if isinstance(node, (exp.DML, exp.Create, exp.Drop, exp.Alter)):
        return "Only read-only SELECT queries are accepted; data-modifying statements are refused."
    return msg(
        "The query uses {construct}, which is not supported.", construct=construct_name(node)
    )


#: Function names in the consumer dialect where sqlglot's own differ.
_CONSUMER_NAMES = {
    exp.StrPosition: "STRPOS",
    exp.GroupConcat: "STRING_AGG",
    exp.TimestampTrunc: "DATE_TRUNC",
    exp.Ntile: "NTILE",
    exp.NthValue: "NTH_VALUE",
    exp.PercentRank: "PERCENT_RANK",
    exp.CumeDist: "CUME_DIST",
}


def _consumer_name(function: type[exp.Func]) -> str:
    return _CONSUMER_NAMES.get(function) or function.sql_names()[0]
