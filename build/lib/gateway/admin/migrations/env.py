"""Alembic environment of the administration store: migrations run on the connection
gateway.admin.db hands in (``config.attributes["connection"]``), never on a URL of their
own, so the lock taken around them covers them."""

from __future__ import annotations

from alembic import context

from gateway.admin.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
