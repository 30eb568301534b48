"""Cap the row limit: a consumer may ask for fewer rows than the policy allows, never more.

The outer LIMIT becomes ``min(consumer limit, allowed)``; when the consumer asked for
more than allowed (or nothing), the query fetches ``allowed + 1`` rows so that
truncation is *detected* rather than guessed (datasette's trick).

The cap goes on the outermost query only (design.md "Row limits"), so it bounds the rows
returned and nothing else. It runs after rewrite/portable.py, which leaves nothing at the
root that a target's generator would restructure around it (DISTINCT ON becomes an outer
query with its own ORDER BY; WITH TIES becomes a rank bound), so the LIMIT set here is the
outermost LIMIT of the SQL the backend runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlglot import exp

from gateway.errors import UnsupportedStatementError

__all__ = ["LimitSource", "RowCap", "cap_row_limit"]


class LimitSource(StrEnum):
    """Who set the row limit of a response (its ``row_limit_by`` member): the
    provider's policy (a ``p3`` line or the catalog default), the gateway's ceiling
    (``GATEWAY_MAX_ROWS_CEILING``), the request's ``max_rows``, or the query's own
    ``LIMIT``. Only the first three truncate: a query's LIMIT is what it asked for."""

    POLICY = "policy"
    CEILING = "gateway"
    MAX_ROWS = "max_rows"
    QUERY = "query"


@dataclass(frozen=True, slots=True)
class RowCap:
    #: Rows the consumer may receive.
    allowed: int
    #: Rows to fetch from the backend; ``allowed + 1`` when truncation must be detected.
    fetch: int
    #: Who set ``allowed``.
    by: LimitSource = LimitSource.POLICY

    def is_truncated(self, fetched: int) -> bool:
        return fetched > self.allowed


def cap_row_limit(query: exp.Query, allowed: int, by: LimitSource = LimitSource.POLICY) -> RowCap:
    """Set the outermost LIMIT of ``query`` in place; ``by`` says who set ``allowed``.
    validate.py has already checked that every LIMIT/FETCH is a non-negative integer
    literal."""
    current = query.args.get("limit")
    requested: int | None = None
    if isinstance(current, exp.Fetch) and _with_ties(current):
        # portable.py rewrites WITH TIES; replacing it by a LIMIT would drop the ties.
        raise UnsupportedStatementError("FETCH … WITH TIES could not be kept for this dataset.")
    if isinstance(current, exp.Limit):
        requested = int(current.expression.this)
    elif isinstance(current, exp.Fetch):
        count = current.args.get("count")
        requested = int(count.this) if isinstance(count, exp.Literal) else 1
    if requested is not None and requested <= allowed:
        cap = RowCap(allowed=requested, fetch=requested, by=LimitSource.QUERY)
    else:
        cap = RowCap(allowed=allowed, fetch=allowed + 1, by=by)
    query.set("limit", exp.Limit(expression=exp.Literal.number(cap.fetch)))
    return cap


def _with_ties(fetch: exp.Fetch) -> bool:
    options = fetch.args.get("limit_options")
    return isinstance(options, exp.LimitOptions) and bool(options.args.get("with_ties"))
