"""Printed documents at the centre: what a certificate's QR code says when someone checks it, and
withdrawing a document.

:func:`check` answers the public verification page (:mod:`fleet.console.verify_pages`) and
``fleet document check``: the token's signature against the stations' document-signing keys
(enrolled ones from the database, revoked ones too, and ``*.pub`` files of the console's
``--token-keys`` folder), then what the centre knows since: a document withdrawn here
(:func:`withdraw`, audited) is :attr:`Status.WITHDRAWN`; a document whose station's key was
revoked on D and that claims a time of issue after D is :attr:`Status.KEY_REVOKED` (before D it
stays valid: the key was still the station's then; the page says the key was revoked since).

Nothing here ever sees a name or an ID number: the token carries a hash of the content, the
title, the issuing agency, the document number and the time, and nothing else.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Float, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fleet.console.enroll import Enrolment
from fleet.console.store import Base, audit
from flows.tokens import TokenClaims, Verdict, key_id, load_public, token_of, verify

DOC_ID_MAX = 40
REASON_MAX = 200


class DocumentError(ValueError):
    """A withdrawal that cannot be done (unknown form of number, no reason, done already)."""


class WithdrawnDocument(Base):
    """A document withdrawn at the centre: its number, when, by whom and why."""

    __tablename__ = "withdrawn_documents"
    doc_id: Mapped[str] = mapped_column(String(DOC_ID_MAX), primary_key=True)
    withdrawn_at: Mapped[float] = mapped_column(Float)
    withdrawn_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(REASON_MAX))


class Status(enum.StrEnum):
    VALID = "valid"
    NOT_VALID = "not_valid"  # malformed, altered, or signed by a key the centre does not know
    WITHDRAWN = "withdrawn"
    KEY_REVOKED = "key_revoked"  # signed after its station's key was revoked


@dataclass(frozen=True)
class StationKey:
    public: Ed25519PublicKey
    station: str  # site/station, or the key file's name for a key given as a file
    revoked_at: float | None = None


@dataclass(frozen=True)
class Verification:
    status: Status
    claims: TokenClaims | None = None
    station: str = ""
    key_revoked_at: float | None = None
    withdrawn_at: float | None = None

    @property
    def valid(self) -> bool:
        return self.status is Status.VALID


def station_keys(db: Session, folder: Path | None = None) -> dict[str, StationKey]:
    """Key id -> the station's document-signing key, revoked ones included (with the date)."""
    keys: dict[str, StationKey] = {}
    if folder is not None and folder.is_dir():
        for path in sorted(folder.glob("*.pub")):
            try:
                public = load_public(path.read_bytes())
            except (OSError, ValueError):
                continue
            keys[key_id(public)] = StationKey(public, path.stem)
    rows = db.execute(
        select(Enrolment.site, Enrolment.station, Enrolment.doc_key_pem, Enrolment.revoked_at)
        .where(Enrolment.doc_key_pem.is_not(None))
    )  # fmt: skip
    for site, station, pem, revoked_at in rows:
        try:
            public = load_public(str(pem).encode())
        except ValueError:
            continue
        keys[key_id(public)] = StationKey(public, f"{site}/{station}", revoked_at)
    return keys


def check(db: Session, token: str, folder: Path | None = None) -> Verification:
    """What the centre says of ``token`` (or of a verification URL holding one)."""
    keys = station_keys(db, folder)
    verdict, claims = verify(token, {kid: k.public for kid, k in keys.items()})
    if verdict is not Verdict.VALID or claims is None:
        return Verification(Status.NOT_VALID)
    key = keys[token_of(token).rsplit(".", 1)[-1]]
    row = db.get(WithdrawnDocument, claims.doc_id)
    if row is not None:
        return Verification(
            Status.WITHDRAWN, claims, key.station, key.revoked_at, withdrawn_at=row.withdrawn_at
        )
    if key.revoked_at is not None and claims.issued > key.revoked_at:
        return Verification(Status.KEY_REVOKED, claims, key.station, key.revoked_at)
    return Verification(Status.VALID, claims, key.station, key.revoked_at)


def _doc_id(text: str) -> str:
    doc_id = text.strip().upper()
    if not doc_id or len(doc_id) > DOC_ID_MAX or not all(c.isalnum() or c == "-" for c in doc_id):
        raise DocumentError(f"{text[:DOC_ID_MAX]!r} is not a document number")
    return doc_id


def withdraw(db: Session, doc_id: str, actor: str, reason: str, now: float | None = None) -> str:
    """Mark a document withdrawn (audited); its verification page then says so."""
    number = _doc_id(doc_id)
    reason = reason.strip()[:REASON_MAX]
    if not reason:
        raise DocumentError("say why the document is withdrawn")
    if db.get(WithdrawnDocument, number) is not None:
        raise DocumentError(f"{number} is withdrawn already")
    at = time.time() if now is None else now
    db.add(WithdrawnDocument(doc_id=number, withdrawn_at=at, withdrawn_by=actor, reason=reason))
    audit(db, actor, "withdraw_document", f"document/{number}", reason=reason)
    return number


def withdrawn(db: Session, limit: int = 100) -> list[dict[str, Any]]:
    rows = db.scalars(
        select(WithdrawnDocument).order_by(WithdrawnDocument.withdrawn_at.desc()).limit(limit)
    )
    return [
        {"doc_id": r.doc_id, "at": r.withdrawn_at, "by": r.withdrawn_by, "reason": r.reason}
        for r in rows
    ]
