"""``fleet followups``: bad reviews to follow up (差评回访), for scripts and terminals.

It reads and writes the console's own database, the same rows and the same rules as the
Follow-ups page (:mod:`fleet.console.followups`): the list is open first and oldest first;
``--set ID STATE --note TEXT --as USER`` moves one on as that console user, who needs the
``followup`` permission, and lands in the audit log like the page's form (``via: cli``).
Human-readable tables by default, ``--json`` for machines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from fleet.cli.timefmt import local_time
from fleet.console import followups
from fleet.console.auth import acting_as
from fleet.console.store import Store, audit


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def _due(view: dict[str, Any], now: float) -> str:
    if view["state"] == "resolved":
        return "-"
    hours = (view["due_at"] - now) / 3600
    return f"OVERDUE {-hours:.0f} h" if hours < 0 else f"in {hours:.0f} h"


def run(args: argparse.Namespace) -> int:
    store = Store(args.db)
    try:
        if args.set:
            return _set(store, args)
        filters = followups.Filters(args.site, args.station, args.state)
        with store.session() as db:
            shown, total = followups.listing(db, filters)
    finally:
        store.close()
    if args.json:
        print(json.dumps(shown, ensure_ascii=False, indent=1))
        print(f"{len(shown)} of {total} follow-ups", file=sys.stderr)
        return 0
    now = time.time()
    local = local_time()
    rows = [
        [
            str(v["id"]),
            v["state"],
            "*" * v["rating"],
            f"{v['site']}/{v['station']}",
            v["service_name"]["en"],
            ", ".join(t["en"] for t in v["tags"]) or "-",
            local.minute(v["rated_at"]),
            _due(v, now),
            v["updated_by"] or "-",
        ]
        for v in shown
    ]
    header = ["id", "state", "stars", "station", "service", "tags", "rated", "due", "by"]
    print(_table(rows, header) if rows else "no follow-ups")
    if rows:
        print(f"{len(shown)} of {total} follow-ups (open first, oldest first)")
    return 0


def _set(store: Store, args: argparse.Namespace) -> int:
    raw_id, state = args.set
    if not args.actor:
        print("fleet followups: --set needs --as USER (a console user)", file=sys.stderr)
        return 2
    if not raw_id.isdigit():
        print(f"fleet followups: {raw_id!r} is not a follow-up id", file=sys.stderr)
        return 2
    with store.session() as db:
        who, why = acting_as(db, args.actor)
        if who is None or not who.may("followup"):
            reason = why or f"role {who.role if who else '?'} may not follow up"
            audit(db, args.actor, "followup", f"followup/{raw_id}", ok=False, via="cli")
            print(f"fleet followups: {args.actor}: {reason}", file=sys.stderr)
            return 1
        done = followups.change(db, int(raw_id), state, args.note, who.name, "cli")
    if isinstance(done, followups.FollowUpError):
        print(f"fleet followups: {done}", file=sys.stderr)
        return 1
    print(f"follow-up {done.id} is {done.state} (by {done.updated_by})")
    return 0
