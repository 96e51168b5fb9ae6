"""Terminal enrolment: enrolled stations, every certificate issued to them, revocation.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrolments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("station", sa.String(64), nullable=False, unique=True),
        sa.Column("serial", sa.String(40), nullable=False),
        sa.Column("not_after", sa.Float(), nullable=False),
        sa.Column("doc_key_pem", sa.Text(), nullable=True),
        sa.Column("doc_key_id", sa.String(16), nullable=True),
        sa.Column("enrolled_at", sa.Float(), nullable=False),
        sa.Column("enrolled_by", sa.String(64), nullable=False),
        sa.Column("renewed_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.Column("revoked_by", sa.String(64), nullable=True),
        sa.Column("revoke_reason", sa.String(200), nullable=True),
    )
    op.create_index("ix_enrolments_not_after", "enrolments", ["not_after"])
    op.create_index("ix_enrolments_doc_key_id", "enrolments", ["doc_key_id"])
    op.create_table(
        "enrolment_certificates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "enrolment_id",
            sa.Integer(),
            sa.ForeignKey("enrolments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("serial", sa.String(40), nullable=False, unique=True),
        sa.Column("not_after", sa.Float(), nullable=False),
        sa.Column("issued_at", sa.Float(), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
    )
    op.create_index(
        "ix_enrolment_certificates_enrolment_id", "enrolment_certificates", ["enrolment_id"]
    )
    op.create_index(
        "ix_enrolment_certificates_revoked_at", "enrolment_certificates", ["revoked_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_enrolment_certificates_revoked_at", table_name="enrolment_certificates")
    op.drop_index("ix_enrolment_certificates_enrolment_id", table_name="enrolment_certificates")
    op.drop_table("enrolment_certificates")
    op.drop_index("ix_enrolments_doc_key_id", table_name="enrolments")
    op.drop_index("ix_enrolments_not_after", table_name="enrolments")
    op.drop_table("enrolments")
