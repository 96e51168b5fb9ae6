"""Well-formed station messages for tests that feed the console directly: every field the
protocol requires, with plain defaults, checked by the protocol's own models (a helper that
builds a message the console would set aside is a broken helper, and fails here)."""

from __future__ import annotations

import time
from typing import Any

from fleet.protocol import models
from fleet.protocol.topics import dumps

_EVENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "transaction": {
        "txn_id": "t-1",
        "service": "queue_ticket",
        "outcome": "completed",
        "outputs": [],
        "abandoned_state": None,
        "reason": None,
        "lang": "zh",
        "elder": False,
        "duration_s": 30.0,
    },
    "rating": {"txn_id": "t-1", "service": "queue_ticket", "rating": 5, "tags": []},
    "help": {"screen": "home", "txn_id": None},
    "alert": {"kind": "maintenance", "detail": {}},
    "call_end": {"call_id": "c-1", "reason": "dropped", "connected": True, "duration_s": 12.5},
    "csr": {"csr": "", "current_serial": "01", "current_not_after": "2027-01-01T00:00:00+00:00"},
}


def event(type_: str, station: str, event_id: str, /, **fields: Any) -> bytes:
    payload = {
        "event_id": event_id,
        "station": station,
        "ts": time.time(),
        "backfill": False,
        **_EVENT_DEFAULTS[type_],
        **fields,
    }
    return dumps(models.EVENTS[type_].model_validate_json(dumps(payload), strict=True).dump())


def birth(site: str, station: str, **fields: Any) -> bytes:
    payload = {
        "station": station,
        "site": site,
        "app_version": "0.1.0",
        "catalog_version": None,
        "hardware": {},
        "capabilities": ["id_card", "a4", "thermal", "voice"],
        "cert_expiry": None,
        "session": 1,
        "ts": time.time(),
        **fields,
    }
    return dumps(models.Birth.model_validate_json(dumps(payload), strict=True).dump())


def state(online: bool = True, session: int = 1, **fields: Any) -> bytes:
    payload = {
        "online": online,
        "session": session,
        "reason": "connect" if online else "lost",
        "ts": time.time(),
        **fields,
    }
    return dumps(models.State.model_validate_json(dumps(payload), strict=True).dump())


def health(**fields: Any) -> bytes:
    payload = {
        "seq": 1,
        "uptime": 10.0,
        "ui_alive": True,
        "devices": {},
        "disk_free_mib": 1000,
        "last_txn_ts": None,
        "outbox": 0,
        "interval_s": 60.0,
        "ts": time.time(),
        **fields,
    }
    return dumps(models.Health.model_validate_json(dumps(payload), strict=True).dump())
