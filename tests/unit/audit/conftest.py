"""Fixtures for the audit store tests: one store per backend, PostgreSQL ones each in a
schema of their own (other test runs use the same database concurrently)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from audit_support import drop_pg_schema, new_pg_schema

from gateway.audit import AuditStore, open_audit_store


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[tuple[str, str]]:
    """(dsn, schema) for a schema that is dropped afterwards."""
    schema = new_pg_schema()
    try:
        yield pg_dsn, schema
    finally:
        drop_pg_schema(pg_dsn, schema)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An audit location of each kind (the PostgreSQL one skips without the service)."""
    if request.param == "memory":
        return "memory:"
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'audit.sqlite'}"
    dsn, schema = request.getfixturevalue("pg_schema")
    return f"{dsn}?schema={schema}"


@pytest.fixture
def store(location: str) -> Iterator[AuditStore]:
    s = open_audit_store(location)
    try:
        yield s
    finally:
        s.close()
