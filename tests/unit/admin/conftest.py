"""The administration store on each dialect: in memory, a SQLite file, and a PostgreSQL
schema of this test run."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.admin.db import AdminDb, open_admin_db
from tests.conftest import Scratch


def _location(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> str:
    if kind == "memory":
        return "memory:"
    if kind == "sqlite":
        return f"sqlite:{tmp_path / 'admin.sqlite'}"
    pg_dsn: str = request.getfixturevalue("pg_dsn")
    scratch: Scratch = request.getfixturevalue("scratch")
    # A schema per test (registered for dropping at the end of the session).
    schema = scratch.pg_schema(pg_dsn, f"t_admin_{secrets.token_hex(4)}")
    return f"{pg_dsn}?schema={schema}"


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def admin_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _location(request, request.param, tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def durable_admin_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store that outlives its engine (reopened by the test)."""
    return _location(request, request.param, tmp_path)


@pytest.fixture
def admin_db(admin_location: str) -> Iterator[AdminDb]:
    db = open_admin_db(admin_location)
    yield db
    db.close()
