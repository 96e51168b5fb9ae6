"""Catalog rollouts: one row per rollout (its record as JSON), and the last ``desired`` rev issued.

Revision ID: 0002
Revises: 0001
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
        "rollouts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.Column("started_by", sa.String(64), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
    )
    op.create_index("ix_rollouts_state", "rollouts", ["state"])
    revs = op.create_table(
        "rollout_revs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("last_rev", sa.Integer(), nullable=False),
    )
    op.bulk_insert(revs, [{"id": 1, "last_rev": 0}])


def downgrade() -> None:
    op.drop_table("rollout_revs")
    op.drop_index("ix_rollouts_state", table_name="rollouts")
    op.drop_table("rollouts")
