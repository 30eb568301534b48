"""Step 6, respond: rows → the exact JSON bytes sent to the consumer.

The body is serialised once, here, so that its SHA-256 can be written into the audit
record before the same bytes leave (the digest proves what was delivered), together with
the root over the salted row hashes (one row can later be proved delivered or not).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

from gateway.audit.rows import row_salt, rows_root
from gateway.domain import ResultColumn
from gateway.query.state import QueryState

__all__ = [
    "Respond",
    "encode_result",
    "iso_timestamps",
    "json_rows",
    "json_value",
    "sha256_hex",
]


def json_value(value: Any) -> Any:
    """One cell as a JSON value; the same logical value gives the same JSON on every
    backend (drivers differ: Decimal from MySQL sums, date objects vs ISO text)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None  # JSON has no Infinity/NaN; an undefined result is SQL NULL here
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


#: SQLite's own timestamp text, ``YYYY-MM-DD HH:MM:SS[.fff]``: ISO 8601 but for the
#: separator, which every other backend's driver sends as ``T``.
_SPACE_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2}(\.\d+)?)?")


def iso_timestamps(rows: list[list[Any]], columns: Sequence[ResultColumn]) -> list[list[Any]]:
    """``rows`` (in place) with the text of every ``timestamp`` column in ISO 8601's
    ``YYYY-MM-DDTHH:MM:SS`` form, as the drivers of the other backends give it."""
    positions = [i for i, c in enumerate(columns) if c.type == "timestamp"]
    if not positions:
        return rows
    for row in rows:
        for i in positions:
            value = row[i] if i < len(row) else None
            if isinstance(value, str) and _SPACE_TIMESTAMP.fullmatch(value):
                row[i] = value.replace(" ", "T", 1)
    return rows


def json_rows(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Rows as the JSON values the response carries (and the row commitment hashes)."""
    return [[json_value(v) for v in row] for row in rows]


def encode_result(
    *,
    audit_id: str,
    columns: Sequence[ResultColumn],
    rows: list[list[Any]],
    truncated: bool,
    purpose: str,
    policy_version: str,
    row_salt: bytes,
    row_limit: int | None = None,
    row_limit_by: str | None = None,
) -> bytes:
    """The result object's exact bytes. ``rows`` come from :func:`json_rows`;
    ``row_salt`` lets the consumer prove single rows later (gateway/audit/rows.py).

    ``row_limit`` is the most rows this response could hold and ``row_limit_by`` who
    set it (gateway/query/rewrite/limit.py ``LimitSource``): with ``truncated`` true,
    ``"policy"`` means capped by the provider's policy, ``"max_rows"`` truncated at the
    request's own ``max_rows``, ``"gateway"`` capped by the deployment's ceiling."""
    body: dict[str, Any] = {
        "audit_id": audit_id,
        "purpose": purpose,
        "policy_version": policy_version,
        "columns": [c.to_json() for c in columns],
        "rows": rows,
        "row_count": len(rows),
        "truncated": truncated,
        "row_limit": row_limit,
        "row_limit_by": row_limit_by,
        "row_salt": base64.b64encode(row_salt).decode("ascii"),
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8"
    )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Respond:
    name: ClassVar[str] = "respond"
    span: ClassVar[bool] = True

    def __init__(self, row_key: bytes) -> None:
        self._row_key = row_key

    def __call__(self, state: QueryState) -> QueryState:
        plan = state.need_plan()
        rows = state.need_rows()
        salt = row_salt(self._row_key, state.context.audit_id)
        body = encode_result(
            audit_id=state.context.audit_id,
            columns=plan.columns,
            rows=rows,
            truncated=state.truncated,
            purpose=state.request.purpose,
            policy_version=plan.policy_version,
            row_salt=salt,
            row_limit=plan.cap.allowed,
            row_limit_by=plan.cap.by.value,
        )
        return state.evolve(
            body=body, response_sha256=sha256_hex(body), rows_root=rows_root(salt, rows).hex()
        )
