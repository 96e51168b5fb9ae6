"""Two :class:`fleet.console.rollout.RolloutStore` implementations without a database: in memory
(tests, benchmarks) and one JSON file per rollout in a folder."""

from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any

from fleet.console.rollout import FINAL_STATES, RolloutError, RolloutRecord


class MemoryStore:
    def __init__(self) -> None:
        self._records: dict[str, dict[str, Any]] = {}
        self._rev = 0
        self._lock = threading.Lock()

    def save(self, record: RolloutRecord) -> None:
        data = record.to_dict()
        with self._lock:
            self._records[record.id] = data

    def load(self, rollout_id: str) -> RolloutRecord | None:
        with self._lock:
            data = self._records.get(rollout_id)
        return RolloutRecord.from_dict(data) if data is not None else None

    def active_ids(self) -> list[str]:
        with self._lock:
            return [k for k, v in self._records.items() if v["state"] not in FINAL_STATES]

    def next_rev(self, floor: int = 0) -> int:
        with self._lock:
            self._rev = max(self._rev, floor) + 1
            return self._rev


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":"), sort_keys=True))
    os.replace(tmp, path)


class JsonFileStore:
    """One JSON file per rollout in ``folder`` (written atomically), and ``revs.json``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _path(self, rollout_id: str) -> Path:
        if not rollout_id or "/" in rollout_id or rollout_id.startswith("."):
            raise RolloutError(f"not a rollout id: {rollout_id!r}")
        return self.folder / f"rollout-{rollout_id}.json"

    def save(self, record: RolloutRecord) -> None:
        with self._lock:
            _write_json(self._path(record.id), record.to_dict())

    def load(self, rollout_id: str) -> RolloutRecord | None:
        try:
            data = json.loads(self._path(rollout_id).read_text())
        except FileNotFoundError:
            return None
        return RolloutRecord.from_dict(data)

    def active_ids(self) -> list[str]:
        ids = []
        for path in sorted(self.folder.glob("rollout-*.json")):
            data = json.loads(path.read_text())
            if data["state"] not in FINAL_STATES:
                ids.append(str(data["id"]))
        return ids

    def next_rev(self, floor: int = 0) -> int:
        path = self.folder / "revs.json"
        with self._lock:
            try:
                last = int(json.loads(path.read_text())["last_rev"])
            except FileNotFoundError:
                last = 0
            rev = max(last, floor) + 1
            _write_json(path, {"last_rev": rev})
            return rev
