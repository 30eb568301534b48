"""Fixtures for the audit store tests: one store per backend, PostgreSQL ones each in a
schema of their own (other test runs use the same database concurrently)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.audit import AuditStore, open_audit_store
from gateway.audit.signing import CheckpointSigner
from tests.conftest import Scratch
from tests.unit.audit.support import drop_pg_schema, test_signer

_POSTGRES = pytest.param("postgres", marks=pytest.mark.services)


@pytest.fixture
def pg_schema(pg_dsn: str, scratch: Scratch) -> Iterator[tuple[str, str]]:
    """(dsn, schema) for a fresh schema of this test, named through ``scratch`` (so it is
    unique to this run and dropped at the end of the session at the latest) and dropped
    as soon as the test ends (a run creates hundreds)."""
    schema = scratch.pg_schema(pg_dsn, f"t_audit_{secrets.token_hex(4)}")
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
