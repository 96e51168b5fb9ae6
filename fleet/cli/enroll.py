"""``fleet enroll``: enrol a terminal, revoke one, write the CRL the broker reads.

::

    fleet enroll add SITE STATION --ca-cert ca.crt --ca-key ca.key --out DIR \\
        [--doc-key-pub document-signing.pub] [--days 365] [--crl fleet.crl] [--db URL] [--json]
    fleet enroll revoke SITE STATION --reason "stolen" --ca-cert F --ca-key F --crl fleet.crl
    fleet enroll set-doc-key SITE STATION --doc-key-pub document-signing.pub
    fleet enroll crl --ca-cert F --ca-key F --crl fleet.crl
    fleet enroll list [--json]

(The mode flags of before, ``--revoke``, ``--set-doc-key``, ``--write-crl``, ``--list`` and no
verb for ``add``, still work for one release: :mod:`fleet.cli.legacy`.)

Enrolling writes ``ca.crt``, ``station.crt``, ``station.key`` (0600) and ``kiosk-fleet.toml`` (the
``[station]`` and ``[fleet]`` lines) into DIR, to be copied to the terminal's
``/var/lib/station-kiosk/tls/``. Revoking records the revocation in the console's database (the
console then refuses the station's renewal requests) and rewrites the CRL from it; mosquitto
reads the CRL at start and on SIGHUP (``systemctl reload mosquitto``). See
:mod:`fleet.console.enroll`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from fleet.cli.timefmt import local_time
from fleet.console import enroll
from fleet.console.store import Store
from fleet.trust.pki import CertificateAuthority, PkiError

ACTOR = "cli"
INSTALL_DIR = enroll.TERMINAL_TLS_DIR


class Usage(Exception):
    pass


def _ca(args: argparse.Namespace) -> CertificateAuthority:
    if args.ca_cert is None or args.ca_key is None:
        raise Usage("this needs the fleet CA: --ca-cert FILE --ca-key FILE")
    return CertificateAuthority.load(args.ca_cert, args.ca_key)


def _names(args: argparse.Namespace) -> tuple[str, str]:
    return str(args.site), str(args.station)


def _write_crl(store: Store, ca: CertificateAuthority, path: Path) -> dict[str, Any]:
    with store.session() as db:
        pem = enroll.crl_pem(db, ca)
    enroll.write_crl(path, pem)
    from cryptography import x509

    crl = x509.load_pem_x509_crl(pem)
    return {
        "file": str(path),
        "revoked": len(crl),
        "reload": "mosquitto reads it at start and on SIGHUP: systemctl reload mosquitto",
    }


def _enrol(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    site, station = _names(args)
    if args.out is None:
        raise Usage("add needs --out DIR for the terminal's files")
    ca = _ca(args)
    if (args.out / "station.key").exists():
        raise enroll.EnrolError(f"{args.out / 'station.key'} exists: choose an empty folder")
    doc = args.doc_key_pub.read_bytes() if args.doc_key_pub else None
    with store.session() as db:
        issued = enroll.enrol(db, ca, site, station, ACTOR, days=args.days, doc_key_pem=doc)
        written = issued.write(args.out)  # inside the unit of work: no files, no enrolment
    report: dict[str, Any] = {
        "action": "enroll",
        "enrolment": issued.view,
        "files": {name: str(path) for name, path in written.items()},
        "install": {
            name: {"to": f"{INSTALL_DIR}/{name}", "config": f"[fleet] {key}", "mode": f"{mode:o}"}
            for name, (key, mode) in enroll.INSTALL.items()
        },
    }
    if args.crl is not None:
        report["crl"] = _write_crl(store, ca, args.crl)
    return report


def _revoke(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    site, station = _names(args)
    if args.crl is None:
        raise Usage("revoke needs --crl FILE (and the CA) to write the CRL the broker reads")
    ca = _ca(args)
    with store.session() as db:
        revoked = enroll.revoke(db, site, station, ACTOR, args.reason)
    return {"action": "revoke", "enrolment": revoked, "crl": _write_crl(store, ca, args.crl)}


def _set_doc_key(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    site, station = _names(args)
    if args.doc_key_pub is None:
        raise Usage("set-doc-key needs --doc-key-pub FILE")
    with store.session() as db:
        row = enroll.set_doc_key(db, site, station, ACTOR, args.doc_key_pub.read_bytes())
    return {"action": "set_doc_key", "enrolment": row}


def _text(report: dict[str, Any]) -> str:
    lines: list[str] = []
    local = local_time()
    e = report.get("enrolment")
    if report["action"] == "list":
        lines.append(f"enrolments ({len(report['enrolments'])})")
        for r in report["enrolments"]:
            flag = " EXPIRING" if r["expiring"] else ""
            until = local.minute(r["not_after_ts"])
            lines.append(
                f"  {r['site']}/{r['station']}  {r['state']}  until {until} "
                f"({r['days_left']:.1f} d){flag}  doc key {r['doc_key_id'] or '-'}"
            )
    elif report["action"] == "enroll" and e is not None:
        lines.append(
            f"enrolled {e['site']}/{e['station']}: certificate {e['serial'][:16]}…, "
            f"valid until {local.when(e['not_after_ts'])} ({e['days_left']:.0f} days)"
        )
        if e["doc_key_id"]:
            lines.append(f"document-signing key {e['doc_key_id']} recorded")
        else:
            lines.append(
                "no document-signing key recorded: once the kiosk has run, copy its "
                "document-signing.pub back and run fleet enroll set-doc-key"
            )
        lines.append(f"copy to the terminal's {INSTALL_DIR}/ (owner kiosk):")
        for name, step in report["install"].items():
            lines.append(f"  {report['files'][name]}  ->  {step['to']}  ({step['config']})")
        lines.append(f"  and the lines of {report['files']['kiosk-fleet.toml']} into kiosk.toml")
    elif report["action"] == "revoke" and e is not None:
        lines.append(f"revoked {e['site']}/{e['station']}: {e['revoke_reason']}")
    elif report["action"] == "set_doc_key" and e is not None:
        lines.append(f"{e['site']}/{e['station']}: document-signing key {e['doc_key_id']}")
    crl = report.get("crl")
    if crl:
        lines.append(f"CRL {crl['file']}: {crl['revoked']} revoked; {crl['reload']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    store = Store(args.db or args.default_db)
    try:
        store.migrate()
        verb = args.enroll_command
        if verb == "list":
            with store.session() as db:
                report: dict[str, Any] = {"action": "list", "enrolments": enroll.listing(db)}
            for r in report["enrolments"]:
                r.pop("doc_key_pem", None)
        elif verb == "crl":
            if args.crl is None:
                raise Usage("crl needs --crl FILE")
            report = {"action": "write_crl", "crl": _write_crl(store, _ca(args), args.crl)}
        elif verb == "revoke":
            report = _revoke(store, args)
        elif verb == "set-doc-key":
            report = _set_doc_key(store, args)
        else:
            report = _enrol(store, args)
    except Usage as err:
        print(f"fleet enroll: {err}", file=sys.stderr)
        return 2
    except (PkiError, OSError) as err:
        print(f"fleet enroll: {err}", file=sys.stderr)
        return 1
    except SQLAlchemyError as err:
        print(f"fleet enroll: the console database: {err}", file=sys.stderr)
        return 1
    finally:
        store.close()
    report["ts"] = time.time()
    print(json.dumps(report, ensure_ascii=False, indent=1) if args.json else _text(report))
    return 0
