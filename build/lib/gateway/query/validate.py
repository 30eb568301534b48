"""Validate: an allow-list over every node of the parsed query.

Nothing is denied by name: a node type, function or cast type that is not listed here is
refused. This is what blocks data-modifying CTEs hiding under a SELECT root, file and
sleep functions, system information functions, locks, ``SELECT INTO``, parameters,
recursive CTEs and non-literal limits (research/tech-probe.md §2.3).
"""

from __future__ import annotations

from sqlglot import exp

from gateway.errors import UnsupportedStatementError

__all__ = ["check_query_is_allowed"]

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
    exp.Lateral,
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

_EXTRACT_UNITS = frozenset({"YEAR", "MONTH", "DAY"})


def check_query_is_allowed(query: exp.Expr) -> None:
    """Walk every node; raise UnsupportedStatementError naming the first construct that
    is not on the allow-list."""
    for node in query.walk():
        if type(node) not in _ALLOWED:
            raise UnsupportedStatementError(_describe(node))
        _check_node(node)


def _check_node(node: exp.Expr) -> None:
    if isinstance(node, exp.With) and node.args.get("recursive"):
        raise UnsupportedStatementError("WITH RECURSIVE is not allowed.")
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
    if isinstance(node, exp.Lateral) and not isinstance(node.this, exp.Subquery):
        raise UnsupportedStatementError("LATERAL is only allowed with a subquery.")
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
            raise UnsupportedStatementError("EXTRACT supports YEAR, MONTH and DAY only.")
    if isinstance(node, exp.Literal) and not node.is_string and not _is_number(node.this):
        raise UnsupportedStatementError("Malformed numeric literal.")


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


def _describe(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return (
            f"Function {node.name}() is not allowed. Allowed functions: "
            + ", ".join(sorted({f.sql_names()[0] for f in _FUNCTIONS}))
            + "."
        )
    if isinstance(node, exp.Func):
        return f"Function {node.sql_name()}() is not allowed."
    if isinstance(node, (exp.Placeholder, exp.Parameter, exp.SessionParameter)):
        return "Parameters and placeholders are not allowed; write literal values."
    if isinstance(node, (exp.DML, exp.Create, exp.Drop, exp.Alter)):
        return "Only read-only SELECT queries are accepted; data-modifying statements are refused."
    return f"SQL construct {node.key.upper()} is not allowed."
