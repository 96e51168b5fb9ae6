"""The nightly restart (kiosk-nightly-restart.service): ask the UI to restart between sessions.

Queues a ``restart_ui`` command in the station's journal, exactly as the centre would through
the agent; the UI takes it when no resident is in a session, exits with status 4 and
``kiosk-ui.service`` starts it again. One command per night (its id is the date), so running
this twice does no harm. It must run as the kiosk user with the kiosk's configuration
(``KIOSK_CONFIG``). Installed as /usr/lib/station-kiosk/nightly_restart.py.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

from kiosk.config import load_config
from statedir.journal import Journal

DEADLINE_S = 3 * 3600  # a session that never ends does not keep the restart pending all day


def main() -> int:
    path = os.environ.get("KIOSK_CONFIG")
    config = load_config(Path(path) if path else None)
    journal = Journal(config.state_dir / "journal.sqlite3")
    try:
        command_id = f"nightly-restart-{dt.date.today():%Y%m%d}"
        record, new = journal.add_command(
            command_id, "restart_ui", {}, target="ui", deadline=time.time() + DEADLINE_S
        )
    finally:
        journal.close()
    print(f"{command_id}: {'queued' if new else 'already ' + record.state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
