"""Cap the row limit: a consumer may ask for fewer rows than the policy allows, never more.

The outer LIMIT becomes ``min(consumer limit, allowed)``; when the consumer asked for
more than allowed (or nothing), the query fetches ``allowed + 1`` rows so that
truncation is *detected* rather than guessed (datasette's trick).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

__all__ = ["RowCap", "cap_row_limit"]


@dataclass(frozen=True, slots=True)
class RowCap:
    #: Rows the consumer may receive.
    allowed: int
    #: Rows to fetch from the backend; ``allowed + 1`` when truncation must be detected.
    fetch: int

    def is_truncated(self, fetched: int) -> bool:
        return fetched > self.allowed


def cap_row_limit(query: exp.Query, allowed: int) -> RowCap:
    """Set the outermost LIMIT of ``query`` in place. validate.py has already checked
    that every LIMIT/FETCH is a non-negative integer literal."""
    current = query.args.get("limit")
    requested: int | None = None
    if isinstance(current, exp.Limit):
        requested = int(current.expression.this)
    elif isinstance(current, exp.Fetch):
        count = current.args.get("count")
        requested = int(count.this) if isinstance(count, exp.Literal) else 1
    if requested is not None and requested <= allowed:
        cap = RowCap(allowed=requested, fetch=requested)
    else:
        cap = RowCap(allowed=allowed, fetch=allowed + 1)
    query.set("limit", exp.Limit(expression=exp.Literal.number(cap.fetch)))
    return cap
