"""Certificates revoked by serial with ``fleet ca revoke`` (the console's, a broker's, a station's
issued outside enrolment): the CRL lists them beside the enrolments' certificates
(:func:`fleet.console.enroll.revoke_certificate`).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revoked_certificates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("serial", sa.String(40), nullable=False, unique=True),
        sa.Column("common_name", sa.String(64), nullable=False),
        sa.Column("not_after", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=False),
        sa.Column("revoked_by", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
    )
    op.create_index("ix_revoked_certificates_not_after", "revoked_certificates", ["not_after"])


def downgrade() -> None:
    op.drop_index("ix_revoked_certificates_not_after", table_name="revoked_certificates")
    op.drop_table("revoked_certificates")
