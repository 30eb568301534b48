"""The one clock type. Code that needs the time takes a :data:`Clock` parameter (tests
pass a fake); only entry points use :func:`utc_now` as the default."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "utc_now"]

#: Returns the current time, timezone-aware (UTC).
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)
