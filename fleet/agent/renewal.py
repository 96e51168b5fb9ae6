"""Client certificate renewal over the fleet protocol, and the agent's TLS context.

Terminal side:

1. :func:`request_renewal` (the agent calls it periodically): when the station's certificate
   expires within the window, make a new key on the terminal (kept beside the current one as
   ``<key>.pending``, mode 0600, never sent), build a CSR for the station id and queue it in the
   journal's outbox as event ``csr``, so it is store-and-forward like every other event and
   reaches the centre as ``.../evt/csr``. One request per ``resend_after_s`` at most.
2. The centre answers with the command ``install_certificate`` (``.../cmd/{id}``) whose args carry
   the signed certificate (:func:`answer_csr` builds them).
3. :func:`handle_install_certificate` checks the certificate (signed by the fleet CA, CN = this
   station, public key = the pending key, valid now), installs key and certificate, and asks the
   agent to reconnect with them; the UI is another process and is not touched. A failure records
   an ``alert`` event (``certificate_renewal_failed``) and leaves the working pair and the
   connection alone.

Installing is atomic per file (temporary file, fsync, ``os.replace``, folder fsync). The pair is
two files, so the certificate is staged first as ``<cert>.new``; should the terminal die between
the two renames, :func:`complete_interrupted_install` finishes the job at the next start.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any, Protocol

from cryptography import x509

from fleet.agent.commands import Command, CommandFailed, Handler
from fleet.mqtt.client import TlsFiles
from fleet.protocol.commands import COMMANDS, INSTALL_CERTIFICATE
from fleet.protocol.models import CSR_EVENT
from fleet.protocol.topics import StationTopics
from fleet.trust.pki import (
    CLOCK_SKEW,
    PkiError,
    atomic_write,
    build_csr,
    cert_pem,
    common_name,
    csr_pem,
    generate_key,
    issued_by,
    key_pem,
    load_cert,
    load_key,
    parse_cert,
    same_public_key,
    write_key,
)
from statedir.journal import Journal

ALERT_KIND = "certificate_renewal_failed"
DEFAULT_WINDOW_S = 30 * 86400.0
_REQUESTED_META = "cert_renewal_requested"


class RenewalError(PkiError):
    """A certificate was not installed; ``reason`` is a stable word for the result and alert."""

    translation_key = "error.cert_renewal"

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason


def certificate_expiry(files: TlsFiles) -> dt.datetime | None:
    try:
        return load_cert(files.cert_file).not_valid_after_utc
    except (OSError, PkiError):
        return None


def complete_interrupted_install(files: TlsFiles) -> bool:
    """Finish an install cut short between its two renames; True if there was one to finish."""
    staged = files.staged_cert_file
    if not staged.exists():
        return False
    try:
        done = same_public_key(load_cert(staged), load_key(files.key_file))
    except (OSError, PkiError):
        done = False
    if done:  # the new key is in place: the staged certificate belongs with it
        os.replace(staged, files.cert_file)
    else:  # the key was never replaced: the old pair still stands
        staged.unlink()
    return done


# --- terminal side: asking ---------------------------------------------------------------------


def needs_renewal(files: TlsFiles, window_s: float, now: float | None = None) -> bool:
    expires = certificate_expiry(files)
    if expires is None:
        return False
    return expires.timestamp() - (time.time() if now is None else now) <= window_s


def request_renewal(
    files: TlsFiles,
    station: str,
    journal: Journal,
    *,
    window_s: float = DEFAULT_WINDOW_S,
    resend_after_s: float = 86400.0,
    now: float | None = None,
) -> str | None:
    """Queue a ``csr`` event if the certificate is due; returns the event id, or None."""
    now = time.time() if now is None else now
    if not needs_renewal(files, window_s, now):
        return None
    last = journal.get_meta(_REQUESTED_META)
    if last is not None and now - float(last) < resend_after_s:
        return None
    if files.pending_key_file.exists():  # asked before and not answered: ask again, same key
        key = load_key(files.pending_key_file)
    else:
        key = generate_key()
        write_key(files.pending_key_file, key)
    current = load_cert(files.cert_file)
    event_id = journal.queue_event(
        CSR_EVENT,
        {
            "csr": csr_pem(build_csr(key, station)).decode(),
            "current_serial": f"{current.serial_number:x}",
            "current_not_after": current.not_valid_after_utc.isoformat(),
            "ts": now,
        },
    )
    journal.set_meta(_REQUESTED_META, str(now))
    return event_id


# --- terminal side: installing -----------------------------------------------------------------


def check_certificate(
    files: TlsFiles, station: str, pem: str, now: float | None = None
) -> x509.Certificate:
    """The certificate in ``pem`` if it may replace the station's own, else RenewalError."""
    if not files.pending_key_file.exists():
        raise RenewalError("no_pending_request")
    try:
        cert = parse_cert(pem.encode())
    except PkiError as err:
        raise RenewalError("unreadable") from err
    if not issued_by(cert, load_cert(files.ca_file)):
        raise RenewalError("wrong_issuer")
    try:
        cn = common_name(cert.subject)
    except PkiError as err:
        raise RenewalError("wrong_station") from err
    if cn != station:
        raise RenewalError("wrong_station")
    if not same_public_key(cert, load_key(files.pending_key_file)):
        raise RenewalError("key_mismatch")
    moment = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC)
    if cert.not_valid_before_utc > moment + CLOCK_SKEW or cert.not_valid_after_utc <= moment:
        raise RenewalError("not_valid_now")
    return cert


def install_certificate(files: TlsFiles, station: str, pem: str) -> x509.Certificate:
    """Check and install; the pending key becomes the key. Raises RenewalError."""
    cert = check_certificate(files, station, pem)
    new_key = load_key(files.pending_key_file)
    atomic_write(files.staged_cert_file, cert_pem(cert), 0o644)
    staged_key = files.key_file.with_name(files.key_file.name + ".new")
    atomic_write(staged_key, key_pem(new_key), 0o600)
    os.replace(staged_key, files.key_file)
    os.replace(files.staged_cert_file, files.cert_file)
    dir_fd = os.open(files.cert_file.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    files.pending_key_file.unlink()
    return cert


class RenewingAgent(Protocol):
    """What :func:`handle_install_certificate` needs from the agent (fleet.agent.Agent)."""

    journal: Journal
    topics: StationTopics
    tls_files: TlsFiles | None

    def reload_certificate(self) -> None:
        """Present the newly installed pair from the next connection on, and reconnect."""


def handle_install_certificate(
    agent: RenewingAgent, args: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The ``install_certificate`` command: ``args = {"certificate": PEM}``.

    Returns ``("succeeded", {serial, not_after})`` and has the agent reconnect with the new pair
    (after a short grace, so the command's result can still go out on the old connection), or
    ``("failed", {reason})`` after recording an alert; a failure never touches the connection.
    """
    station = agent.topics.station
    try:
        if agent.tls_files is None:
            raise RenewalError("no_tls")
        pem = args.get("certificate")
        if not isinstance(pem, str):
            raise RenewalError("unreadable")
        cert = install_certificate(agent.tls_files, station, pem)
    except RenewalError as err:
        agent.journal.alert(ALERT_KIND, {"reason": err.reason})
        return "failed", {"reason": err.reason}
    except (OSError, PkiError) as err:
        agent.journal.alert(ALERT_KIND, {"reason": "io_error", "error": type(err).__name__})
        return "failed", {"reason": "io_error"}
    agent.journal.set_meta(_REQUESTED_META, "0")
    agent.reload_certificate()
    return "succeeded", {
        "serial": f"{cert.serial_number:x}",
        "not_after": cert.not_valid_after_utc.isoformat(),
    }


def validate_install_args(args: dict[str, Any]) -> dict[str, Any]:
    """The shape of ``install_certificate``'s args (the content is checked when it runs)."""
    pem = args.get("certificate")
    if not isinstance(pem, str) or len(pem) > 16384:
        raise ValueError("install_certificate needs a PEM certificate")
    return {"certificate": pem}


def command_handler(agent: RenewingAgent) -> Handler:
    """``install_certificate`` for the agent's :class:`fleet.agent.commands.Dispatcher`."""

    def run(command: Command) -> dict[str, Any]:
        status, detail = handle_install_certificate(agent, command.args)
        if status != "succeeded":
            raise CommandFailed(str(detail.pop("reason")), **detail)
        return detail

    spec = COMMANDS[INSTALL_CERTIFICATE]
    return Handler(spec.name, spec.target, spec.timeout_s, validate_install_args, run)
