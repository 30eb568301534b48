"""policy versions

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 12:11:12.784024
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policy_versions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.String(length=80), nullable=False),
        sa.Column("parent", sa.String(length=80), nullable=True),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("departments", sa.JSON(), nullable=False),
        sa.Column("acknowledged", sa.JSON(), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activated_by", sa.String(length=64), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_versions")),
    )
    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_policy_versions_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_policy_versions_version"), ["version"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_versions_version"))
        batch_op.drop_index(batch_op.f("ix_policy_versions_state"))

    op.drop_table("policy_versions")
