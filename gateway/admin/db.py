"""Open the administration store and keep its schema current.

``open_admin_db(location)`` accepts ``memory:`` (tests), ``sqlite:<path>`` (the embedded
default, ``<state>/admin.sqlite``) and ``postgresql://…[?schema=<name>]`` (production; the
schema is created if missing). Opening runs the Alembic migrations up to the newest
revision, under a lock, so that several gateway processes starting together migrate once.

The store also keeps one counter per kind of shared state (:meth:`AdminDb.epoch`,
:meth:`AdminDb.bump`): a change to grants, accounts or the policy bumps its counter in
the same transaction, and every process compares counters to know when a cached decision
is stale — across replicas, without restarting.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from gateway.admin.schema import change_epochs
from gateway.dsn import parse_dsn
from gateway.errors import BackendUnavailableError, ConfigurationError

__all__ = ["MIGRATIONS", "AdminDb", "head_revision", "open_admin_db", "stored_revision"]

#: The Alembic script directory shipped with the package.
MIGRATIONS = Path(__file__).parent / "migrations"

#: pg_advisory_lock key of the migration (an arbitrary constant of this application).
_PG_MIGRATION_LOCK = 0x67770001


class AdminDb:
    """The administration store: a SQLAlchemy engine with the schema migrated."""

    def __init__(self, engine: Engine, *, lock_path: Path | None = None) -> None:
        self.engine = engine
        self._lock_path = lock_path

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction; commits on success, rolls back on any exception. Database
        errors become BackendUnavailableError (503): no change was made."""
        nothing = "The administration store is unavailable; nothing was changed."
        with _unavailable(nothing), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading (its transaction is rolled back at the end)."""
        with (
            _unavailable("The administration store is unavailable."),
            self.engine.connect() as conn,
        ):
            yield conn

    def epoch(self, name: str) -> int:
        """The current counter of ``name`` (0 before any change)."""
        with self.read() as conn:
            value = conn.execute(
                select(change_epochs.c.epoch).where(change_epochs.c.name == name)
            ).scalar_one_or_none()
        return int(value or 0)

    @staticmethod
    def bump(conn: Connection, name: str) -> int:
        """Increment the counter of ``name`` inside the caller's transaction."""
        updated = conn.execute(
            update(change_epochs)
            .where(change_epochs.c.name == name)
            .values(epoch=change_epochs.c.epoch + 1)
            .returning(change_epochs.c.epoch)
        ).scalar_one_or_none()
        if updated is not None:
            return int(updated)
        conn.execute(insert(change_epochs).values(name=name, epoch=1))
        return 1

    def migrate(self) -> None:
        """Upgrade the schema to the newest revision (idempotent), under a lock."""
        with self._migration_lock() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    @contextmanager
    def _migration_lock(self) -> Iterator[Connection]:
        if self.dialect == "postgresql":
            with self.engine.begin() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                yield conn
            return
        if self._lock_path is None:  # in memory: one process only
            with self.engine.begin() as conn:
                yield conn
            return
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with self.engine.begin() as conn:
                yield conn
        finally:
            os.close(fd)

    def close(self) -> None:
        self.engine.dispose()


@contextmanager
def _unavailable(detail: str) -> Iterator[None]:
    """Database errors become BackendUnavailableError (503) with ``detail``; the driver's
    own text goes to the internal detail only."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise BackendUnavailableError(
            detail, internal_detail=f"{type(exc).__name__}: {exc}"
        ) from exc


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute("PRAGMA busy_timeout = 5000")
    cur.close()


def open_admin_db(location: str) -> AdminDb:
    """Open (creating and migrating if needed) the store at ``location``. Raises
    ConfigurationError for a malformed location, BackendUnavailableError when the
    database cannot be reached."""
    dsn = parse_dsn(location, kinds={"memory", "sqlite", "postgres"}, what="GATEWAY_ADMIN_DSN")
    lock_path: Path | None = None
    if dsn.kind == "memory":
        engine = create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
    elif dsn.kind == "sqlite":
        path = dsn.path
        if not path.parent.is_dir():
            raise ConfigurationError(f"GATEWAY_ADMIN_DSN: directory {path.parent} does not exist")
        engine = create_engine(f"sqlite:///{path}")
        event.listen(engine, "connect", _sqlite_pragmas)
        with engine.begin() as conn:
            conn.execute(text("PRAGMA journal_mode = WAL"))
        lock_path = path.with_name(path.name + ".migrate.lock")
    else:
        conninfo, schema = dsn.postgres_conninfo()
        url = "postgresql+psycopg://" + conninfo.split("://", 1)[1]
        connect_args: dict[str, Any] = {}
        if schema:
            _check_schema_name(schema)
            connect_args["options"] = f"-csearch_path={schema}"
        engine = create_engine(url, connect_args=connect_args, pool_pre_ping=True)
        if schema:
            try:
                with engine.begin() as conn:
                    conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            except SQLAlchemyError as exc:
                engine.dispose()
                raise BackendUnavailableError(
                    "The administration store is unavailable.",
                    internal_detail=f"{type(exc).__name__}: {exc}",
                ) from exc
    db = AdminDb(engine, lock_path=lock_path)
    try:
        db.migrate()
    except SQLAlchemyError as exc:
        db.close()
        raise BackendUnavailableError(
            "The administration store is unavailable.",
            internal_detail=f"{type(exc).__name__}: {exc}",
        ) from exc
    return db


def _check_schema_name(schema: str) -> None:
    if not (schema.replace("_", "a").isalnum() and schema.isascii() and len(schema) <= 63):
        raise ConfigurationError(
            "GATEWAY_ADMIN_DSN: schema must be letters, digits and underscores (at most 63)"
        )


def head_revision() -> str:
    """The newest migration shipped with this gateway."""
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise ConfigurationError("no administration store migrations are installed")
    return head


def stored_revision(location: str) -> str | None:
    """The migration the store at ``location`` is at, without changing anything (no
    file, schema or table is created; None when it was never migrated). For ``gateway
    doctor``. Raises ConfigurationError for a malformed location or a SQLite file that
    does not exist, BackendUnavailableError when the database cannot be read."""
    from alembic.runtime.migration import MigrationContext

    dsn = parse_dsn(location, kinds={"memory", "sqlite", "postgres"}, what="GATEWAY_ADMIN_DSN")
    if dsn.kind == "memory":
        return None
    if dsn.kind == "sqlite":
        if not dsn.path.exists():
            raise ConfigurationError(f"GATEWAY_ADMIN_DSN: {dsn.path} does not exist yet")
        engine = create_engine(f"sqlite:///file:{dsn.path}?mode=ro&uri=true")
    else:
        conninfo, schema = dsn.postgres_conninfo()
        connect_args: dict[str, Any] = {}
        if schema:
            _check_schema_name(schema)
            connect_args["options"] = f"-csearch_path={schema}"
        engine = create_engine(
            "postgresql+psycopg://" + conninfo.split("://", 1)[1], connect_args=connect_args
        )
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise BackendUnavailableError(
            "The administration store is unavailable.",
            internal_detail=f"{type(exc).__name__}: {exc}",
        ) from exc
    finally:
        engine.dispose()
