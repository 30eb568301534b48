"""The administration plane: people and their roles, sharing applications and the grants
they produce, reply deadlines in working days, quotas, notifications and sharing
statistics — everything the gateway enforces about *who may ask, and who must answer by
when*. State lives in the administration store (:mod:`gateway.admin.db`): SQLite embedded
by default, PostgreSQL in production, versioned with Alembic migrations.
"""
