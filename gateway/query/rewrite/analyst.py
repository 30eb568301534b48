"""Analysts' constructs with PostgreSQL's meaning on every target, or a clear refusal.

Rules in the style of portable.py (each ``rule(query, dialect) -> query``, run from its
``RULES``) for the window and aggregate functions analysts write: ``LAG``/``LEAD`` with a
default where the target has no default argument (MariaDB), ``STRING_AGG`` over any value
(PostgreSQL refuses a non-text value; every target gets it as text) and with its own
``ORDER BY`` where the target cannot order inside an aggregate (refused), and ``LATERAL``
where the target has none (refused, with the portable form to write instead).
"""

from __future__ import annotations

from sqlglot import exp

from gateway.errors import UnsupportedStatementError
from gateway.i18n import msg

__all__ = [
    "lag_lead_defaults",
    "ratio_functions_as_double",
    "refuse_empty_over",
    "refuse_lateral",
    "string_agg_as_text",
    "window_order_nulls",
]

#: Targets without LATERAL (SQLite, MariaDB).
_NO_LATERAL = frozenset({"sqlite", "mysql"})
#: Targets whose aggregates cannot take an ORDER BY of their own (SQLite before 3.44).
_NO_ORDERED_AGGREGATE = frozenset({"sqlite"})


def refuse_lateral(query: exp.Query, dialect: str) -> exp.Query:
    if dialect in _NO_LATERAL and query.find(exp.Lateral) is not None:
        raise UnsupportedStatementError(
            msg(
                "LATERAL is not available for this dataset. Write a correlated scalar "
                "subquery in the select list instead, e.g. SELECT a.id, (SELECT count(*) "
                "FROM other AS b WHERE b.key = a.key) AS n FROM some_table AS a."
            )
        )
    return query


def string_agg_as_text(query: exp.Query, dialect: str) -> exp.Query:
    """``STRING_AGG(x, sep)`` aggregates ``CAST(x AS TEXT)``: the same text on every
    target, whatever the type of ``x``."""
    for node in list(query.find_all(exp.GroupConcat)):
        holder: exp.Expr = node
        value = node.this
        if isinstance(value, exp.Order):
            if dialect in _NO_ORDERED_AGGREGATE:
                raise UnsupportedStatementError(
                    msg(
                        "STRING_AGG(… ORDER BY …) is not available for this dataset; "
                        "aggregate without ORDER BY (the order of the parts is then "
                        "unspecified)."
                    )
                )
            holder, value = value, value.this
        if isinstance(value, exp.Distinct):
            raise UnsupportedStatementError(
                msg("STRING_AGG(DISTINCT …) is not supported; aggregate a SELECT DISTINCT.")
            )
        if not (isinstance(value, exp.Cast) and value.to.is_type(exp.DataType.Type.TEXT)):
            holder.set("this", exp.cast(value.copy(), exp.DataType.Type.TEXT))
    return query


def lag_lead_defaults(query: exp.Query, dialect: str) -> exp.Query:
    """MariaDB's LAG/LEAD take no default: ``LAG(x, n, d) OVER w`` becomes ``CASE WHEN
    COUNT(*) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) >= n THEN
    LAG(x, n) OVER w ELSE d END`` (LEAD counts the rows following), so a missing row gives
    ``d`` while a NULL value stays NULL."""
    if dialect != "mysql":
        return query
    for window in list(query.find_all(exp.Window)):
        function = window.this
        if not isinstance(function, (exp.Lag, exp.Lead)):
            continue
        default = function.args.get("default")
        if default is None:
            continue
        if window.args.get("alias") is not None:  # OVER w: a named window
            raise UnsupportedStatementError(
                msg(
                    "LAG/LEAD with a default over a named window is not available for this "
                    "dataset; write the window in the OVER clause."
                )
            )
        offset = function.args.get("offset") or exp.Literal.number(1)
        plain = window.copy()
        plain.this.set("default", None)
        plain.this.set("offset", offset.copy())
        # Rows before (LAG) or after (LEAD) the current one, in the window's own order:
        # a count over a ROWS frame, never an empty OVER () (see refuse_empty_over).
        frame = (
            ("UNBOUNDED", "PRECEDING", exp.Literal.number(1), "PRECEDING")
            if isinstance(function, exp.Lag)
            else (exp.Literal.number(1), "FOLLOWING", "UNBOUNDED", "FOLLOWING")
        )
        around = _over(window, exp.Count(this=exp.Star()), ordered=True)
        around.set(
            "spec",
            exp.WindowSpec(
                kind="ROWS", start=frame[0], start_side=frame[1], end=frame[2], end_side=frame[3]
            ),
        )
        present: exp.Expr = exp.GTE(this=around, expression=offset.copy())
        window.replace(exp.Case(ifs=[exp.If(this=present, true=plain)], default=default.copy()))
    return query


def _over(window: exp.Window, function: exp.Expr, *, ordered: bool) -> exp.Window:
    """``function`` over the partition (and, if ``ordered``, the order) of ``window``,
    without its frame: ROW_NUMBER and a whole-partition COUNT ignore frames."""
    return exp.Window(
        this=function,
        partition_by=[p.copy() for p in window.args.get("partition_by") or []],
        order=window.args["order"].copy() if ordered and window.args.get("order") else None,
    )


def window_order_nulls(query: exp.Query, dialect: str) -> exp.Query:
    """MariaDB sorts NULLs first where PostgreSQL sorts them last (and the reverse under
    DESC); inside a window sqlglot cannot say so for every function. Each key of a
    window's ORDER BY gets a leading ``CASE WHEN key IS NULL THEN 1 ELSE 0 END`` key with
    PostgreSQL's NULL placement, which leaves the peers (rows equal in every key) as
    they were, so ROWS and RANGE UNBOUNDED/CURRENT ROW frames keep their meaning. A RANGE
    frame with an offset needs exactly one key: refused there."""
    if dialect != "mysql":
        return query
    for window in list(query.find_all(exp.Window)):
        order = window.args.get("order")
        if not isinstance(order, exp.Order):
            continue
        spec = window.args.get("spec")
        if isinstance(spec, exp.WindowSpec) and str(spec.args.get("kind")).upper() == "RANGE":
            bounds = (spec.args.get("start"), spec.args.get("end"))
            if any(isinstance(b, exp.Literal) for b in bounds):
                raise UnsupportedStatementError(
                    msg(
                        "RANGE frames with an offset (RANGE BETWEEN n PRECEDING …) are not "
                        "available for this dataset; write ROWS BETWEEN … or a RANGE frame "
                        "bounded by UNBOUNDED and CURRENT ROW."
                    )
                )
        keys: list[exp.Expr] = []
        for ordered in order.expressions:
            if not isinstance(ordered, exp.Ordered):
                keys.append(ordered)
                continue
            desc = bool(ordered.args.get("desc"))
            nulls_first = bool(ordered.args.get("nulls_first"))
            is_null = exp.Case(
                ifs=[
                    exp.If(
                        this=exp.Is(this=ordered.this.copy(), expression=exp.Null()),
                        true=exp.Literal.number(1),
                    )
                ],
                default=exp.Literal.number(0),
            )
            keys.append(exp.Ordered(this=is_null, desc=nulls_first, nulls_first=not nulls_first))
            # MariaDB's own placement, so that the generator adds nothing of its own.
            keys.append(exp.Ordered(this=ordered.this.copy(), desc=desc, nulls_first=not desc))
        order.set("expressions", keys)
    return query


def ratio_functions_as_double(query: exp.Query, dialect: str) -> exp.Query:
    """MariaDB computes PERCENT_RANK and CUME_DIST in decimals and sends them rounded
    (0.0003749531); PostgreSQL divides doubles. Written as PostgreSQL computes them,
    ``(rank - 1) / (rows - 1)`` (0 for a one-row partition) and ``rows up to the last
    peer / rows``, in double precision, they are the same value on every target."""
    if dialect != "mysql":
        return query
    for window in list(query.find_all(exp.Window)):
        function = window.this
        if not isinstance(function, (exp.PercentRank, exp.CumeDist)):
            continue
        whole = _over(window, exp.Count(this=exp.Star()), ordered=True)
        whole.set(
            "spec",
            exp.WindowSpec(
                kind="ROWS",
                start="UNBOUNDED",
                start_side="PRECEDING",
                end="UNBOUNDED",
                end_side="FOLLOWING",
            ),
        )
        rows = exp.cast(whole, _DOUBLE)
        ratio: exp.Expr
        if isinstance(function, exp.PercentRank):
            rank = _over(window, exp.Rank(), ordered=True)
            ratio = exp.Case(
                ifs=[
                    exp.If(
                        this=exp.GT(this=rows.copy(), expression=exp.Literal.number(1)),
                        true=exp.Div(this=_minus_one(rank), expression=_minus_one(rows)),
                    )
                ],
                default=exp.cast(exp.Literal.number(0), _DOUBLE),
            )
        else:
            upto = _over(window, exp.Count(this=exp.Star()), ordered=True)
            upto.set(
                "spec",
                exp.WindowSpec(
                    kind="RANGE", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"
                ),
            )
            ratio = exp.Div(this=upto, expression=rows)
        window.replace(exp.paren(ratio, copy=False))
    return query


_DOUBLE = exp.DataType.Type.DOUBLE


def _minus_one(value: exp.Expr) -> exp.Expr:
    return exp.paren(exp.Sub(this=value, expression=exp.Literal.number(1)), copy=False)


def refuse_empty_over(query: exp.Query, dialect: str) -> exp.Query:
    """MariaDB (10.11, measured) computes the *other* windows of a query wrongly when one
    window has neither PARTITION BY nor ORDER BY: ``SUM(x) OVER ()`` next to
    ``ROW_NUMBER() OVER (ORDER BY id)`` numbers the rows out of order. Refused there
    rather than answered wrongly; the total is a scalar subquery instead."""
    if dialect != "mysql":
        return query
    windows = [w for w in query.find_all(exp.Window) if w.args.get("alias") is None]
    specs = {_spec_key(w) for w in windows}
    if len(specs) > 1 and any(_is_empty(w) for w in windows):
        raise UnsupportedStatementError(
            msg(
                "A window with an empty OVER () next to other windows is not available for "
                "this dataset; compute the total with a scalar subquery, e.g. (SELECT "
                "SUM(x) FROM t) instead of SUM(x) OVER ()."
            )
        )
    return query


def _is_empty(window: exp.Window) -> bool:
    return not window.args.get("partition_by") and not window.args.get("order")


def _spec_key(window: exp.Window) -> str:
    spec = window.copy()
    spec.set("this", exp.Null())
    return spec.sql(dialect="postgres")
