"""quotas on applications and grants

Quota definitions travel with what they limit: an application asks for quotas, the
approval may lower them, the grant keeps them (``quotas`` JSON, ``{"queries_per_day":
100, ...}``); a system's quotas are in systems.toml (policy). The separate ``quotas``
table of 0001 was never written and is dropped; ``quota_usage`` stays: it is the shared
meter of every replica.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 12:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quotas", sa.JSON(), nullable=True))
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quotas", sa.JSON(), nullable=True))
    op.drop_table("quotas")


def downgrade() -> None:
    op.create_table(
        "quotas",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("quota_limit", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quotas")),
        sa.UniqueConstraint(
            "scope",
            "subject",
            "metric",
            "period",
            name=op.f("uq_quotas_scope_subject_metric_period"),
        ),
    )
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_column("quotas")
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_column("quotas")
