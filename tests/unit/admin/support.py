"""Helpers shared by the administration tests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import argon2
import pytest

from gateway.errors import AuthenticationError

#: Cheap Argon2id parameters: the tests check behaviour, not the work factor.
FAST_HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


class FakeClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@contextmanager
def refused(reason: str) -> Iterator[None]:
    """Expect an AuthenticationError whose audited (internal) reason matches ``reason``;
    its public message is always the same vague one."""
    with pytest.raises(AuthenticationError) as info:
        yield
    assert re.search(reason, info.value.reason), info.value.reason
    assert info.value.detail == str(AuthenticationError.PUBLIC_DETAIL)
