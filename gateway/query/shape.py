"""Plans by shape: ``… WHERE id = 1`` and ``… WHERE id = 2`` share one plan.

The planner's work (parse, validate, resolve, rewrite) does not depend on the value of a
literal compared with a column, only on its kind. :func:`shape_of` finds such literals in
the consumer's SQL with the tokenizer (no parse) and replaces them with sentinels; the
plan built from the sentinel text is a *template* whose backend SQL carries the
sentinels, and :meth:`Template.bind` puts the request's literals back in, rendered by the
backend dialect's own generator (strings) or as validated digits (integers).

Which literals are parameters (everything else stays in the key, verbatim):

- a plain ``'string'`` or an integer of at most 9 digits,
- right after a comparison (``= <> != < > <= >=``, ``LIKE``, ``ILIKE``, ``BETWEEN`` and the
  ``AND`` of ``BETWEEN``),
- followed by nothing that could bind tighter than the comparison (``::``, ``||``,
  arithmetic, ``COLLATE``, ``ESCAPE`` …: only a clause keyword, ``AND``/``OR``, ``)``).

So ``LIMIT``/``OFFSET`` counts, ``ORDER BY 1``, function arguments (``date_trunc('month', …)``),
casts, typed literals (``DATE '…'``) and escape strings are part of the key: literals
that change the plan never share one. Exactness is also checked, not assumed: the first
request of a shape is planned in full *and* as a template, and the template is kept only
if binding that request's literals gives exactly the full plan (SQL, audit SQL, columns,
limits, decisions); otherwise the shape is remembered as not shareable and every text is
planned in full, as before. The rest of the key (principal, policy version, grants epoch,
requested rows) is the plan cache's own.

The audit record carries the bound SQL: the literals the query ran with, no placeholders.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokenizer_core import Token, TokenType

if TYPE_CHECKING:
    from gateway.query.plan import Plan

__all__ = ["Shape", "Template", "make_template", "shape_of"]

_COMPARISON = frozenset(
    {
        TokenType.EQ,
        TokenType.NEQ,
        TokenType.LT,
        TokenType.GT,
        TokenType.LTE,
        TokenType.GTE,
        TokenType.LIKE,
        TokenType.ILIKE,
        TokenType.BETWEEN,
    }
)
#: What may follow a parameter: tokens that end the comparison's operand.
_ENDS_OPERAND = frozenset(
    getattr(TokenType, name)
    for name in (
        "AND",
        "OR",
        "R_PAREN",
        "ORDER_BY",
        "GROUP_BY",
        "HAVING",
        "LIMIT",
        "OFFSET",
        "UNION",
        "EXCEPT",
        "INTERSECT",
        "WHERE",
        "JOIN",
        "INNER",
        "LEFT",
        "RIGHT",
        "FULL",
        "CROSS",
        "SEMICOLON",
        "THEN",
        "ELSE",
        "END",
        "WHEN",
        "WINDOW",
        "QUALIFY",
    )
    if hasattr(TokenType, name)
)
_MAX_INT_DIGITS = 9
#: Per process: a consumer cannot guess the sentinels (they would only make the shape
#: unshareable: a sentinel found in the consumer's own text or plan disables sharing).
_NONCE = secrets.token_hex(4)
_STRING_SENTINEL = "gwsv" + _NONCE + "x{i}z"
_INT_SENTINEL = "9" + str(int(_NONCE, 16) % 10**4).zfill(4) + "{i:04d}"


@dataclass(frozen=True, slots=True)
class Shape:
    """The consumer SQL with its parameters cut out."""

    #: The text with each parameter replaced by its kind: the cache key.
    key: str
    #: The parameters in order: (kind ``s`` or ``i``, value).
    values: tuple[tuple[str, str], ...]
    #: The text with each parameter replaced by its sentinel: what the template plans.
    sentinel_sql: str


def shape_of(sql: str, dialect: str) -> Shape | None:
    """The shape of ``sql``, or None when it has no parameters (or does not tokenize:
    the planner then reports the error)."""
    try:
        tokens = Dialect.get_or_raise(dialect).tokenize(sql)
    except SqlglotError:
        return None
    spans: list[tuple[int, int, str, str]] = []
    for i, token in enumerate(tokens):
        kind = _parameter_kind(sql, token)
        if kind is None or not _after_comparison(tokens, i) or not _operand_ends(tokens, i):
            continue
        spans.append((token.start, token.end + 1, kind, token.text))
    if not spans:
        return None
    key_parts: list[str] = []
    sentinel_parts: list[str] = []
    values: list[tuple[str, str]] = []
    last = 0
    for n, (start, end, kind, value) in enumerate(spans):
        key_parts += [sql[last:start], "\x00" + kind]
        sentinel_parts += [sql[last:start], _sentinel_literal(kind, n, dialect)]
        values.append((kind, value))
        last = end
    key_parts.append(sql[last:])
    sentinel_parts.append(sql[last:])
    sentinel_sql = "".join(sentinel_parts)
    if any(_sentinel(k, n) in sql for n, (k, _v) in enumerate(values)):
        return None
    return Shape("".join(key_parts), tuple(values), sentinel_sql)


def _parameter_kind(sql: str, token: Token) -> str | None:
    raw = sql[token.start : token.end + 1]
    if token.token_type == TokenType.STRING and raw.startswith("'"):
        # Not E'…', N'…', U&'…' (their own token types, or a prefix letter before).
        if token.start > 0 and (sql[token.start - 1].isalnum() or sql[token.start - 1] == "&"):
            return None
        return "s"
    if token.token_type == TokenType.NUMBER and raw.isdigit() and len(raw) <= _MAX_INT_DIGITS:
        return "i"
    return None


def _after_comparison(tokens: Sequence[Token], i: int) -> bool:
    if i == 0:
        return False
    prev = tokens[i - 1].token_type
    if prev in _COMPARISON:
        return True
    # x BETWEEN <literal> AND <this>
    return (
        prev == TokenType.AND
        and i >= 3
        and tokens[i - 3].token_type == TokenType.BETWEEN
        and tokens[i - 2].token_type in (TokenType.STRING, TokenType.NUMBER)
    )


def _operand_ends(tokens: Sequence[Token], i: int) -> bool:
    return i + 1 == len(tokens) or tokens[i + 1].token_type in _ENDS_OPERAND


def _sentinel(kind: str, n: int) -> str:
    return (_STRING_SENTINEL if kind == "s" else _INT_SENTINEL).format(i=n)


def _sentinel_literal(kind: str, n: int, dialect: str) -> str:
    if kind == "s":
        return exp.Literal.string(_sentinel(kind, n)).sql(dialect=dialect)
    return _sentinel(kind, n)


@dataclass(frozen=True, slots=True)
class Template:
    """A plan whose SQL carries sentinels where the parameters go."""

    plan: Plan
    kinds: tuple[str, ...]
    #: Matches any sentinel as the backend dialect renders it.
    pattern: re.Pattern[str]

    def bind(self, values: tuple[tuple[str, str], ...]) -> Plan:
        """The plan for ``values`` (same kinds, same order: the shape key says so)."""
        rendered = {
            _rendered(kind, n, self.plan.dialect): _render(kind, value, self.plan.dialect)
            for n, (kind, value) in enumerate(values)
        }

        def sub(text: str) -> str:
            return self.pattern.sub(lambda m: rendered[m.group(0)], text)

        return replace(self.plan, sql=sub(self.plan.sql), audit_sql=sub(self.plan.audit_sql))


def make_template(plan: Plan, shape: Shape, exact: Plan) -> Template | None:
    """A template from ``plan`` (planned from ``shape.sentinel_sql``), or None unless
    binding the request's own values reproduces ``exact``, its full plan, and every
    sentinel is in the SQL."""
    kinds = tuple(kind for kind, _ in shape.values)
    sentinels = [_rendered(kind, n, plan.dialect) for n, kind in enumerate(kinds)]
    if any(s not in plan.sql for s in sentinels) or any(s in exact.sql for s in sentinels):
        return None
    alternatives = "|".join(re.escape(s) for s in sorted(sentinels, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w.]){alternatives}(?![\w.])")
    template = Template(plan, kinds, pattern)
    try:
        bound = template.bind(shape.values)
    except KeyError:
        return None
    return template if bound == exact else None


def _rendered(kind: str, n: int, dialect: str) -> str:
    """A sentinel as it appears in the backend SQL."""
    return _render(kind, _sentinel(kind, n), dialect)


def _render(kind: str, value: str, dialect: str) -> str:
    if kind == "s":
        return exp.Literal.string(value).sql(dialect=dialect)
    if not value.isdigit():  # shape_of only lets digits through; never splice anything else
        raise ValueError("not an integer literal")
    return value
