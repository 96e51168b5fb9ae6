"""Catalog drafts in the console's database: each catalog uploaded and found valid, kept as it was
sent (byte for byte: its SHA-256 is what terminals will check), with who uploaded it and when,
and, once it is signed into the repository, who signed it and when.

The table is made by migration ``0004``
(``fleet/console/migrations/versions/v0004_catalog_drafts.py``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Integer, LargeBinary, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fleet.console.store import Base


class CatalogDraft(Base):
    __tablename__ = "catalog_drafts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target: Mapped[str] = mapped_column(String(200))  # the TUF target name, e.g. catalog.toml
    catalog_version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    length: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    filename: Mapped[str] = mapped_column(String(200), default="")  # as uploaded, for the reader
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[float] = mapped_column(Float)
    signed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    signed_at: Mapped[float | None] = mapped_column(Float, nullable=True)


def draft_view(row: CatalogDraft) -> dict[str, Any]:
    """A draft as the pages and the API show it (without its content)."""
    return {
        "id": row.id,
        "target": row.target,
        "version": row.catalog_version,
        "sha256": row.sha256,
        "length": row.length,
        "filename": row.filename,
        "uploaded_by": row.uploaded_by,
        "uploaded_at": row.uploaded_at,
        "signed_by": row.signed_by,
        "signed_at": row.signed_at,
    }


def recent_drafts(db: Session, limit: int = 30) -> list[dict[str, Any]]:
    rows = db.scalars(select(CatalogDraft).order_by(CatalogDraft.id.desc()).limit(limit))
    return [draft_view(row) for row in rows]


def signatures(db: Session) -> dict[tuple[str, str], tuple[str, float]]:
    """(target, sha256) -> (who signed it, when), for every draft signed through the console."""
    rows = db.execute(
        select(
            CatalogDraft.target, CatalogDraft.sha256, CatalogDraft.signed_by, CatalogDraft.signed_at
        ).where(CatalogDraft.signed_at.is_not(None))
    )
    return {(t, s): (by or "", float(at or 0.0)) for t, s, by, at in rows}
