"""``open_audit_store(location, signer)``: the factory, kept apart from the Protocol so that
the implementations import the Protocol and nothing imports them back."""

from __future__ import annotations

from gateway.audit.signing import CheckpointSigner
from gateway.audit.store.protocol import AuditStore
from gateway.dsn import parse_dsn

__all__ = ["open_audit_store"]


def open_audit_store(location: str, signer: CheckpointSigner) -> AuditStore:
    """Open (creating if needed) the store named by ``location`` (a DSN, see
    :mod:`gateway.dsn`):

    * ``memory:`` - a new, empty in-process store (tests and demos; not durable);
    * ``sqlite:<path>`` - a SQLite file (created with mode 0600 if missing; its directory
      must exist);
    * ``postgresql://...`` or ``postgres://...`` - a libpq URL; an optional ``schema``
      query parameter (default ``public``) names the schema holding the tables, e.g.
      ``postgresql://gw@db/gateway?schema=audit``. The schema is created if missing.

    ``signer`` signs the checkpoints; it must be the log's current key (a store created
    by another key is refused: rotate with ``gateway audit rotate-key`` instead).

    Raises ConfigurationError for an unknown or unsupported form, an existing store with
    another schema version or signing key, AuditUnavailableError when the storage cannot
    be reached.
    """
    dsn = parse_dsn(location, kinds={"memory", "sqlite", "postgres"}, what="GATEWAY_AUDIT_DSN")
    # Imported here: a SQLite deployment never loads the PostgreSQL driver, and the other
    # way round.
    if dsn.kind == "memory":
        from gateway.audit.store.memory import MemoryAuditStore

        return MemoryAuditStore(signer)
    if dsn.kind == "sqlite":
        from gateway.audit.store.sqlite import open_sqlite_store

        return open_sqlite_store(dsn.path, signer)
    from gateway.audit.store.postgres import PostgresDialect
    from gateway.audit.store.sql import SqlAuditStore

    conninfo, schema = dsn.postgres_conninfo()
    return SqlAuditStore(PostgresDialect(conninfo, schema=schema or "public"), signer)
