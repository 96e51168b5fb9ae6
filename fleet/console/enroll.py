"""Terminal enrolment: which terminals the fleet CA issued a certificate to, revocation, the CRL
the broker reads, and alerts 30 days before a certificate runs out (issue #9).

- :func:`enrol` registers a station (site, station id, its document-signing public key if known)
  and issues its first client certificate and key (CN = station id,
  :meth:`fleet.trust.pki.CertificateAuthority.issue_station`). The key leaves the centre once, in
  the
  bundle (:class:`Issued`: files for ``--out DIR`` or a zip for the console's download); only the
  certificate's serial and expiry are kept.
- :func:`revoke` marks the station and every certificate issued to it (at enrolment and by
  renewals) revoked; :func:`crl_pem` signs a CRL of all revoked certificates that have not yet
  expired, for mosquitto's ``crlfile``. mosquitto reads it at start and on SIGHUP
  (``systemctl reload mosquitto``): until then a revoked certificate still connects, and a
  reload does not end connections already open.
- The console's renewal answer (:mod:`fleet.console.ingest`) asks :func:`renewal_refused` first and
  calls :func:`record_renewal` after signing, so the enrolment always names the newest
  certificate.
- :func:`expiry_alerts` (from the console's sweep) raises ``cert_expiring`` for enrolled, not
  revoked stations whose certificate runs out within 30 days, and resolves it once the station
  presents a newer one. The expiry taken is the enrolment's, or the one the station reported in
  its ``birth`` if that is earlier (a renewal that was issued but never installed).

A station id is unique across sites here: the broker's ACL knows the certificate's CN only.
Tables (migration ``0005``): ``enrolments`` and ``enrolment_certificates``; (``0009``)
``revoked_certificates``, what ``fleet ca revoke`` revoked by serial (:func:`revoke_certificate`).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Float, ForeignKey, Integer, String, Text, and_, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fleet.console.store import Alert, Base, Station, Store, audit
from fleet.trust.pki import (
    CLOCK_SKEW,
    CertificateAuthority,
    PkiError,
    atomic_write,
    cert_pem,
    check_station_id,
    common_name,
    issued_by,
    key_pem,
)
from flows.tokens import key_id, load_public, public_pem

if TYPE_CHECKING:
    from fleet.console.ingest import Ingest

DAY = 86400.0
EXPIRY_WINDOW_DAYS = 30
ALERT_KIND = "cert_expiring"
MAX_DAYS = 825.0
TERMINAL_TLS_DIR = "/var/lib/station-kiosk/tls"  # docs/deploy.md: the agent renews in place
# kiosk/config.py's pattern for [station] id and site: what a terminal's configuration accepts
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class EnrolError(PkiError):
    """An enrolment or revocation that was not made; the message says why, in plain words."""


class Enrolment(Base):
    __tablename__ = "enrolments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    station: Mapped[str] = mapped_column(String(64), unique=True)
    serial: Mapped[str] = mapped_column(String(40))  # hex, the newest certificate
    not_after: Mapped[float] = mapped_column(Float, index=True)
    doc_key_pem: Mapped[str | None] = mapped_column(Text, nullable=True)
    doc_key_id: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    enrolled_at: Mapped[float] = mapped_column(Float)
    enrolled_by: Mapped[str] = mapped_column(String(64))
    renewed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    revoke_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)


class IssuedCertificate(Base):
    """Every certificate issued to an enrolled station (a renewed one stays valid until it
    expires, so revoking a station revokes all of them)."""

    __tablename__ = "enrolment_certificates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(
        ForeignKey("enrolments.id", ondelete="CASCADE"), index=True
    )
    serial: Mapped[str] = mapped_column(String(40), unique=True)
    not_after: Mapped[float] = mapped_column(Float)
    issued_at: Mapped[float] = mapped_column(Float)
    origin: Mapped[str] = mapped_column(String(16))  # enrol, renewal
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)


class RevokedCertificate(Base):
    """A certificate revoked by serial with ``fleet ca revoke`` (the console's, a broker's, a
    station's issued outside enrolment): the CRL lists it beside the enrolments' (migration
    ``0009``)."""

    __tablename__ = "revoked_certificates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(40), unique=True)  # hex
    common_name: Mapped[str] = mapped_column(String(64))
    not_after: Mapped[float] = mapped_column(Float, index=True)
    revoked_at: Mapped[float] = mapped_column(Float)
    revoked_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(200))


# --- what goes to the terminal -------------------------------------------------------------------

INSTALL = {
    "ca.crt": ("ca_file", 0o644),
    "station.crt": ("cert_file", 0o644),
    "station.key": ("key_file", 0o600),
}


@dataclass(frozen=True)
class Issued:
    """A new station's key and certificate with the CA certificate: shown once, never stored."""

    site: str
    station: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    ca_cert: x509.Certificate
    view: dict[str, Any]

    def config_snippet(self) -> str:
        lines = [
            f"# {self.site}/{self.station}: copy ca.crt, station.crt and station.key to",
            f"# {TERMINAL_TLS_DIR}/ on the terminal (owner kiosk; station.key mode 0600), and put",
            "# these lines in /etc/station-kiosk/kiosk.toml (the folder must stay writable by the",
            "# agent: it renews its certificate in place).",
            "[station]",
            f'id = "{self.station}"',
            f'site = "{self.site}"',
            "",
            "[fleet]",
        ]
        lines += [f'{key} = "{TERMINAL_TLS_DIR}/{name}"' for name, (key, _) in INSTALL.items()]
        return "\n".join(lines) + "\n"

    def files(self) -> dict[str, tuple[bytes, int]]:
        """File name -> (content, mode)."""
        return {
            "ca.crt": (cert_pem(self.ca_cert), 0o644),
            "station.crt": (cert_pem(self.cert), 0o644),
            "station.key": (key_pem(self.key), 0o600),
            "kiosk-fleet.toml": (self.config_snippet().encode(), 0o644),
        }

    def write(self, folder: Path) -> dict[str, Path]:
        """Write the bundle into ``folder``; refuses to overwrite a key that is there."""
        folder = Path(folder)
        if (folder / "station.key").exists():
            raise EnrolError(f"{folder / 'station.key'} exists: choose an empty folder")
        written = {}
        for name, (data, mode) in self.files().items():
            atomic_write(folder / name, data, mode)
            written[name] = folder / name
        return written

    def zip(self) -> bytes:
        """The bundle as a zip (in memory only), in a folder named after the station."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, (data, mode) in self.files().items():
                info = zipfile.ZipInfo(f"{self.station}/{name}", time.gmtime()[:6])
                info.external_attr = (0o100000 | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data)
        return buffer.getvalue()


# --- reading -------------------------------------------------------------------------------------


def check_names(site: str, station: str) -> None:
    for what, value in (("site", site), ("station id", station)):
        if not NAME.match(value):
            raise EnrolError(f"not a valid {what}: {value[:70]!r} (a-z, 0-9 and '-', 2-63 long)")
    check_station_id(station)


def parse_doc_key(pem: bytes | str) -> tuple[str, str]:
    """A station's document-signing public key (Ed25519, PEM): (normalised PEM, key id)."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        public = load_public(data.strip() + b"\n")
    except (ValueError, TypeError) as err:
        raise EnrolError("the document key is not an Ed25519 public key in PEM") from err
    return public_pem(public).decode(), key_id(public)


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def view(row: Enrolment, now: float) -> dict[str, Any]:
    """An enrolment as the page, the API and ``fleet enroll list --json`` show it."""
    left = (row.not_after - now) / DAY
    state = "revoked" if row.revoked_at is not None else "expired" if left <= 0 else "active"
    return {
        "site": row.site,
        "station": row.station,
        "serial": row.serial,
        "not_after": _iso(row.not_after),
        "not_after_ts": row.not_after,
        "days_left": round(left, 1),
        "expiring": state == "active" and left <= EXPIRY_WINDOW_DAYS,
        "state": state,
        "doc_key_id": row.doc_key_id,
        "doc_key_pem": row.doc_key_pem,
        "enrolled_at": row.enrolled_at,
        "enrolled_by": row.enrolled_by,
        "renewed_at": row.renewed_at,
        "revoked_at": row.revoked_at,
        "revoked_by": row.revoked_by,
        "revoke_reason": row.revoke_reason,
    }


def find(db: Session, station: str) -> Enrolment | None:
    return db.scalar(select(Enrolment).where(Enrolment.station == station))


def listing(db: Session, now: float | None = None) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    rows = db.scalars(select(Enrolment).order_by(Enrolment.site, Enrolment.station))
    return [view(row, now) for row in rows]


def token_keys(db: Session) -> dict[str, Ed25519PublicKey]:
    """Key id -> document-signing key of every enrolled station that is not revoked (a revoked
    terminal may be in the wrong hands: its tokens then verify as "unknown key")."""
    keys: dict[str, Ed25519PublicKey] = {}
    rows = db.execute(
        select(Enrolment.doc_key_pem).where(
            Enrolment.revoked_at.is_(None), Enrolment.doc_key_pem.is_not(None)
        )
    )
    for (pem,) in rows:
        try:
            public = load_public(str(pem).encode())
        except ValueError:
            continue
        keys[key_id(public)] = public
    return keys


def token_keys_at(db_url: str) -> dict[str, Ed25519PublicKey]:
    """:func:`token_keys` of the console database at ``db_url`` (``fleet verify --db``)."""
    store = Store(db_url)
    try:
        with store.session() as db:
            return token_keys(db)
    finally:
        store.close()


# --- writing -------------------------------------------------------------------------------------


def _doc_key_free(db: Session, kid: str, station: str) -> None:
    other = db.scalar(
        select(Enrolment.station).where(Enrolment.doc_key_id == kid, Enrolment.station != station)
    )
    if other is not None:
        raise EnrolError(
            f"this document key ({kid}) is enrolled for {other} already: every terminal makes "
            "its own (a copied disk image shares it; delete document-signing.key there)"
        )


def enrol(
    db: Session,
    ca: CertificateAuthority,
    site: str,
    station: str,
    actor: str,
    *,
    days: float = 365.0,
    doc_key_pem: bytes | str | None = None,
    now: float | None = None,
) -> Issued:
    """Register ``site/station`` and issue its certificate (see the module's docstring).

    A station enrolled and not revoked is refused (revoke it first); a revoked one may be
    enrolled again, its old certificates staying in the CRL.
    """
    now = time.time() if now is None else now
    check_names(site, station)
    if not 0 < days <= MAX_DAYS:
        raise EnrolError(f"--days must be more than 0 and at most {MAX_DAYS:.0f}")
    doc = parse_doc_key(doc_key_pem) if doc_key_pem else None
    row = find(db, station)
    if row is not None and row.site != site:
        raise EnrolError(f"{station} is enrolled at site {row.site}: station ids are fleet-wide")
    if row is not None and row.revoked_at is None:
        raise EnrolError(
            f"{site}/{station} is enrolled already (certificate {row.serial[:16]}…, until "
            f"{_iso(row.not_after)[:10]}); revoke it first to enrol the terminal again"
        )
    if doc is not None:
        _doc_key_free(db, doc[1], station)
    key, cert = ca.issue_station(station, valid_for=dt.timedelta(days=days))
    serial = f"{cert.serial_number:x}"
    not_after = cert.not_valid_after_utc.timestamp()
    if row is None:
        row = Enrolment(site=site, station=station)
        db.add(row)
    row.serial, row.not_after = serial, not_after
    row.doc_key_pem, row.doc_key_id = doc if doc is not None else (None, None)
    row.enrolled_at, row.enrolled_by, row.renewed_at = now, actor, None
    row.revoked_at = row.revoked_by = row.revoke_reason = None
    db.flush()
    db.add(
        IssuedCertificate(
            enrolment_id=row.id, serial=serial, not_after=not_after, issued_at=now, origin="enrol"
        )
    )
    audit(
        db,
        actor,
        "enroll",
        f"{site}/{station}",
        serial=serial,
        not_after=_iso(not_after),
        doc_key_id=row.doc_key_id,
    )
    return Issued(site, station, key, cert, ca.cert, view(row, now))


def set_doc_key(
    db: Session, site: str, station: str, actor: str, pem: bytes | str
) -> dict[str, Any]:
    """Record (or replace) an enrolled station's document-signing public key."""
    row = find(db, station)
    if row is None or row.site != site:
        raise EnrolError(f"{site}/{station} is not enrolled")
    if row.revoked_at is not None:
        raise EnrolError(f"{site}/{station} is revoked: enrol it again first")
    doc_pem, kid = parse_doc_key(pem)
    _doc_key_free(db, kid, station)
    previous = row.doc_key_id
    row.doc_key_pem, row.doc_key_id = doc_pem, kid
    audit(db, actor, "enroll_doc_key", f"{site}/{station}", doc_key_id=kid, previous=previous)
    return view(row, time.time())


def revoke(
    db: Session, site: str, station: str, actor: str, reason: str, *, now: float | None = None
) -> dict[str, Any]:
    """Revoke the station and every unexpired certificate issued to it (idempotent)."""
    now = time.time() if now is None else now
    reason = " ".join(reason.split())[:200]
    if not reason:
        raise EnrolError("a revocation needs a reason")
    row = find(db, station)
    if row is None or row.site != site:
        raise EnrolError(f"{site}/{station} is not enrolled")
    if row.revoked_at is None:
        row.revoked_at, row.revoked_by, row.revoke_reason = now, actor, reason
    certs = db.scalars(
        select(IssuedCertificate).where(
            IssuedCertificate.enrolment_id == row.id, IssuedCertificate.revoked_at.is_(None)
        )
    )
    serials = []
    for cert in certs:
        cert.revoked_at = now
        serials.append(cert.serial)
    audit(db, actor, "revoke", f"{site}/{station}", reason=reason, serials=serials)
    return view(row, now)


def revoke_certificate(
    db: Session,
    ca: CertificateAuthority,
    cert: x509.Certificate,
    actor: str,
    reason: str,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Revoke one certificate the fleet CA issued, by its serial (idempotent); a certificate of
    an enrolled station is marked in its enrolment's list too. The CRL (:func:`crl_pem`) lists
    it from then on, until it expires."""
    now = time.time() if now is None else now
    reason = " ".join(reason.split())[:200]
    if not reason:
        raise EnrolError("a revocation needs a reason")
    if not issued_by(cert, ca.cert):
        raise EnrolError("this certificate was not issued by this fleet CA")
    serial = f"{cert.serial_number:x}"
    cn = common_name(cert.subject)
    issued = db.scalars(select(IssuedCertificate).where(IssuedCertificate.serial == serial))
    for row in issued:
        row.revoked_at = row.revoked_at or now
    known = db.scalars(select(RevokedCertificate).where(RevokedCertificate.serial == serial))
    if known.first() is None:
        db.add(
            RevokedCertificate(
                serial=serial,
                common_name=cn[:64],
                not_after=cert.not_valid_after_utc.timestamp(),
                revoked_at=now,
                revoked_by=actor,
                reason=reason,
            )
        )
    audit(db, actor, "revoke_certificate", cn, reason=reason, serials=[serial])
    return {"serial": serial, "common_name": cn, "expires": cert.not_valid_after_utc.isoformat()}


def renewal_refused(db: Session, station: str) -> bool:
    """True if the station is enrolled and revoked (its CSRs get no certificate)."""
    row = find(db, station)
    return row is not None and row.revoked_at is not None


def record_renewal(
    db: Session, station: str, serial: str, not_after: str, *, now: float | None = None
) -> None:
    """A renewal signed for ``station`` (hex serial, ISO expiry): the enrolment names it now.
    A station that was never enrolled (provisioned before enrolment existed) is left alone."""
    row = find(db, station)
    if row is None:
        return
    expires = dt.datetime.fromisoformat(not_after).timestamp()
    now = time.time() if now is None else now
    row.serial, row.not_after, row.renewed_at = serial, expires, now
    db.add(
        IssuedCertificate(
            enrolment_id=row.id, serial=serial, not_after=expires, issued_at=now, origin="renewal"
        )
    )


# --- the CRL -------------------------------------------------------------------------------------


def crl_pem(db: Session, ca: CertificateAuthority, *, now: float | None = None) -> bytes:
    """A CRL, signed by the fleet CA, of every revoked certificate not yet expired.

    ``nextUpdate`` is the CA's own expiry: mosquitto (OpenSSL) refuses EVERY client once the CRL
    it holds is past its nextUpdate, and nobody fetches this CRL, it is written and reloaded.
    The CRL number is the time in milliseconds, so it rises whoever writes it.
    """
    moment = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC)
    rows = db.execute(
        select(IssuedCertificate.serial, IssuedCertificate.revoked_at)
        .where(
            IssuedCertificate.revoked_at.is_not(None),
            IssuedCertificate.not_after > moment.timestamp(),
        )
        .order_by(IssuedCertificate.id)
    )
    by_serial: dict[str, float | None] = {serial: when for serial, when in rows}
    for serial, when in db.execute(
        select(RevokedCertificate.serial, RevokedCertificate.revoked_at)
        .where(RevokedCertificate.not_after > moment.timestamp())
        .order_by(RevokedCertificate.id)
    ):
        by_serial.setdefault(serial, when)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(moment - CLOCK_SKEW)
        .next_update(ca.cert.not_valid_after_utc)
        .add_extension(x509.CRLNumber(int(moment.timestamp() * 1000)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
        )
    )
    for serial, revoked_at in by_serial.items():
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(int(serial, 16))
            .revocation_date(dt.datetime.fromtimestamp(revoked_at or 0.0, dt.UTC))
            .build()
        )
    crl = builder.sign(ca.key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM)


def write_crl(path: Path, pem: bytes) -> None:
    """Atomically (mosquitto must never read half a CRL), readable by the broker's user."""
    atomic_write(Path(path), pem, 0o644)


# --- expiry alerts (the console's sweep) ---------------------------------------------------------


def _reported_expiry(birth: dict[str, Any] | None) -> float | None:
    text = (birth or {}).get("cert_expiry")
    if not isinstance(text, str):
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


def expiry_alerts(ingest: Ingest, now: float) -> None:
    """Raise ``cert_expiring`` for enrolled, unrevoked, known stations whose certificate runs out
    within 30 days; resolve it when that is no longer so. Reads only the candidates: enrolments
    inside the window (an index) and stations with the alert raised."""
    horizon = now + EXPIRY_WINDOW_DAYS * DAY
    raise_: list[tuple[int, str, dict[str, Any], bool]] = []
    resolve: list[int] = []
    with ingest.store.session() as db:
        alerted = set(
            db.scalars(
                select(Alert.station_id).where(
                    Alert.kind == ALERT_KIND, Alert.active_key.is_not(None)
                )
            )
        )
        joined = select(Enrolment, Station.id, Station.birth).join(
            Station, and_(Station.site == Enrolment.site, Station.station == Enrolment.station)
        )
        due = and_(Enrolment.revoked_at.is_(None), Enrolment.not_after <= horizon)
        rows = db.execute(joined.where(or_(due, Station.id.in_(list(alerted)))))
        for enrolment, station_id, birth in rows:
            reported = _reported_expiry(birth)
            expires = min(enrolment.not_after, reported or enrolment.not_after)
            if enrolment.revoked_at is None and expires <= horizon:
                if station_id not in alerted:
                    detail = {
                        "not_after": _iso(expires),
                        "days_left": round((expires - now) / DAY, 1),
                        "serial": enrolment.serial,
                    }
                    raise_.append((station_id, ALERT_KIND, detail, False))
            elif station_id in alerted:
                resolve.append(station_id)
    ingest.raise_alerts(raise_)
    for station_id in resolve:
        ingest.resolve(station_id, ALERT_KIND)
