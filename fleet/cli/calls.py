"""``fleet calls purge-recordings``: delete call recordings past their retention now.

The console's sweep does the same every hour (:func:`fleet.console.call_records.purge`); this is
for a console that is stopped, or for a retention just shortened. Each deletion is audited
``recording_purged`` in the console's database, as the console's own are.
"""

from __future__ import annotations

import argparse
import sys

from fleet.cli import default_db_folder
from fleet.console.call_records import RecordingPolicy, purge
from fleet.console.store import Store


def run_purge(args: argparse.Namespace) -> int:
    if not 1 <= args.days <= 3650:
        print("fleet calls purge-recordings: --days must be 1 to 3650", file=sys.stderr)
        return 2
    folder = args.dir or default_db_folder() / "recordings"
    policy = RecordingPolicy(enabled=False, days=args.days, folder=folder)
    store = Store(args.db)
    try:
        with store.session() as db:
            purged = purge(db, policy)
    finally:
        store.close()
    for call_id in purged:
        print(call_id)
    print(f"{len(purged)} recording(s) older than {args.days} days deleted", file=sys.stderr)
    return 0
