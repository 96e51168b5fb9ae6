"""Recordings of staff members' calls, kept with the resident's consent (issue 22).

Nothing is recorded unless the deployment says so (the console's ``call_recording``); then the
offer asks the kiosk to ask the resident (``CallOffer.record``), and the technician's browser
records only after the kiosk said ``consent:yes`` on the data channel. The browser mixes both
voices and uploads the recording in pieces (``RECORD_CHUNK_S``); this module keeps them:

- one file per call, ``<folder>/<call id>.webm`` (mode 0600, folder 0700), the pieces appended
  in order; a sidecar ``<call id>.json`` holds how many pieces and bytes are stored. A piece is
  written, fsynced, and only then counted (the sidecar replaced atomically), so a crash leaves
  at most uncounted bytes after the counted ones, cut off before the next piece is written and
  never served;
- the kiosk's word wins: its ``evt/call_end`` carries the resident's answer
  (``CallEndEvent.consent``); a call it does not say ``yes`` for keeps nothing
  (:func:`station_end`, audited ``recording_deleted``);
- retention: :func:`purge` deletes recordings older than ``call_recording_days`` (by the call's
  end, else the file's time), each audited ``recording_purged``; the console's sweep runs it.

Audio is never decoded here and nothing about the resident is kept beside it: the audit names
the station, the technician, times and sizes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.console.store import AuditEntry, CommandRow, Station, audit
from fleet.protocol.call import CALL_OFFER
from fleet.trust.pki import atomic_write

log = logging.getLogger("fleet.console.call_records")

MAX_PIECE = 8 * 1024 * 1024
"""One upload (RECORD_CHUNK_S of Opus is some tens of kB; room for a slow, late piece)."""
MAX_TOTAL = 512 * 1024 * 1024
"""One call's recording at most (Opus at 32 kbit/s: well over a day)."""
LATE_S = 60.0
"""Pieces are taken this long after the call's end (the last one arrives just after it)."""
DEFAULT_DAYS = 30
SUFFIX = ".webm"
_ID = re.compile(r"^[0-9a-f-]{1,64}$")

PURGE_EVERY_S = 3600.0  # the console's sweep purges recordings past their retention hourly


@dataclass(frozen=True)
class RecordingPolicy:
    """The deployment's choice (``call_recording``, ``call_recording_days``) and where the
    recordings live. Without a folder nothing is recorded."""

    enabled: bool = False
    days: int = DEFAULT_DAYS
    folder: Path | None = None

    @property
    def on(self) -> bool:
        return self.enabled and self.folder is not None


class RecordingError(Exception):
    """A piece not taken: ``status`` is the HTTP answer, the message says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# --- files ---------------------------------------------------------------------------------------


def _paths(folder: Path, call_id: str) -> tuple[Path, Path]:
    if not _ID.match(call_id):
        raise ValueError("not a call id")
    return folder / f"{call_id}{SUFFIX}", folder / f"{call_id}.json"


def stored(folder: Path | None, call_id: str) -> tuple[int, int] | None:
    """(pieces, bytes) stored for the call, or None when it has no recording."""
    if folder is None:
        return None
    _, meta = _paths(folder, call_id)
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return int(data["pieces"]), int(data["bytes"])


@contextlib.contextmanager
def _locked(folder: Path, call_id: str) -> Iterator[None]:
    """One writer per call across threads and console processes sharing the folder."""
    lock = folder / f".{call_id}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _make_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)


def _write_meta(meta: Path, pieces: int, size: int) -> None:
    atomic_write(meta, json.dumps({"pieces": pieces, "bytes": size}).encode(), 0o600)


def append(folder: Path, call_id: str, seq: int, piece: bytes) -> bool:
    """Store piece ``seq`` (0, 1, 2, ... in order). True if appended; False if that piece is
    stored already (a retry). A gap or a recording grown too large is a :class:`RecordingError`
    and nothing is written."""
    _make_folder(folder)
    data, meta = _paths(folder, call_id)
    with _locked(folder, call_id):
        pieces, size = stored(folder, call_id) or (0, 0)
        if seq < pieces:
            return False
        if seq > pieces:
            raise RecordingError(409, f"piece {seq} out of order: piece {pieces} is next")
        if size + len(piece) > MAX_TOTAL:
            raise RecordingError(413, "the call's recording is at its size limit")
        fd = os.open(data, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, size)  # whatever a crash left after the counted bytes
            os.lseek(fd, size, os.SEEK_SET)
            view = memoryview(piece)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        _write_meta(meta, pieces + 1, size + len(piece))
    return True


def read(folder: Path, call_id: str) -> Iterator[bytes]:
    """The stored recording's counted bytes, in blocks."""
    data, _ = _paths(folder, call_id)
    _, size = stored(folder, call_id) or (0, 0)
    with data.open("rb") as f:
        while size > 0:
            block = f.read(min(size, 64 * 1024))
            if not block:
                return
            size -= len(block)
            yield block


def delete(folder: Path, call_id: str) -> int:
    """Remove the call's recording; the bytes it held (0 if none)."""
    data, meta = _paths(folder, call_id)
    with _locked(folder, call_id):
        _, size = stored(folder, call_id) or (0, 0)
        for path in (meta, data):
            path.unlink(missing_ok=True)
    (folder / f".{call_id}.lock").unlink(missing_ok=True)
    return size


# --- the call's audit ----------------------------------------------------------------------------


def call_entries(db: Session, row: CommandRow, actions: tuple[str, ...]) -> list[AuditEntry]:
    """The call's audit entries among ``actions``, oldest first."""
    found = db.scalars(
        select(AuditEntry)
        .where(AuditEntry.action.in_(actions), AuditEntry.ts >= row.created_at)
        .order_by(AuditEntry.id)
    )
    return [e for e in found if (e.detail or {}).get("id") == row.id]


def station_said_no(db: Session, row: CommandRow) -> bool:
    """The kiosk's end event did not say ``yes``: nothing of this call is kept."""
    return bool(call_entries(db, row, ("recording_deleted",)))


def station_end(
    db: Session, policy: RecordingPolicy, row: CommandRow, target: str, consent: str
) -> None:
    """The kiosk's ``evt/call_end`` for a call offered to be recorded: unless it says ``yes``,
    the recording (if any, or if one may still come: the technician's page said yes) is
    deleted, audited ``recording_deleted``, and no piece is taken any more."""
    if consent == "yes" or policy.folder is None or not row.args.get("record"):
        return
    page_said_yes = any(
        (e.detail or {}).get("consent") == "yes" for e in call_entries(db, row, ("call_consent",))
    )
    if stored(policy.folder, row.id) is None and not page_said_yes:
        return
    if station_said_no(db, row):
        return
    size = delete(policy.folder, row.id)
    audit(
        db,
        "station",
        "recording_deleted",
        target,
        id=row.id,
        reason="no consent from the station",
        consent=consent,
        bytes=size,
    )
    log.info("recording of call %s deleted: the station did not say yes", row.id)


# --- retention -----------------------------------------------------------------------------------


def purge(db: Session, policy: RecordingPolicy, now: float | None = None) -> list[str]:
    """Delete recordings whose call ended more than ``policy.days`` before ``now`` (the file's
    time when the audit has no end), each audited ``recording_purged``; the ids deleted."""
    folder = policy.folder
    if folder is None or not folder.is_dir():
        return []
    now = time.time() if now is None else now
    cutoff = now - policy.days * 86400.0
    purged = []
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        call_id = path.name.removesuffix(SUFFIX)
        if not _ID.match(call_id):
            continue
        row = db.get(CommandRow, call_id)
        ends = call_entries(db, row, ("call_end",)) if row is not None else []
        try:
            when = ends[0].ts if ends else path.stat().st_mtime
        except FileNotFoundError:
            continue
        if when >= cutoff:
            continue
        size = delete(folder, call_id)
        target = _target(db, row) if row is not None else ""
        audit(
            db,
            "retention",
            "recording_purged",
            target,
            id=call_id,
            bytes=size,
            days=policy.days,
            ended=round(when, 1),
        )
        purged.append(call_id)
    return purged


def _target(db: Session, row: CommandRow) -> str:
    station = db.get(Station, row.station_id)
    return "" if station is None else f"{station.site}/{station.station}"


def calls(db: Session, folder: Path | None, limit: int = 100) -> list[dict[str, Any]]:
    """The most recent calls as the calls page lists them: station, staff, start, duration,
    how it ended, the consent (the station's word, else the page's), the recording's size."""
    offers = db.scalars(
        select(CommandRow)
        .where(CommandRow.name == CALL_OFFER)
        .order_by(CommandRow.created_at.desc())
        .limit(limit)
    ).all()
    listed = []
    for row in offers:
        mine = call_entries(db, row, ("call_start", "call_end", "call_consent"))
        start = next((e for e in mine if e.action == "call_start"), None)
        end = next((e for e in mine if e.action == "call_end"), None)
        end_detail = dict(end.detail or {}) if end is not None else {}
        consents = [e for e in mine if e.action == "call_consent"]
        consent = str(end_detail.get("consent") or "")
        if not consent and consents:
            consent = str((consents[-1].detail or {}).get("consent", ""))
        kept = stored(folder, row.id)
        listed.append(
            {
                "id": row.id,
                "station": _target(db, row),
                "staff": row.actor,
                "offered": row.created_at,
                "start": start.ts if start is not None else None,
                "duration_s": end_detail.get("duration_s"),
                "reason": end_detail.get("reason", ""),
                "record": bool(row.args.get("record")),
                "consent": consent,
                "bytes": kept[1] if kept else None,
            }
        )
    return listed
