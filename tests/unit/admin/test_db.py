"""The administration store: migrations create exactly the declared schema, opening is
idempotent and safe when several processes start together, and change counters work."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from gateway.admin.db import MIGRATIONS, AdminDb, open_admin_db
from gateway.admin.schema import metadata
from gateway.errors import ConfigurationError


def test_migrations_create_exactly_the_declared_schema(admin_db: AdminDb) -> None:
    with admin_db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(context, metadata)
    assert diff == []
    tables = set(inspect(admin_db.engine).get_table_names())
    assert set(metadata.tables) <= tables
    assert "alembic_version" in tables


def test_opening_again_changes_nothing(durable_admin_location: str) -> None:
    first = open_admin_db(durable_admin_location)
    with first.transaction() as conn:
        first.bump(conn, "grants")
    first.close()
    second = open_admin_db(durable_admin_location)
    try:
        assert second.epoch("grants") == 1
        with second.read() as conn:
            (version,) = conn.execute(text("SELECT version_num FROM alembic_version")).one()
        head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
        assert version == head and head is not None
    finally:
        second.close()


def test_epochs_count_changes_per_name(admin_db: AdminDb) -> None:
    assert admin_db.epoch("grants") == 0
    with admin_db.transaction() as conn:
        assert admin_db.bump(conn, "grants") == 1
        assert admin_db.bump(conn, "grants") == 2
        assert admin_db.bump(conn, "policy") == 1
    assert admin_db.epoch("grants") == 2
    assert admin_db.epoch("policy") == 1


def test_a_failed_transaction_bumps_nothing(admin_db: AdminDb) -> None:
    with pytest.raises(RuntimeError), admin_db.transaction() as conn:
        admin_db.bump(conn, "grants")
        raise RuntimeError("abort")
    assert admin_db.epoch("grants") == 0


def _open_and_count(location: str) -> int:
    db = open_admin_db(location)
    try:
        with db.transaction() as conn:
            return db.bump(conn, "started")
    finally:
        db.close()


def test_processes_starting_together_migrate_once(tmp_path: Path) -> None:
    location = f"sqlite:{tmp_path / 'admin.sqlite'}"
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=4, mp_context=ctx) as pool:
        results = sorted(pool.map(_open_and_count, [location] * 4))
    assert results == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "location",
    ["mysql://root@127.0.0.1/test", "sqlite:", "postgresql://x@y/z?schema=a;drop"],
)
def test_unsupported_locations_are_refused(location: str) -> None:
    with pytest.raises(ConfigurationError):
        open_admin_db(location)
