"""``fleet keys list|rotate``: the keys the fleet's trust rests on, when they run out, and
replacing the catalog's online signing keys.

``list``:

- the catalog repository's TUF roles (``--repo``): for root, targets, snapshot and timestamp
  their key ids, threshold, metadata version and expiry, and whether each private key lies in
  the repository's ``keys/`` folder (online; root keys never should);
- the stations' client certificates (``--db``, the console's database): the expiry each
  station reported in its ``birth`` message;
- the stations' document-signing public keys (``--token-keys``, the folder of ``*.pub`` the
  console's verify page uses): file and key id (they do not expire).

Anything that expires within ``--within`` days (30) is flagged ``expiring``; for the short-lived
TUF roles the window is at most a quarter of the role's usual lifetime (snapshot and timestamp
are re-signed by ``fleet catalog refresh``). Without ``--repo`` and ``--token-keys`` the default
console database is read.

``rotate ROLE --repo DIR --root-keys OFFLINE_DIR`` replaces the online key of the catalog
repository's ``targets``, ``snapshot`` or ``timestamp`` role (one suspected stolen, or due):
:meth:`fleet.trust.catalog_repo.CatalogRepository.rotate_key`, the same as ``fleet catalog
rotate-key``, under the repository's lock. The new private key is written to the repository's
``keys/`` (0600) and the old one deleted; a new root version, signed by the offline root keys,
names the new key, and the role is signed again with it; terminals take the new root at their next
update. The console reads the repository afresh for every signing, so it signs with the new key
from then on. ``--db`` also records the rotation in the console's audit log. The root keys
themselves are replaced by ``fleet catalog rotate-root`` (they are offline: a new set is made and
kept apart). Station certificates are not rotated here: ``fleet enroll add`` issues a new one and
terminals renew theirs through the console.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from tuf.api.metadata import Metadata

from fleet.console.store import Station, Store

DAY = 86400.0
ROLES = ("root", "targets", "snapshot", "timestamp")


def _expiry(expires: dt.datetime, now: dt.datetime, window_days: float) -> dict[str, Any]:
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=dt.UTC)
    left = (expires - now).total_seconds() / DAY
    return {
        "expires": expires.isoformat(),
        "days_left": round(left, 2),
        "expired": left <= 0,
        "expiring": 0 < left <= window_days,
    }


def tuf_roles(repo_dir: Path, within_days: float, now: dt.datetime) -> list[dict[str, Any]]:
    """Each top-level role of the repository with its keys, threshold and expiry."""
    from fleet.trust.catalog_repo import DEFAULT_EXPIRY, CatalogRepository

    repo = CatalogRepository(repo_dir)
    metadata: dict[str, Metadata[Any]] = {
        "root": repo.root,
        "targets": repo.targets,
        "snapshot": repo.snapshot,
        "timestamp": repo.timestamp,
    }
    roles = []
    for role in ROLES:
        md = metadata[role]
        spec = repo.root.signed.roles[role]
        window = min(within_days, DEFAULT_EXPIRY[role].total_seconds() / DAY / 4)
        keys = [
            {
                "keyid": key.keyid,
                "keytype": key.keytype,
                "scheme": key.scheme,
                "online": (repo.keys_dir / f"{key.keyid}.pem").exists(),
            }
            for key in repo.keys_of(role)
        ]
        roles.append(
            {
                "role": role,
                "version": md.signed.version,
                "threshold": spec.threshold,
                "keyids": list(spec.keyids),
                "keys": keys,
                "signatures": len(md.signatures),
            }
            | _expiry(md.signed.expires, now, window)
        )
    return roles


def station_certificates(db_url: str, within_days: float, now: dt.datetime) -> list[dict[str, Any]]:
    """Each station the console knows with the certificate expiry it reported."""
    store = Store(db_url)
    try:
        with store.session() as db:
            rows = db.execute(
                select(Station.site, Station.station, Station.birth).order_by(
                    Station.site, Station.station
                )
            ).all()
    finally:
        store.close()
    result = []
    for site, station, birth in rows:
        entry: dict[str, Any] = {"site": site, "station": station, "cert_expiry": None}
        text = (birth or {}).get("cert_expiry")
        if isinstance(text, str):
            try:
                entry |= _expiry(dt.datetime.fromisoformat(text), now, within_days)
                entry["cert_expiry"] = entry.pop("expires")
            except ValueError:
                entry["error"] = f"unreadable expiry {text[:40]!r}"
        result.append(entry)
    return result


def token_keys(folder: Path) -> list[dict[str, Any]]:
    """The station document-signing public keys in ``folder`` (``*.pub``)."""
    from flows.tokens import key_id, load_public

    keys: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.pub")):
        try:
            keys.append({"file": path.name, "keyid": key_id(load_public(path.read_bytes()))})
        except (OSError, ValueError) as err:
            keys.append({"file": path.name, "keyid": None, "error": str(err)[:200]})
    return keys


def _flag(entry: dict[str, Any]) -> str:
    if entry.get("expired"):
        return "EXPIRED"
    return "EXPIRING" if entry.get("expiring") else ""


def _text(report: dict[str, Any]) -> str:
    lines: list[str] = []
    if "tuf" in report:
        lines.append(f"catalog repository {report['tuf']['repository']}")
        for r in report["tuf"]["roles"]:
            lines.append(
                f"  {r['role']:<9} v{r['version']:<3} threshold {r['threshold']} of "
                f"{len(r['keyids'])}  expires {r['expires']} ({r['days_left']:.1f} d) {_flag(r)}"
            )
            for key in r["keys"]:
                where = "online" if key["online"] else "offline"
                lines.append(f"      {key['keyid'][:16]}  {key['keytype']}  {where}")
    if "stations" in report:
        lines.append(f"station certificates ({len(report['stations'])})")
        for s in report["stations"]:
            when = s["cert_expiry"] or "unknown (no TLS, or not reported)"
            days = f" ({s['days_left']:.1f} d)" if "days_left" in s else ""
            lines.append(f"  {s['site']}/{s['station']}  {when}{days} {_flag(s)}".rstrip())
    if "token_keys" in report:
        lines.append(f"document-signing keys ({len(report['token_keys'])})")
        for k in report["token_keys"]:
            lines.append(f"  {k['file']}  {k['keyid'] or k.get('error')}")
    return "\n".join(lines)


def rotate(args: argparse.Namespace) -> int:
    from fleet.console.store import audit
    from fleet.trust.catalog_repo import CatalogRepository, RepositoryError, locked

    try:
        with locked(args.repo):  # the console may be signing too
            repo = CatalogRepository(args.repo)
            old = [key.keyid for key in repo.keys_of(args.role)]
            key = repo.rotate_key(args.role, args.root_keys)
            root_version = repo.root.signed.version
    except (RepositoryError, OSError, ValueError) as err:
        print(f"fleet keys rotate: {err}", file=sys.stderr)
        return 1
    report: dict[str, Any] = {
        "role": args.role,
        "old_keyids": old,
        "keyid": key.keyid,
        "root_version": root_version,
        "key_file": str(args.repo / "keys" / f"{key.keyid}.pem"),
    }
    if args.db:
        store = Store(args.db)
        try:
            with store.session() as db:
                audit(
                    db, "cli", "rotate_key", f"catalog/{args.role}", keyid=key.keyid,
                    old_keyids=old, root_version=root_version,
                )  # fmt: skip
        except SQLAlchemyError as err:
            print(f"fleet keys rotate: rotated, but not audited: {err}", file=sys.stderr)
            return 1
        finally:
            store.close()
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(
            f"{args.role}: new key {key.keyid[:16]} ({report['key_file']}), replacing "
            f"{', '.join(k[:16] for k in old) or 'none'}; root version {root_version}: terminals "
            "take it at their next update"
        )
    return 0


def run(args: argparse.Namespace) -> int:
    if args.keys_command == "rotate":
        return rotate(args)
    from fleet.trust.catalog_repo import RepositoryError

    now = dt.datetime.now(dt.UTC)
    db_url = args.db or (None if args.repo or args.token_keys else args.default_db)
    report: dict[str, Any] = {}
    try:
        if args.repo is not None:
            roles = tuf_roles(args.repo, args.within, now)
            report["tuf"] = {"repository": str(args.repo), "roles": roles}
        if db_url is not None:
            report["stations"] = station_certificates(db_url, args.within, now)
        if args.token_keys is not None:
            report["token_keys"] = token_keys(args.token_keys)
    except RepositoryError as err:
        print(f"fleet keys: {err}", file=sys.stderr)
        return 1
    except SQLAlchemyError as err:
        print(f"fleet keys: cannot read the console database: {err}", file=sys.stderr)
        return 1
    print(json.dumps(report, ensure_ascii=False, indent=1) if args.json else _text(report))
    return 0
