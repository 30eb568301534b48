"""Fixtures for the audit store tests: one store per backend, PostgreSQL ones each in a
schema of their own (other test runs use the same database concurrently)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from audit_support import drop_pg_schema, new_pg_schema, test_signer

from gateway.audit import AuditStore, open_audit_store
from gateway.audit.signing import CheckpointSigner

_POSTGRES = pytest.param("postgres", marks=pytest.mark.services)


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[tuple[str, str]]:
    """(dsn, schema) for a schema that is dropped afterwards."""
    schema = new_pg_schema()
    try:
        yield pg_dsn, schema
    finally:
        drop_pg_schema(pg_dsn, schema)


def _location(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "memory":
        return "memory:"
    if kind == "sqlite":
        return f"sqlite:{tmp_path / 'audit.sqlite'}"
    dsn, schema = request.getfixturevalue("pg_schema")
    return f"{dsn}?schema={schema}"


@pytest.fixture(params=["memory", "sqlite", _POSTGRES])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An audit location of each kind (the PostgreSQL one skips without the service)."""
    return _location(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", _POSTGRES])
def durable_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A location whose log outlives the store object (so it can be reopened or edited
    behind the store's back)."""
    return _location(request.param, request, tmp_path)


@pytest.fixture
def signer() -> CheckpointSigner:
    """The deterministic TEST key every store of these tests is created with."""
    return test_signer()


@pytest.fixture
def store(location: str, signer: CheckpointSigner) -> Iterator[AuditStore]:
    s = open_audit_store(location, signer)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def durable_store(durable_location: str, signer: CheckpointSigner) -> Iterator[AuditStore]:
    s = open_audit_store(durable_location, signer)
    try:
        yield s
    finally:
        s.close()
