"""Device health and the UI's liveness: written by the UI, read by the agent.

One latest snapshot per device (not a history), and the UI's heartbeat, which the agent reads to
tell a frozen UI from a running one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from statedir.db import JournalBase


class HealthStore(JournalBase):
    """The latest health of each device and the UI heartbeat."""

    def put_health(self, devices: Sequence[dict[str, Any]]) -> None:
        now = self._clock()
        with self._tx() as db:
            db.executemany(
                "INSERT INTO health(device, payload, updated) VALUES (?, ?, ?)"
                " ON CONFLICT(device) DO UPDATE SET payload = excluded.payload,"
                " updated = excluded.updated",
                [(d["device"], json.dumps(d, sort_keys=True), now) for d in devices],
            )

    def health_snapshot(self) -> dict[str, dict[str, Any]]:
        with self._read() as db:
            rows = db.execute("SELECT device, payload FROM health").fetchall()
        return {r[0]: json.loads(r[1]) for r in rows}

    def touch_ui_heartbeat(self) -> None:
        """The UI calls this from its clock; a stale value tells the agent the UI is frozen."""
        self.set_meta("ui_heartbeat", repr(self._clock()))

    def ui_heartbeat(self) -> float | None:
        value = self.get_meta("ui_heartbeat")
        return None if value is None else float(value)
