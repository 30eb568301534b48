"""Respond: rows → the exact JSON bytes sent to the consumer.

The body is serialised once, here, so that its SHA-256 can be written into the audit
record before the same bytes leave (the digest proves what was delivered).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from gateway.domain import ResultColumn

__all__ = ["encode_result", "json_rows", "json_value", "sha256_hex"]


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
) -> bytes:
    """The result object's exact bytes. ``rows`` come from :func:`json_rows`;
    ``row_salt`` lets the consumer prove single rows later (gateway/audit/rows.py)."""
    body = {
        "audit_id": audit_id,
        "purpose": purpose,
        "policy_version": policy_version,
        "columns": [c.to_json() for c in columns],
        "rows": rows,
        "row_count": len(rows),
        "truncated": truncated,
        "row_salt": base64.b64encode(row_salt).decode("ascii"),
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8"
    )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
