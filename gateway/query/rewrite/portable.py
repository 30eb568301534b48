"""Portable forms: constructs that keep their meaning on every target, or a refusal.

Consumers write PostgreSQL whatever the backend. Some constructs sqlglot transpiles into a
form with another meaning on some targets (``DISTINCT ON`` becomes a ROW_NUMBER subquery
with the LIMIT *inside* it and the ORDER BY dropped; ``FETCH … WITH TIES`` loses WITH TIES;
row values become structs on DuckDB, which compare NULLs as values; MariaDB runs FULL JOIN
as a UNION that double-counts aggregates), and some it passes through to targets that
cannot run them (``= ANY (subquery)`` and parenthesised set-operation branches on SQLite,
``FILTER`` and ``LIMIT`` inside ``IN (subquery)`` on MariaDB). Each is rewritten here, on
the qualified and protected consumer AST, into a form every target runs with PostgreSQL's
meaning — measured against PostgreSQL on all four engines (tests/e2e/test_portable.py) —
or refused with a 400 that says what to write instead. Nothing is left for the generator
to restructure around the gateway's own LIMIT, which cap_row_limit then puts on the
outermost query (design.md "Row limits").

The rules run in order (``RULES``); each is a small function over the whole query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.scope import Scope, build_scope

from gateway.errors import UnsupportedStatementError
from gateway.query.parse import CONSUMER_DIALECT
from gateway.query.rewrite.analyst import (
    lag_lead_defaults,
    ratio_functions_as_double,
    refuse_empty_over,
    refuse_lateral,
    string_agg_as_text,
    window_order_nulls,
)
from gateway.query.rewrite.recursion import bound_recursion

__all__ = ["RULES", "make_portable"]

#: Targets whose generator rewrites DISTINCT ON itself (wrongly, see the docstring).
_NO_DISTINCT_ON = frozenset({"sqlite", "mysql"})

Rule = Callable[[exp.Query, str], exp.Query]
E = TypeVar("E", bound=exp.Expr)


def make_portable(query: exp.Query, dialect: str) -> exp.Query:
    """Apply ``RULES`` to the qualified, protected ``query`` for ``dialect``; returns the
    (possibly new) root. Raises UnsupportedStatementError for what cannot be kept."""
    for rule in RULES:
        query = rule(query, dialect)
    return query


# ----------------------------------------------------------------------------- checks


def check_ordering_rules(query: exp.Query, _dialect: str) -> exp.Query:
    """PostgreSQL's own rules for DISTINCT ON, DISTINCT and WITH TIES, enforced for every
    target (PostgreSQL would refuse these; other engines would answer something), and
    the shapes the rewrites below cannot keep."""
    scopes = _scopes(query)
    for select in query.find_all(exp.Select):
        distinct = select.args.get("distinct")
        on = distinct.args.get("on") if isinstance(distinct, exp.Distinct) else None
        ties = _with_ties(select)
        if isinstance(on, exp.Tuple):
            _check_distinct_on_matches_order(select, on)
        elif distinct is not None and select.args.get("order") is not None:
            _check_distinct_order_is_selected(select)
        if ties and on is not None:
            raise UnsupportedStatementError(
                "DISTINCT ON and FETCH … WITH TIES cannot be combined in one SELECT; apply "
                "WITH TIES in an outer query: SELECT * FROM (SELECT DISTINCT ON …) AS d "
                "ORDER BY … FETCH FIRST n ROWS WITH TIES."
            )
        if (on is not None or ties) and _is_correlated(select, scopes):
            what = "DISTINCT ON" if on is not None else "FETCH … WITH TIES"
            raise UnsupportedStatementError(
                f"{what} is not supported in a subquery that refers to the outer query; "
                "use it in a derived table (FROM (…) AS d) and join or filter on its output."
            )
    for setop in query.find_all(exp.SetOperation):
        if _with_ties(setop):
            raise UnsupportedStatementError(
                "FETCH … WITH TIES on UNION/INTERSECT/EXCEPT is not supported; put the set "
                "operation in a derived table: SELECT * FROM (… UNION …) AS u ORDER BY … "
                "FETCH FIRST n ROWS WITH TIES."
            )
    return query


def _check_distinct_on_matches_order(select: exp.Select, on: exp.Tuple) -> None:
    # PostgreSQL: "SELECT DISTINCT ON expressions must match initial ORDER BY expressions";
    # an alias and the expression it names are the same key.
    order = select.args.get("order")
    if not isinstance(order, exp.Order):
        return
    keys = {_key(select, e) for e in on.expressions}
    seen: set[str] = set()
    for ordered in order.expressions:
        key = _key(select, ordered.this)
        if key in keys:
            seen.add(key)
        elif seen != keys:
            raise UnsupportedStatementError(
                "The DISTINCT ON expressions must be the leftmost ORDER BY expressions, e.g. "
                "SELECT DISTINCT ON (a) a, b FROM … ORDER BY a, c."
            )
        else:
            break


def _check_distinct_order_is_selected(select: exp.Select) -> None:
    order = select.args.get("order")
    for ordered in order.expressions if isinstance(order, exp.Order) else []:
        if _output_index(select, ordered.this) is None:
            raise UnsupportedStatementError(
                "With SELECT DISTINCT, every ORDER BY expression must be in the select list."
            )


def check_subquery_widths(query: exp.Query, _dialect: str) -> exp.Query:
    """A subquery compared with a value returns as many columns as the value has: one for
    a scalar subquery, ``x IN`` and ANY/ALL, n for ``(a, …) IN``. Checked here, on the
    qualified query (``*`` expanded), rather than left to each database's error."""
    for subquery in query.find_all(exp.Subquery):
        inner = subquery.this
        if subquery.alias or not isinstance(inner, exp.Query):
            continue
        parent = subquery.parent
        if isinstance(parent, (exp.Exists, exp.SetOperation, exp.From, exp.Join, exp.Lateral)):
            continue
        if isinstance(parent, exp.In) and subquery.arg_key == "query":
            tested = parent.this
            width = len(tested.expressions) if isinstance(tested, exp.Tuple) else 1
        else:
            width = 1  # a scalar subquery, or the subquery of ANY/ALL
        if len(inner.named_selects) != width:
            raise UnsupportedStatementError(
                f"This subquery must return {width} column{'s' if width > 1 else ''}, "
                f"it returns {len(inner.named_selects)}."
            )
    for quantified in query.find_all(exp.Any, exp.All):
        inner = quantified.this.this if isinstance(quantified.this, exp.Subquery) else None
        inner = inner if inner is not None else quantified.this
        if isinstance(inner, exp.Query) and len(inner.named_selects) != 1:
            raise UnsupportedStatementError("ANY/ALL takes a subquery of exactly one column.")
    return query


# ----------------------------------------------------------------------------- DISTINCT ON


def eliminate_distinct_on(query: exp.Query, dialect: str) -> exp.Query:
    """``SELECT DISTINCT ON (k) p… FROM … ORDER BY o… LIMIT n`` on targets without it:

        SELECT gw_d.gw_c1 AS p1, … FROM (
          SELECT p1 AS gw_c1, …, o AS gw_o1, …, k AS gw_k1, … FROM …
        ) AS gw_d
        ... numbered by ROW_NUMBER() OVER (PARTITION BY gw_k… ORDER BY o…) in a middle level
        WHERE gw_rn = 1 ORDER BY o… LIMIT n

    The first row of each group in ORDER BY order, in ORDER BY order, then the query's own
    LIMIT/OFFSET: what PostgreSQL answers (sqlglot's own form puts the LIMIT before the
    numbering and drops the ORDER BY)."""
    if dialect not in _NO_DISTINCT_ON:
        return query
    for select in _post_order(query, exp.Select):
        distinct = select.args.get("distinct")
        on = distinct.args.get("on") if isinstance(distinct, exp.Distinct) else None
        if not isinstance(on, exp.Tuple):
            continue
        select.set("distinct", None)
        lifted = _Lifted(select)
        partition = [lifted.ref(e, "gw_x") for e in on.expressions]
        numbered = lifted.number(
            exp.RowNumber(), partition=partition, order=lifted.order("gw_x"), alias="gw_rn"
        )
        outer = lifted.outer(numbered, where=exp.column("gw_rn", "gw_d", quoted=True).eq(1))
        order = lifted.order("gw_d")
        outer.set("order", exp.Order(expressions=order) if order else None)
        outer.set("limit", lifted.limit)
        outer.set("offset", lifted.offset)
        query = _replace(query, select, outer)
    return query


# ----------------------------------------------------------------------------- WITH TIES


def eliminate_with_ties(query: exp.Query, _dialect: str) -> exp.Query:
    """``… ORDER BY o OFFSET m FETCH FIRST n ROWS WITH TIES``, on every target, as

        SELECT … FROM (… RANK() OVER (ORDER BY o) AS gw_rk …) AS gw_d
        WHERE gw_rk <= m + n ORDER BY o OFFSET m

    The rows of rank ≤ m + n are exactly the first m + n rows and every row tied with the
    last of them, so skipping m of them in the same order leaves what PostgreSQL returns.
    The rank is computed one level out, after DISTINCT and any window of the select list.
    sqlglot drops WITH TIES on every target but PostgreSQL, and the gateway's LIMIT must
    still bound what comes back: with this form, it simply goes on the outer query."""
    for select in _post_order(query, exp.Select):
        if not _with_ties(select):
            continue
        fetch = select.args["limit"]
        count = fetch.args.get("count")
        n = int(count.this) if isinstance(count, exp.Literal) else 1
        offset_node = select.args.get("offset")
        m = int(offset_node.expression.this) if isinstance(offset_node, exp.Offset) else 0
        lifted = _Lifted(select, extra_keys=select.args.get("distinct") is None)
        ranked = lifted.number(exp.Rank(), partition=[], order=lifted.order("gw_x"), alias="gw_rk")
        bound = exp.LTE(
            this=exp.column("gw_rk", "gw_d", quoted=True),
            expression=exp.Literal.number(m + n),
        )
        outer = lifted.outer(ranked, where=bound)
        outer.set("order", exp.Order(expressions=lifted.order("gw_d")))
        if m:
            outer.set("offset", exp.Offset(expression=exp.Literal.number(m)))
        if n == 0:
            outer.set("limit", exp.Limit(expression=exp.Literal.number(0)))
        query = _replace(query, select, outer)
    return query


# ----------------------------------------------------------------------------- row values


def expand_row_values(query: exp.Query, _dialect: str) -> exp.Query:
    """``(a, b) <op> (c, d)`` and ``(a, b) IN ((c, d), …)`` as scalar comparisons, with
    PostgreSQL's row-comparison semantics (ANDed equalities; left-to-right for < and >),
    on every target: DuckDB compares row values as structs, where NULL equals NULL.
    ``(a, b) IN (subquery)`` is left alone: every target agrees on it."""
    for comparison in _post_order(query, *_ORDERINGS, exp.EQ, exp.NEQ):
        if isinstance(comparison.this, exp.Tuple):
            query = _replace(query, comparison, _compare_rows(comparison))
    for node in _post_order(query, exp.In):
        if isinstance(node.this, exp.Tuple) and node.expressions:
            alternatives = [
                _compare_rows(exp.EQ(this=node.this.copy(), expression=row.copy()))
                for row in node.expressions
            ]
            query = _replace(query, node, exp.paren(exp.or_(*alternatives), copy=False))
    return query


_ORDERINGS = (exp.LT, exp.LTE, exp.GT, exp.GTE)
_STRICT: dict[type[exp.Expr], type[exp.Binary]] = {
    exp.LT: exp.LT,
    exp.LTE: exp.LT,
    exp.GT: exp.GT,
    exp.GTE: exp.GT,
}


def _compare_rows(node: exp.Binary) -> exp.Expr:
    left, right = node.this, node.expression
    if not isinstance(left, exp.Tuple) or not isinstance(right, exp.Tuple):
        raise UnsupportedStatementError(
            "A row value can only be compared with another row value of the same length."
        )
    pairs = list(zip(left.expressions, right.expressions, strict=True))
    if isinstance(node, exp.EQ):
        return exp.paren(exp.and_(*(a.copy().eq(b.copy()) for a, b in pairs)), copy=False)
    if isinstance(node, exp.NEQ):
        return exp.paren(exp.or_(*(a.copy().neq(b.copy()) for a, b in pairs)), copy=False)
    # PostgreSQL §9.24.5: elements compared left to right, stopping at the first unequal
    # or NULL pair; `a1 < b1 OR (a1 = b1 AND (rest))` is that, in three-valued logic.
    last_a, last_b = pairs[-1]
    result: exp.Expr = type(node)(this=last_a.copy(), expression=last_b.copy())
    strict = _STRICT[type(node)]
    for a, b in reversed(pairs[:-1]):
        result = exp.paren(
            exp.or_(
                strict(this=a.copy(), expression=b.copy()),
                exp.and_(a.copy().eq(b.copy()), exp.paren(result, copy=False)),
            ),
            copy=False,
        )
    return exp.paren(result, copy=False)


# ----------------------------------------------------------------------------- ANY / ALL


def eliminate_quantified(query: exp.Query, dialect: str) -> exp.Query:
    """``x <op> ANY|ALL (subquery)`` on SQLite, which has neither: ``= ANY`` is ``IN``,
    ``<> ALL`` is ``NOT IN`` (SQL defines them so); any other operator becomes the
    three-valued CASE over EXISTS that the standard defines (ALL: false if some row
    compares false, else unknown if some row compares unknown, else true)."""
    if dialect != "sqlite":
        return query
    for node in _post_order(query, exp.Any, exp.All):
        comparison = node.parent
        if not isinstance(comparison, exp.Binary):  # validate.py checked the shape
            raise UnsupportedStatementError("ANY/ALL must follow a comparison operator.")
        this = node.this
        subquery = this if isinstance(this, exp.Subquery) else exp.Subquery(this=this)
        value = comparison.this
        is_any = isinstance(node, exp.Any)
        if (is_any and isinstance(comparison, exp.EQ)) or (
            not is_any and isinstance(comparison, exp.NEQ)
        ):
            test: exp.Expr = exp.In(this=value.copy(), query=subquery.copy())
            query = _replace(query, comparison, test if is_any else exp.Not(this=test))
            continue
        if any(isinstance(n, (exp.AggFunc, exp.Window)) for n in value.walk()):
            raise UnsupportedStatementError(
                "ANY/ALL with an aggregate or window on the left is not supported; compare "
                "with the subquery's MIN or MAX instead, e.g. SUM(x) > (SELECT MAX(y) FROM …)."
            )
        inner = subquery.this
        names = inner.named_selects if isinstance(inner, exp.Query) else []
        if len(names) != 1:
            raise UnsupportedStatementError("ANY/ALL takes a subquery of exactly one column.")
        element = exp.column(names[0], "gw_q", quoted=True)
        pair = type(comparison)(this=value.copy(), expression=element)

        def exists(condition: exp.Expr, source: exp.Subquery = subquery) -> exp.Exists:
            select = (
                exp.select("1")
                .from_(exp.Subquery(this=source.this.copy(), alias=_alias("gw_q")), copy=False)
                .where(condition, copy=False)
            )
            return exp.Exists(this=select)

        unknown = exists(exp.Is(this=exp.paren(pair.copy(), copy=False), expression=exp.null()))
        if is_any:
            decided = exp.If(this=exists(pair.copy()), true=exp.true())
            otherwise: exp.Expr = exp.false()
        else:
            decided = exp.If(this=exists(exp.not_(pair.copy())), true=exp.false())
            otherwise = exp.true()
        case = exp.Case(ifs=[decided, exp.If(this=unknown, true=exp.null())], default=otherwise)
        query = _replace(query, comparison, exp.paren(case, copy=False))
    return query


# ----------------------------------------------------------------------------- MariaDB


def eliminate_filter(query: exp.Query, dialect: str) -> exp.Query:
    """``AGG(x) FILTER (WHERE c)`` as ``AGG(CASE WHEN c THEN x END)`` where FILTER does not
    exist (MariaDB): the aggregates validate.py allows with FILTER all ignore NULL, so the
    rows the condition rejects count for nothing, exactly as with FILTER."""
    if dialect != "mysql":
        return query
    for node in _post_order(query, exp.Filter):
        aggregate = node.this.copy()
        where = node.expression
        condition = where.this if isinstance(where, exp.Where) else where
        argument = aggregate.this
        if isinstance(argument, exp.Star):
            aggregate.set("this", _when(condition, exp.Literal.number(1)))
        elif isinstance(argument, exp.Distinct):
            argument.set("expressions", [_when(condition, argument.expressions[0])])
        else:
            aggregate.set("this", _when(condition, argument))
        query = _replace(query, node, aggregate)
    return query


def isolate_limited_in_subqueries(query: exp.Query, dialect: str) -> exp.Query:
    """MariaDB refuses ``LIMIT`` directly inside ``IN``/``ANY``/``ALL (subquery)`` (error
    1235) but not inside a derived table: ``IN (SELECT * FROM (… LIMIT n) AS gw_l)``."""
    if dialect != "mysql":
        return query
    holders: list[exp.Expr] = [
        *(n.args["query"] for n in query.find_all(exp.In) if n.args.get("query") is not None),
        *(n for n in query.find_all(exp.Any, exp.All)),
    ]
    for holder in holders:
        inner = holder.this if isinstance(holder, (exp.Subquery, exp.Any, exp.All)) else holder
        if isinstance(inner, exp.Subquery):
            inner = inner.this
        if not isinstance(inner, exp.Query) or not (
            inner.args.get("limit") or inner.args.get("offset")
        ):
            continue
        names = inner.named_selects
        if len(set(names)) != len(names):
            raise UnsupportedStatementError(
                "A subquery with LIMIT under IN/ANY/ALL must name its columns differently."
            )
        wrapped = exp.select("*").from_(
            exp.Subquery(this=inner.copy(), alias=_alias("gw_l")), copy=False
        )
        inner.replace(wrapped)
    return query


def refuse_full_join(query: exp.Query, dialect: str) -> exp.Query:
    """MariaDB has no FULL JOIN; sqlglot emulates it with a UNION ALL that is wrong under
    aggregates and LIMIT. Refused where the dataset's database cannot run it."""
    if dialect != "mysql":
        return query
    for join in query.find_all(exp.Join):
        if join.side.upper() == "FULL":
            raise UnsupportedStatementError(
                "FULL JOIN is not available for this dataset. Write it as a LEFT JOIN "
                "UNION ALL the right-side rows that have no match: … LEFT JOIN b ON … "
                "UNION ALL … FROM b WHERE NOT EXISTS (SELECT 1 FROM a WHERE …)."
            )
    return query


# ----------------------------------------------------------------------------- SQLite


def unwrap_set_operation_branches(query: exp.Query, dialect: str) -> exp.Query:
    """SQLite does not accept ``(SELECT …) UNION (SELECT …)``. A plain parenthesised
    branch loses its parentheses; one with its own ORDER BY/LIMIT, or a nested set
    operation, becomes ``SELECT * FROM (…)`` (SQLite compounds are left-associative, so
    a nested set operation on the right must stay a unit)."""
    if dialect != "sqlite":
        return query
    count = 0
    for setop in _post_order(query, exp.SetOperation):
        for arg in ("this", "expression"):
            branch = setop.args.get(arg)
            if not isinstance(branch, exp.Subquery) or branch.alias:
                continue
            inner = branch.this
            plain = isinstance(inner, exp.Select) and not any(
                inner.args.get(k) for k in ("order", "limit", "offset", "with_")
            )
            if plain:
                setop.set(arg, inner)
            elif isinstance(inner, exp.Query):
                wrapped = exp.Subquery(this=inner, alias=_alias(f"gw_b{count}"))
                count += 1
                setop.set(arg, exp.select("*").from_(wrapped, copy=False))
    return query


# ----------------------------------------------------------------------------- invariant


def check_nothing_left_to_restructure(query: exp.Query, dialect: str) -> exp.Query:
    """Fail closed if a construct the target's generator would restructure (and so move
    the gateway's LIMIT inside, or change the meaning) survived the rules above."""
    for select in query.find_all(exp.Select):
        distinct = select.args.get("distinct")
        if (
            dialect in _NO_DISTINCT_ON
            and isinstance(distinct, exp.Distinct)
            and distinct.args.get("on") is not None
        ):
            raise UnsupportedStatementError("DISTINCT ON could not be rewritten for this dataset.")
    for node in query.find_all(exp.Select, exp.SetOperation):
        if _with_ties(node):
            raise UnsupportedStatementError("WITH TIES could not be rewritten for this dataset.")
    return query


RULES: tuple[Rule, ...] = (
    bound_recursion,
    check_ordering_rules,
    check_subquery_widths,
    refuse_full_join,
    refuse_lateral,
    refuse_empty_over,
    string_agg_as_text,
    lag_lead_defaults,
    window_order_nulls,
    ratio_functions_as_double,
    eliminate_distinct_on,
    eliminate_with_ties,
    expand_row_values,
    eliminate_quantified,
    eliminate_filter,
    isolate_limited_in_subqueries,
    unwrap_set_operation_branches,
    check_nothing_left_to_restructure,
)


# ----------------------------------------------------------------------------- helpers


class _Lifted:
    """A SELECT split in two levels, for the rules that must number or rank its rows
    *after* it is computed: ``inner`` is the SELECT without ORDER BY/LIMIT/OFFSET/WITH,
    its outputs renamed ``gw_c<i>`` (so duplicate or reserved output names cannot clash),
    plus one ``gw_k<j>`` output per other expression the numbering needs."""

    def __init__(self, select: exp.Select, *, extra_keys: bool = True) -> None:
        self.select = select
        self.with_ = select.args.get("with_")
        self.limit = select.args.get("limit")
        self.offset = select.args.get("offset")
        order = select.args.get("order")
        self.ordered: list[exp.Ordered] = list(order.expressions) if order else []
        self.names = [_output_identifier(p) for p in select.expressions]
        self.inner = select.copy()
        for arg in ("order", "limit", "offset", "with_"):
            self.inner.set(arg, None)
        self.inner.set(
            "expressions",
            [
                exp.alias_(_unaliased(p).copy(), f"gw_c{i}", quoted=True)
                for i, p in enumerate(select.expressions)
            ],
        )
        self._extra_keys = extra_keys
        self._keys: dict[str, str] = {}

    def ref(self, expression: exp.Expr, table: str) -> exp.Column:
        """``table``'s column holding ``expression``: an output, or a new inner key."""
        index = _output_index(self.select, expression)
        if index is not None:
            return exp.column(f"gw_c{index}", table, quoted=True)
        key = _key(self.select, expression)
        name = self._keys.get(key)
        if name is None:
            if not self._extra_keys:
                raise UnsupportedStatementError(
                    "With SELECT DISTINCT, every ORDER BY expression must be in the select list."
                )
            name = f"gw_k{len(self._keys)}"
            self._keys[key] = name
            self.inner.append(
                "expressions",
                exp.alias_(_resolved(self.select, expression), name, quoted=True),
            )
        return exp.column(name, table, quoted=True)

    def order(self, table: str) -> list[exp.Ordered]:
        """The SELECT's ORDER BY over ``table``'s columns (keys added as needed)."""
        return [
            exp.Ordered(
                this=self.ref(o.this, table),
                desc=o.args.get("desc"),
                nulls_first=o.args.get("nulls_first"),
            )
            for o in self.ordered
        ]

    def number(
        self,
        function: exp.Expr,
        *,
        partition: Sequence[exp.Expr],
        order: Sequence[exp.Ordered],
        alias: str,
    ) -> exp.Select:
        """``SELECT gw_x.*, <function> OVER (…) AS <alias> FROM (inner) AS gw_x``."""
        window = exp.Window(
            this=function,
            partition_by=[p.copy() for p in partition] or None,
            order=exp.Order(expressions=[o.copy() for o in order]) if order else None,
        )
        columns = [exp.column(e.alias, "gw_x", quoted=True) for e in self.inner.expressions]
        return exp.select(*columns, exp.alias_(window, alias, quoted=True)).from_(
            exp.Subquery(this=self.inner, alias=_alias("gw_x")), copy=False
        )

    def outer(self, numbered: exp.Select, *, where: exp.Expr) -> exp.Select:
        """``SELECT gw_d.gw_c<i> AS <name i>, … FROM (numbered) AS gw_d WHERE …``."""
        outputs = [
            exp.alias_(exp.column(f"gw_c{i}", "gw_d", quoted=True), name.copy())
            for i, name in enumerate(self.names)
        ]
        outer = exp.select(*outputs).from_(
            exp.Subquery(this=numbered, alias=_alias("gw_d")), copy=False
        )
        outer = outer.where(where, copy=False)
        if self.with_ is not None:
            outer.set("with_", self.with_)
        return outer

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"_Lifted({self.select.sql(dialect=CONSUMER_DIALECT)!r})"


def _post_order(query: exp.Expr, *kinds: type[E]) -> list[E]:
    """Nodes of ``kinds``, innermost first, so a rewrite of an outer node copies the
    already-rewritten inner ones."""
    return [n for n in reversed(list(query.walk(bfs=False))) if isinstance(n, kinds)]


def _replace(root: exp.Query, node: exp.Expr, new: exp.Expr) -> exp.Query:
    if node is root:
        if not isinstance(new, exp.Query):
            raise UnsupportedStatementError("Only queries are accepted.")
        return new
    node.replace(new)
    return root


def _with_ties(node: exp.Expr) -> bool:
    fetch = node.args.get("limit")
    if not isinstance(fetch, exp.Fetch):
        return False
    options = fetch.args.get("limit_options")
    return isinstance(options, exp.LimitOptions) and bool(options.args.get("with_ties"))


def _unaliased(projection: exp.Expr) -> exp.Expr:
    return projection.this if isinstance(projection, exp.Alias) else projection


def _output_identifier(projection: exp.Expr) -> exp.Identifier:
    if isinstance(projection, exp.Alias):
        alias = projection.args.get("alias")
        if isinstance(alias, exp.Identifier):
            return alias.copy()
    return exp.to_identifier(projection.output_name or "?column?", quoted=True)


def _resolved(select: exp.Select, expression: exp.Expr) -> exp.Expr:
    """``expression`` with a reference to an output alias replaced by what it names
    (``ORDER BY x`` where ``… AS x``): the form a window of the same SELECT can use."""
    if isinstance(expression, exp.Column) and not expression.table:
        for projection in select.expressions:
            if isinstance(projection, exp.Alias) and projection.alias == expression.name:
                named: exp.Expr = projection.this.copy()
                return named
    return expression.copy()


def _key(select: exp.Select, expression: exp.Expr) -> str:
    return _resolved(select, expression).sql(dialect=CONSUMER_DIALECT)


def _output_index(select: exp.Select, expression: exp.Expr) -> int | None:
    """The position of the output ``expression`` names (by alias) or repeats."""
    if isinstance(expression, exp.Column) and not expression.table:
        for i, projection in enumerate(select.expressions):
            if projection.alias_or_name == expression.name:
                return i
    key = _key(select, expression)
    for i, projection in enumerate(select.expressions):
        if _unaliased(projection).sql(dialect=CONSUMER_DIALECT) == key:
            return i
    return None


def _scopes(query: exp.Query) -> dict[int, Scope]:
    try:
        root = build_scope(query)
    except OptimizeError:
        return {}
    return {} if root is None else {id(s.expression): s for s in root.traverse()}


def _is_correlated(select: exp.Select, scopes: dict[int, Scope]) -> bool:
    scope = scopes.get(id(select))
    return scope is not None and bool(scope.external_columns)


def _when(condition: exp.Expr, value: exp.Expr) -> exp.Case:
    return exp.Case(ifs=[exp.If(this=condition.copy(), true=value.copy())])


def _alias(name: str) -> exp.TableAlias:
    return exp.TableAlias(this=exp.to_identifier(name, quoted=True))
