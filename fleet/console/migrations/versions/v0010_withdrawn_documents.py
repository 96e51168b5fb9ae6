"""Documents withdrawn at the centre (``fleet document withdraw``, the console's verify page):
their verification page says "withdrawn" (:mod:`fleet.console.documents`).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "withdrawn_documents",
        sa.Column("doc_id", sa.String(40), primary_key=True),
        sa.Column("withdrawn_at", sa.Float(), nullable=False),
        sa.Column("withdrawn_by", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("withdrawn_documents")
