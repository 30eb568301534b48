"""WITH RECURSIVE, bounded: a recursive CTE may take at most ``MAX_RECURSION_STEPS`` steps.

Each recursive CTE gets a hidden step counter, ``gw_depth`` (0 in the anchor, +1 per
step), and its recursive term a guard that makes the *backend* fail the statement when a
row of step ``MAX_RECURSION_STEPS`` is about to be extended: ``ABS(-2**63 + 0 * depth)``
overflows on every engine (tests/e2e/test_portable.py RUNTIME_FAILURES). So a recursion
either ends by its own condition, with PostgreSQL's answer, or the query is refused
(execute.py turns the failure of such a plan into a 422 saying why) — never cut short
silently. The counter is not visible: resolve expanded ``*`` before this rule runs, so
the consumer's query names only its own columns.

Only ``anchor UNION ALL recursive-term`` is accepted: with UNION (which removes
duplicates) the counter would make every row distinct, and a recursion that PostgreSQL
ends by deduplication would run into the bound instead.
"""

from __future__ import annotations

from sqlglot import exp

from gateway.errors import UnsupportedStatementError
from gateway.i18n import msg

__all__ = ["DEPTH_COLUMN", "MAX_RECURSION_STEPS", "bound_recursion", "is_recursive"]

#: Steps a recursive CTE may take beyond its anchor.
MAX_RECURSION_STEPS = 500
DEPTH_COLUMN = "gw_depth"
_MIN_BIGINT = exp.Sub(
    this=exp.Neg(this=exp.Literal.number(9223372036854775807)), expression=exp.Literal.number(1)
)


def is_recursive(query: exp.Expr) -> bool:
    """Whether ``query`` holds a recursive CTE (after :func:`bound_recursion`: a bound)."""
    return any(_self_references(cte) for cte in query.find_all(exp.CTE))


def bound_recursion(query: exp.Query, _dialect: str) -> exp.Query:
    """Give every recursive CTE of ``query`` its step counter and guard (in place)."""
    for with_ in list(query.find_all(exp.With)):
        if not with_.args.get("recursive"):
            continue
        for cte in with_.expressions:
            if _self_references(cte):
                _bound(cte)
    return query


def _self_references(cte: exp.CTE) -> list[exp.Table]:
    name = cte.alias_or_name
    return [t for t in cte.this.find_all(exp.Table) if not t.db and t.name == name]


def _bound(cte: exp.CTE) -> None:
    name = cte.alias_or_name
    body = cte.this
    if not isinstance(body, exp.Union) or body.args.get("distinct"):
        raise UnsupportedStatementError(
            msg(
                "A recursive CTE is written anchor UNION ALL recursive part, e.g. WITH "
                "RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 10); "
                "end the recursion with a condition (UNION without ALL is not supported)."
            )
        )
    anchor, step = body.this, body.expression
    if not isinstance(anchor, exp.Select) or not isinstance(step, exp.Select):
        raise UnsupportedStatementError(
            msg("The anchor and the recursive part of a recursive CTE must each be one SELECT.")
        )
    if _refers_to(anchor, name):
        raise UnsupportedStatementError(
            msg("The anchor (first part) of a recursive CTE cannot read the CTE itself.")
        )
    references = [t for t in step.find_all(exp.Table) if not t.db and t.name == name]
    if len(references) != 1 or references[0].find_ancestor(exp.Select) is not step:
        raise UnsupportedStatementError(
            msg(
                "The recursive part of a recursive CTE reads the CTE exactly once, in its "
                "own FROM or JOIN (not in a subquery)."
            )
        )
    if step.args.get("group") or step.args.get("distinct") or step.args.get("limit"):
        raise UnsupportedStatementError(
            msg("The recursive part of a recursive CTE cannot use GROUP BY, DISTINCT or LIMIT.")
        )
    depth = exp.column(DEPTH_COLUMN, table=references[0].alias_or_name, quoted=True)
    anchor.select(exp.alias_(exp.Literal.number(0), DEPTH_COLUMN, quoted=True), copy=False)
    step.select(
        exp.alias_(
            exp.Add(this=depth.copy(), expression=exp.Literal.number(1)), DEPTH_COLUMN, quoted=True
        ),
        copy=False,
    )
    step.where(_guard(depth), copy=False)
    alias = cte.args.get("alias")
    if isinstance(alias, exp.TableAlias) and alias.columns:
        alias.append("columns", exp.to_identifier(DEPTH_COLUMN, quoted=True))


def _refers_to(select: exp.Select, name: str) -> bool:
    return any(not t.db and t.name == name for t in select.find_all(exp.Table))


def _guard(depth: exp.Column) -> exp.Expr:
    """True below the bound; at the bound an integer overflow the backend cannot ignore."""
    overflow = exp.Abs(
        this=exp.Add(
            this=_MIN_BIGINT.copy(),
            expression=exp.Mul(this=exp.Literal.number(0), expression=depth.copy()),
        )
    )
    at_bound = exp.GTE(this=depth.copy(), expression=exp.Literal.number(MAX_RECURSION_STEPS))
    value = exp.Case(ifs=[exp.If(this=at_bound, true=overflow)], default=exp.Literal.number(0))
    return exp.EQ(this=value, expression=exp.Literal.number(0))
