"""Bad reviews followed up (差评回访): one row per rating of one or two stars, unique by (station,
event id) so that a redelivered rating, or one taken by another console, makes no second row
(:mod:`fleet.console.followups`). Ratings stored before this revision are not followed up: the
practice counts from when a bad review reaches the people who answer it, and months-old ones
would bury the new.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "followups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "station_id",
            sa.Integer(),
            sa.ForeignKey("stations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("txn_id", sa.String(64), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("rated_at", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.UniqueConstraint("station_id", "event_id", name="uq_followup_event"),
    )
    op.create_index("ix_followups_state_created", "followups", ["state", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_followups_state_created", table_name="followups")
    op.drop_table("followups")
