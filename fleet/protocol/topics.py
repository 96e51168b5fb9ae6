"""Topics and payloads of the fleet protocol (DESIGN.md, "Fleet protocol (MQTT v5)")."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

ROOT = "kiosk/v1"
CONSOLE_STATE = f"{ROOT}/console/state"


@dataclass(frozen=True, slots=True)
class StationTopics:
    site: str
    station: str

    @property
    def root(self) -> str:
        return f"{ROOT}/{self.site}/{self.station}"

    @property
    def state(self) -> str:
        return f"{self.root}/state"

    @property
    def birth(self) -> str:
        return f"{self.root}/birth"

    @property
    def health(self) -> str:
        return f"{self.root}/health"

    @property
    def desired(self) -> str:
        return f"{self.root}/desired"

    @property
    def reported(self) -> str:
        return f"{self.root}/reported"

    def event(self, kind: str) -> str:
        return f"{self.root}/evt/{kind}"

    def command(self, command_id: str) -> str:
        return f"{self.root}/cmd/{command_id}"

    def command_result(self, command_id: str) -> str:
        return f"{self.root}/cmd/{command_id}/result"


def parse_station_topic(topic: str) -> tuple[str, str, str] | None:
    """``kiosk/v1/{site}/{station}/{rest}`` → (site, station, rest); None for other topics."""
    parts = topic.split("/", 4)
    if len(parts) < 5 or f"{parts[0]}/{parts[1]}" != ROOT or parts[2] == "console":
        return None
    return parts[2], parts[3], parts[4]


def dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def loads(data: bytes | str) -> dict[str, Any]:
    """A JSON object; ``ValueError`` for anything else (orjson: strict UTF-8, no NaN)."""
    value = orjson.loads(data)
    if not isinstance(value, dict):
        raise ValueError("payload is not a JSON object")
    return value
