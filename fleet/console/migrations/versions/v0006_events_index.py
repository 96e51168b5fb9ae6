"""Events: drop the index on ``station_id`` alone; ``uq_event`` (station_id, event_id) serves
every lookup by station, and one index fewer is a cheaper insert of each event.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_events_station_id", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_station_id", "events", ["station_id"])
