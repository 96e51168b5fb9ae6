"""The fleet console, first slice: live station presence, health and events, on a web page.

An MQTT subscriber (user ``console``) keeps every station in memory: its own timers decide
online / stale / offline (stale after three missed heartbeats), never broker presence alone; a
late Will from an older session is recognised by its ``session`` number and ignored; events are
de-duplicated by ``event_id``. A Starlette app renders the fleet page (Jinja2) and
``/api/stations``. The console announces its own presence (retained, with a Will) so that agents
re-send their birth when it comes back.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import uvicorn
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from fleet.broker import CONSOLE_USER
from fleet.topics import CONSOLE_STATE, ROOT, dumps, loads, parse_station_topic

log = logging.getLogger("fleet.console")

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))
MISSED_HEARTBEATS = 3


@dataclass
class StationView:
    site: str
    station: str
    online: bool = False
    session: int = 0
    reason: str = ""
    last_health: dict[str, Any] = field(default_factory=dict)
    last_seen: float = 0.0
    birth: dict[str, Any] = field(default_factory=dict)
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=50))
    seen_events: set[str] = field(default_factory=set)

    def status(self, now: float) -> str:
        if not self.online:
            return "offline"
        interval = float(self.last_health.get("interval_s", 60.0))
        if self.last_seen and now - self.last_seen > MISSED_HEARTBEATS * interval:
            return "stale"
        return "online"

    def as_dict(self, now: float) -> dict[str, Any]:
        health = self.last_health
        return {
            "site": self.site,
            "station": self.station,
            "status": self.status(now),
            "session": self.session,
            "reason": self.reason,
            "ui_alive": health.get("ui_alive"),
            "devices": health.get("devices", {}),
            "last_txn_ts": health.get("last_txn_ts"),
            "app_version": self.birth.get("app_version"),
            "catalog_version": self.birth.get("catalog_version"),
            "last_seen": self.last_seen,
            "events": list(self.events)[-10:],
        }


class Console:
    def __init__(self, host: str, port: int, *, password: str = "") -> None:
        self.host = host
        self.port = port
        self.stations: dict[tuple[str, str], StationView] = {}
        self.duplicates = 0
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"console-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set(CONSOLE_USER, password)
        self.client.will_set(CONSOLE_STATE, dumps({"online": False}), qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.app = Starlette(
            routes=[Route("/", self.page), Route("/api/stations", self.api_stations)]
        )

    # --- MQTT ----------------------------------------------------------------------------------

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        info = self.client.publish(CONSOLE_STATE, dumps({"online": False}), qos=1, retain=True)
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(timeout=3)
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: Any,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the console: %s", reason)
            return
        for suffix in ("state", "birth", "health", "evt/#"):
            client.subscribe(f"{ROOT}/+/+/{suffix}", qos=1)
        client.publish(
            CONSOLE_STATE, dumps({"online": True, "ts": time.time()}), qos=1, retain=True
        )

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        parsed = parse_station_topic(message.topic)
        if parsed is None:
            return
        site, station, kind = parsed
        try:
            payload = loads(bytes(message.payload))
        except ValueError:
            log.warning("malformed payload on %s", message.topic)
            return
        with self._lock:
            view = self.stations.setdefault((site, station), StationView(site, station))
            self._apply(view, kind, payload)

    def _apply(self, view: StationView, kind: str, payload: dict[str, Any]) -> None:
        now = time.time()
        if kind == "state":
            session = int(payload.get("session", 0))
            if session < view.session:
                return  # a late Will from an older session: the station has reconnected since
            view.session = session
            view.online = bool(payload.get("online"))
            view.reason = str(payload.get("reason", ""))
            if view.online:
                view.last_seen = now
        elif kind == "birth":
            view.birth = payload
        elif kind == "health":
            view.last_health = payload
            view.last_seen = now
        elif kind.startswith("evt/"):
            event_id = str(payload.get("event_id", ""))
            if event_id in view.seen_events:
                self.duplicates += 1
                return
            view.seen_events.add(event_id)
            view.events.append({"type": kind[4:], **payload})

    def snapshot(self) -> list[dict[str, Any]]:
        now = time.time()
        with self._lock:
            return [v.as_dict(now) for _, v in sorted(self.stations.items())]

    # --- web -----------------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        return TEMPLATES.TemplateResponse(
            request, "fleet.html", {"stations": self.snapshot(), "now": time.time()}
        )

    async def api_stations(self, _request: Request) -> Response:
        return JSONResponse(self.snapshot())

    def serve(self, http_host: str, http_port: int) -> int:
        self.start()
        config = uvicorn.Config(self.app, host=http_host, port=http_port, log_level="warning")
        server = uvicorn.Server(config)

        def shutdown(*_args: object) -> None:
            server.should_exit = True

        signal.signal(signal.SIGTERM, shutdown)
        signal.signal(signal.SIGINT, shutdown)
        server.run()
        self.stop()
        return 0
