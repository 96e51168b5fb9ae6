"""The fleet's small certificate authority: who may talk to the broker, and as whom.

Every station holds a client certificate whose Common Name is its station id, which is also its
MQTT client id; the broker (``assets/mosquitto/``) takes the CN as the MQTT username
(``use_identity_as_username``) and its ACL lets that username write only under its own station
root. The console holds a certificate with CN ``console``. The broker holds a server certificate
for its host names and addresses.

Keys are ECDSA P-256: small, quick to make on a terminal, understood by OpenSSL 1.1+ and so by
mosquitto and Python's ``ssl``. A station's renewal key is made on the terminal and never leaves
it: the terminal sends a CSR, the centre checks the CSR's CN against the station it came from and
signs it (:meth:`CertificateAuthority.sign_csr`).

Private keys are written unencrypted (the terminal has no one to type a passphrase) with mode
0600, through a temporary file, fsync and ``os.replace`` so a crash never leaves half a key.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fleet.errors import FleetError

CONSOLE_CN = "console"
DEFAULT_CA_DAYS = 3650
DEFAULT_CLIENT_DAYS = 365
DEFAULT_SERVER_DAYS = 825
CLOCK_SKEW = dt.timedelta(minutes=5)  # a terminal whose clock runs a little behind still connects

# a station id is a single topic level and an MQTT username: no '/', '+', '#', no spaces
_STATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_RESERVED = frozenset({CONSOLE_CN})  # a station must never be issued the console's identity


class PkiError(FleetError):
    translation_key = "error.pki"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def check_station_id(station: str) -> str:
    """Return ``station`` if it may be a certificate CN for a station, else raise PkiError."""
    if not _STATION_ID.match(station) or station.lower() in _RESERVED:
        raise PkiError(f"not a valid station id for a certificate: {station!r}")
    return station


# --- keys, files -------------------------------------------------------------------------------


def generate_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix.

    The temporary file is created with ``mode`` already set (a key is never world-readable, not
    even for an instant), fsynced, renamed over ``path``, and the folder is fsynced so the rename
    survives a power cut.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed or an old file may have widened it
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    atomic_write(path, key_pem(key), 0o600)


def write_cert(path: Path, cert: x509.Certificate) -> None:
    atomic_write(path, cert_pem(cert), 0o644)


def load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    return parse_key(Path(path).read_bytes())


def parse_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as err:
        raise PkiError("not a readable private key") from err
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError("the fleet uses EC keys only")
    return key


def load_cert(path: Path) -> x509.Certificate:
    return parse_cert(Path(path).read_bytes())


def parse_cert(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as err:
        raise PkiError("not a readable PEM certificate") from err


# --- reading certificates ------------------------------------------------------------------------


def common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(values) != 1:
        raise PkiError("the name must have exactly one common name")
    value = values[0].value
    return value if isinstance(value, str) else value.decode()


def expiry(cert: x509.Certificate | Path) -> dt.datetime:
    """When the certificate stops being valid (aware, UTC)."""
    if isinstance(cert, Path):
        cert = load_cert(cert)
    return cert.not_valid_after_utc


def issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    """True if ``ca_cert`` signed ``cert`` (signature and issuer name; not the dates)."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def same_public_key(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return cert.public_key().public_bytes(der, spki) == key.public_key().public_bytes(der, spki)


# --- terminal side: the request ------------------------------------------------------------------


def build_csr(key: ec.EllipticCurvePrivateKey, station: str) -> x509.CertificateSigningRequest:
    """A CSR for ``station`` signed with ``key`` (made on the terminal; the key stays there)."""
    check_station_id(station)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, station)])
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


def csr_pem(csr: x509.CertificateSigningRequest) -> bytes:
    return csr.public_bytes(serialization.Encoding.PEM)


# --- centre side: the authority ------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateAuthority:
    """The fleet CA. Its key belongs at the centre, never on the broker or a terminal."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(
        cls, name: str = "station kiosk fleet CA", *, days: int = DEFAULT_CA_DAYS
    ) -> CertificateAuthority:
        key = generate_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @classmethod
    def load(cls, cert_file: Path, key_file: Path) -> CertificateAuthority:
        return cls(load_key(key_file), load_cert(cert_file))

    def save(self, cert_file: Path, key_file: Path) -> None:
        write_cert(cert_file, self.cert)
        write_key(key_file, self.key)

    def _leaf(
        self,
        cn: str,
        public_key: ec.EllipticCurvePublicKey,
        usage: x509.ObjectIdentifier,
        valid_for: dt.timedelta,
        sans: Sequence[x509.GeneralName] = (),
    ) -> x509.Certificate:
        now = _now()
        not_after = min(now + valid_for, self.cert.not_valid_after_utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), False)
        return builder.sign(self.key, hashes.SHA256())

    def issue_client(
        self,
        cn: str,
        public_key: ec.EllipticCurvePublicKey,
        *,
        valid_for: dt.timedelta = dt.timedelta(days=DEFAULT_CLIENT_DAYS),
    ) -> x509.Certificate:
        """A client certificate for a station (CN = station id) or for the console."""
        if cn != CONSOLE_CN:
            check_station_id(cn)
        return self._leaf(cn, public_key, ExtendedKeyUsageOID.CLIENT_AUTH, valid_for)

    def issue_station(
        self,
        station: str,
        *,
        valid_for: dt.timedelta = dt.timedelta(days=DEFAULT_CLIENT_DAYS),
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """Key and certificate for a station's first provisioning (made on a trusted bench)."""
        key = generate_key()
        return key, self.issue_client(
            check_station_id(station), key.public_key(), valid_for=valid_for
        )

    def issue_console(
        self, *, valid_for: dt.timedelta = dt.timedelta(days=DEFAULT_CLIENT_DAYS)
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = generate_key()
        return key, self.issue_client(CONSOLE_CN, key.public_key(), valid_for=valid_for)

    def issue_server(
        self,
        hosts: Sequence[str] = ("localhost", "127.0.0.1"),
        *,
        valid_for: dt.timedelta = dt.timedelta(days=DEFAULT_SERVER_DAYS),
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """Key and certificate for the broker; every host name or address goes in the SAN."""
        if not hosts:
            raise PkiError("a server certificate needs at least one host name or address")
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        key = generate_key()
        cert = self._leaf(
            hosts[0], key.public_key(), ExtendedKeyUsageOID.SERVER_AUTH, valid_for, sans
        )
        return key, cert

    def sign_csr(
        self,
        pem: bytes,
        expected_station: str,
        *,
        valid_for: dt.timedelta = dt.timedelta(days=DEFAULT_CLIENT_DAYS),
    ) -> x509.Certificate:
        """Sign a station's CSR, but only for the station it claims to come from.

        ``expected_station`` is what the centre knows independently (the topic the request came
        in on, which the broker's ACL ties to the sender's certificate); a CSR naming any other
        CN, or one whose self-signature does not hold, is refused. Only the subject's CN and
        public key are taken from the CSR: extensions a requester asks for are ignored.
        """
        try:
            csr = x509.load_pem_x509_csr(pem)
        except ValueError as err:
            raise PkiError("not a readable PEM certificate request") from err
        if not csr.is_signature_valid:
            raise PkiError("the request's signature does not hold")
        cn = common_name(csr.subject)
        if cn != check_station_id(expected_station):
            raise PkiError(f"the request is for {cn!r}, not for {expected_station!r}")
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise PkiError("the fleet uses EC keys only")
        return self.issue_client(cn, public_key, valid_for=valid_for)
