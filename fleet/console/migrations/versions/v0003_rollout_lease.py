"""Rollouts driven by one console process: its lease, and the requests others leave for it.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    lease = op.create_table(
        "rollout_lease",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("holder", sa.String(100), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("acquired_at", sa.Float(), nullable=False),
    )
    op.bulk_insert(lease, [{"id": 1, "holder": "", "expires_at": 0.0, "acquired_at": 0.0}])
    op.create_table(
        "rollout_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rollout_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("done_at", sa.Float(), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
    )
    op.create_index("ix_rollout_requests_rollout_id", "rollout_requests", ["rollout_id"])
    op.create_index("ix_rollout_requests_done_at", "rollout_requests", ["done_at"])


def downgrade() -> None:
    op.drop_index("ix_rollout_requests_done_at", table_name="rollout_requests")
    op.drop_index("ix_rollout_requests_rollout_id", table_name="rollout_requests")
    op.drop_table("rollout_requests")
    op.drop_table("rollout_lease")
