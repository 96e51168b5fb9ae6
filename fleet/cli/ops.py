"""``fleet stations`` and ``fleet alerts``: the console's fleet view for scripts and terminals.

They read (and, for acknowledgements, write) the console's own database, the same rows the web
pages show, with the same status rules (the console's timers, never broker presence alone).
Human-readable tables by default, in English words from the console's catalogs ("Out of order",
"Help request", "A4 printer") and times in ``$FLEET_TIMEZONE`` (:mod:`fleet.cli.timefmt`),
``--json`` (codes) for machines. ``fleet alerts list`` shows them; ``fleet alerts ack ID --as
USER`` acknowledges one (the old ``fleet alerts`` and ``fleet alerts --ack ID`` still work for one
release, :mod:`fleet.cli.legacy`). Acknowledging needs a console user's name, follows the alerts
page's rules (:mod:`fleet.console.help_reply`: a help request is resolved by it) and lands in the
audit log like a click there. ``--on-the-way MIN``, ``--call
NUMBER`` or ``--say TEXT`` answer a help request; the answer is queued in the database and a
running console sends it to the station.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from fleet.cli.timefmt import local_time
from fleet.console import i18n
from fleet.console.auth import acting_as
from fleet.console.help_reply import ReplyError, acknowledge, queue_command, reply_from
from fleet.console.store import Alert, Store, Timers, audit
from fleet.console.views import alert_total, alerts, stations


def _words(kind: str, code: str) -> str:
    """A code in English words, as the console's English pages say it."""
    return i18n.both(kind, code)["en"]


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _ago(ts: float | None) -> str:
    if not ts:
        return "-"
    seconds = max(0, int(time.time() - ts))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def run_stations(args: argparse.Namespace) -> int:
    store = Store(args.db)
    try:
        with store.session() as db:
            views = stations(db, Timers(), site=args.site, status=args.status or "")
    finally:
        store.close()
    if args.json:
        print(json.dumps(views, ensure_ascii=False, indent=1))
        return 0
    rows = []
    for v in views:
        faults = [n for n, d in v["devices"].items() if d.get("state") not in ("ok", None)]
        rows.append(
            [
                v["site"],
                v["station"],
                _words("status", v["status"]),
                "yes" if v["ui_alive"] else "NO" if v["ui_alive"] is False else "-",
                ", ".join(_words("device", f) for f in faults) or "ok",
                str(v["catalog_version"] or "-"),
                str(v["app_version"] or "-"),
                _ago(v["last_seen"]),
            ]
        )
    header = ["site", "station", "status", "ui", "devices", "catalog", "app", "last seen"]
    print(_table(rows, header) if rows else "no stations")
    return 0


def run_alerts(args: argparse.Namespace) -> int:
    store = Store(args.db)
    try:
        if args.alerts_command == "ack":
            return _acknowledge(store, args.alert_id, args.actor, _reply_fields(args))
        with store.session() as db:
            views = alerts(db, active_only=not args.all)
            total = alert_total(db, active_only=not args.all)
    finally:
        store.close()
    what = "alerts" if args.all else "open alerts"
    shown = f"{len(views)} of {total} {what} (help requests and faults first)"
    if args.json:
        print(json.dumps(views, ensure_ascii=False, indent=1))
        print(shown, file=sys.stderr)
        return 0
    local = local_time()  # the stations' zone, named by its offset
    rows = [
        [
            str(v["id"]),
            _words("alert", v["kind"]),
            f"{v['site']}/{v['station']}",
            str(v["count"]),
            f"{local.minute(v['raised_at'])} ({_ago(v['raised_at'])})",
            v["acknowledged_by"] or ("resolved" if not v["active"] else "-"),
        ]
        for v in views
    ]
    header = ["id", "kind", "station", "count", "raised", "acknowledged"]
    print(_table(rows, header) if rows else f"no {what}")
    if rows:
        print(shown)
    return 0


def _reply_fields(args: argparse.Namespace) -> dict[str, Any]:
    if args.on_the_way is not None:
        return {"reply": "on_the_way", "minutes": args.on_the_way}
    if args.call is not None:
        return {"reply": "call", "number": args.call}
    if args.say is not None:
        return {"reply": "text", "text": args.say}
    return {}


def _acknowledge(store: Store, alert_id: int, actor: str | None, fields: dict[str, Any]) -> int:
    if not actor:
        print("fleet alerts ack: needs --as USER (a console user)", file=sys.stderr)
        return 2
    try:
        reply = reply_from(fields)
    except ReplyError as err:
        print(f"fleet alerts: {err}", file=sys.stderr)
        return 2
    with store.session() as db:
        who, _ = acting_as(db, actor)
        alert = db.get(Alert, alert_id)
        if who is None or not who.may("acknowledge"):
            audit(db, actor, "acknowledge_alert", f"alert/{alert_id}", ok=False, via="cli")
            print(f"fleet alerts: {actor} may not acknowledge alerts", file=sys.stderr)
            return 1
        if alert is None:
            print(f"fleet alerts: no alert {alert_id}", file=sys.stderr)
            return 1
        try:
            done = acknowledge(
                db, alert_id, actor, reply, lambda d, s, a: queue_command(d, s, a, actor), via="cli"
            )
        except ReplyError as err:
            print(f"fleet alerts: {err}", file=sys.stderr)
            return 2
    print(f"alert {alert_id} acknowledged by {actor}")
    if done.command_id:
        print(f"answer queued as command {done.command_id}: a running console sends it")
    return 0
