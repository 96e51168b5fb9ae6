"""Catalog drafts: uploaded, validated catalogs waiting to be signed (and who signed them).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_drafts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("catalog_version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("uploaded_by", sa.String(64), nullable=False),
        sa.Column("uploaded_at", sa.Float(), nullable=False),
        sa.Column("signed_by", sa.String(64), nullable=True),
        sa.Column("signed_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_catalog_drafts_sha256", "catalog_drafts", ["sha256"])


def downgrade() -> None:
    op.drop_index("ix_catalog_drafts_sha256", table_name="catalog_drafts")
    op.drop_table("catalog_drafts")
