"""The centre's side of certificate renewal: a station's ``evt/csr`` is answered with the
``install_certificate`` command carrying a certificate the fleet CA signed (the station's side:
:mod:`fleet.agent.renewal`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fleet.protocol.commands import INSTALL_CERTIFICATE
from fleet.protocol.models import CSR_EVENT
from fleet.trust.pki import DEFAULT_CLIENT_DAYS, CertificateAuthority, PkiError, cert_pem

__all__ = ["CSR_EVENT", "answer_csr"]


def answer_csr(
    ca: CertificateAuthority,
    event: dict[str, Any],
    station: str,
    *,
    valid_for: dt.timedelta = dt.timedelta(days=DEFAULT_CLIENT_DAYS),
) -> dict[str, Any]:
    """Sign the CSR of an ``evt/csr`` payload; returns the command to publish on ``cmd/{id}``.

    ``station`` must come from the topic the event arrived on (the broker's ACL ties it to the
    sender's certificate), never from the payload. Raises PkiError if the CSR is not for it.
    """
    pem = event.get("csr")
    if not isinstance(pem, str):
        raise PkiError("the event carries no CSR")
    cert = ca.sign_csr(pem.encode(), station, valid_for=valid_for)
    return {
        "name": INSTALL_CERTIFICATE,
        "args": {
            "certificate": cert_pem(cert).decode(),
            "serial": f"{cert.serial_number:x}",
            "not_after": cert.not_valid_after_utc.isoformat(),
        },
    }
