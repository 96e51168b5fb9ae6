"""``fleet ca``: the fleet CA from the command line, so no deployment step imports Python.

::

    fleet ca init [--dir DIR] [--name "station kiosk fleet CA"] [--days 3650]
    fleet ca issue-broker [--dir DIR] --host broker.fleet.example [--host 10.0.0.5] [--out DIR]
    fleet ca issue-console [--dir DIR] [--out DIR] [--days 365]
    fleet ca revoke CERT... --reason TEXT --crl fleet.crl [--dir DIR] [--db URL]

``DIR`` holds ``ca.crt`` and ``ca.key`` (0600); it belongs where the CA's key is kept, never on
the broker (:mod:`fleet.trust.pki`). ``issue-broker`` writes ``server.crt`` and ``server.key``
with every ``--host`` in the subjectAltName (clients check it against the name they connect to);
``issue-console`` writes ``console.crt``, ``console.key`` and a copy of ``ca.crt``, the three files
of ``fleet console --tls``. Keys are written 0600 through a temporary file (:func:`write_key`);
an existing key is replaced only with ``--force``.

``revoke`` records each certificate's serial in the console's database (table
``revoked_certificates``), so every later CRL, whether ``fleet enroll`` or the console's
Enrolment page writes it, still lists it, and writes the CRL at once; mosquitto reads it at start
and on SIGHUP (``systemctl reload mosquitto``). Stations are revoked with ``fleet enroll
revoke``, which also refuses their renewals.

Exit statuses: 0 done, 1 refused (a file exists, a certificate not of this CA, an unreadable
file, the database), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from fleet.trust.pki import (
    CertificateAuthority,
    PkiError,
    load_cert,
    write_cert,
    write_key,
)

ACTOR = "cli"
CA_CERT, CA_KEY = "ca.crt", "ca.key"


class Refused(Exception):
    """A step not taken; the message says why."""


def _ca(folder: Path) -> CertificateAuthority:
    cert, key = folder / CA_CERT, folder / CA_KEY
    if not cert.exists() or not key.exists():
        raise Refused(f"no fleet CA in {folder}/ ({CA_CERT} and {CA_KEY}): run fleet ca init")
    return CertificateAuthority.load(cert, key)


def _free(paths: list[Path], force: bool) -> None:
    taken = [str(p) for p in paths if p.exists()]
    if taken and not force:
        raise Refused(f"{', '.join(taken)} exists: choose another folder, or --force to replace")


def _init(args: argparse.Namespace) -> dict[str, Any]:
    cert, key = args.dir / CA_CERT, args.dir / CA_KEY
    _free([cert, key], args.force)
    ca = CertificateAuthority.create(args.name, days=args.days)
    ca.save(cert, key)
    return {
        "action": "init",
        "files": {"cert": str(cert), "key": str(key)},
        "expires": ca.cert.not_valid_after_utc.isoformat(),
        "note": f"keep {key} here and nowhere else; {cert} goes to the broker, "
        "the console and every terminal",
    }


def _issue(args: argparse.Namespace, names: tuple[str, str]) -> dict[str, Any]:
    ca = _ca(args.dir)
    folder: Path = args.out or args.dir
    cert_file, key_file = folder / names[0], folder / names[1]
    _free([cert_file, key_file], args.force)
    valid_for = timedelta(days=args.days)
    if args.ca_command == "issue-broker":
        key, cert = ca.issue_server(args.host, valid_for=valid_for)
    else:
        key, cert = ca.issue_console(valid_for=valid_for)
    write_key(key_file, key)
    write_cert(cert_file, cert)
    files = {"cert": str(cert_file), "key": str(key_file)}
    if args.ca_command == "issue-console" and folder.resolve() != args.dir.resolve():
        shutil.copyfile(args.dir / CA_CERT, folder / CA_CERT)
        files["ca"] = str(folder / CA_CERT)
    return {
        "action": args.ca_command,
        "files": files,
        "subject": cert.subject.rfc4514_string(),
        "hosts": list(args.host) if args.ca_command == "issue-broker" else None,
        "expires": cert.not_valid_after_utc.isoformat(),
    }


def _revoke(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy.exc import SQLAlchemyError

    from fleet.console import enroll
    from fleet.console.store import Store

    ca = _ca(args.dir)
    certs = [load_cert(path) for path in args.cert]  # all readable before anything is recorded
    store = Store(args.db or args.default_db)
    try:
        store.migrate()
        with store.session() as db:
            revoked = [enroll.revoke_certificate(db, ca, c, ACTOR, args.reason) for c in certs]
        with store.session() as db:
            pem = enroll.crl_pem(db, ca)
    except SQLAlchemyError as err:
        raise Refused(f"the console database: {err}") from err
    finally:
        store.close()
    enroll.write_crl(args.crl, pem)
    from cryptography import x509

    return {
        "action": "revoke",
        "revoked": revoked,
        "crl": {
            "file": str(args.crl),
            "revoked": len(x509.load_pem_x509_crl(pem)),
            "reload": "mosquitto reads it at start and on SIGHUP: systemctl reload mosquitto",
        },
    }


def _text(report: dict[str, Any]) -> str:
    action = report["action"]
    if action == "revoke":
        lines = [f"revoked {r['common_name']} (serial {r['serial']})" for r in report["revoked"]]
        crl = report["crl"]
        lines.append(f"CRL {crl['file']}: {crl['revoked']} revoked; {crl['reload']}")
        return "\n".join(lines)
    files = report["files"]
    lines = [f"{action}: {files['cert']} (valid until {report['expires']}), key {files['key']}"]
    if "ca" in files:
        lines.append(f"  and {files['ca']}")
    if report.get("hosts"):
        lines.append(f"  for {', '.join(report['hosts'])}")
    if report.get("note"):
        lines.append(report["note"])
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        if args.ca_command == "init":
            report = _init(args)
        elif args.ca_command == "revoke":
            report = _revoke(args)
        elif args.ca_command == "issue-broker":
            report = _issue(args, ("server.crt", "server.key"))
        else:
            report = _issue(args, ("console.crt", "console.key"))
    except (Refused, PkiError, OSError) as err:
        print(f"fleet ca {args.ca_command}: {err}", file=sys.stderr)
        return 1
    report["ts"] = time.time()
    print(json.dumps(report, ensure_ascii=False, indent=1) if args.json else _text(report))
    return 0
