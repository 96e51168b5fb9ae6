"""Maintenance mode for technicians: a hidden gesture, a PIN, and what a technician needs to see.

The way in is five quick taps on the station name (top left) of an idle or out-of-order screen,
then a PIN typed on a large keypad. The PIN is stored in the configuration only as a scrypt hash
(``kiosk pin-hash`` makes one); after ``MAX_FAILURES`` wrong PINs the pad locks for five minutes,
doubling with every further lockout up to an hour, and the lockout survives a restart (it is kept
in the state directory). Every entry, exit and lockout is an alert event for the centre.

Inside: device states, test prints on either printer, the catalog version, network and broker
state, the tail of the log, a way back to service and the only way to the desktop (the app exits
with :data:`EXIT_TO_DESKTOP`, which the systemd unit does not restart).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flows.session import Effect
    from kiosk.shell.runtime import Runtime

log = logging.getLogger("kiosk.shell.maintenance")

EXIT_TO_DESKTOP = 3
"""The app's exit status when a technician leaves to the desktop (``RestartPreventExitStatus``)."""

MAX_FAILURES = 5
LOCKOUT_S = 300.0
MAX_LOCKOUT_S = 3600.0
PIN_LENGTH = (4, 12)
GESTURE_TAPS = 5
GESTURE_WINDOW_S = 4.0

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_pin(pin: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$SALT$HASH`` (base64) for the ``[maintenance] pin_hash`` setting."""
    if not pin.isdigit() or not PIN_LENGTH[0] <= len(pin) <= PIN_LENGTH[1]:
        raise ValueError(f"a PIN is {PIN_LENGTH[0]} to {PIN_LENGTH[1]} digits")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, **_SCRYPT, dklen=32)
    params = f"{_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}"
    b64 = base64.b64encode
    return f"scrypt${params}${b64(salt).decode()}${b64(digest).decode()}"


def verify_pin(pin: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            pin.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


@dataclass(frozen=True, slots=True)
class PinResult:
    ok: bool
    message_key: str  # translation key of what the pad says
    seconds_locked: float = 0.0
    attempts_left: int = 0
    new_lockout: bool = False  # this attempt locked the pad


class PinGuard:
    """Checks PINs and locks the pad after repeated failures; the count survives restarts."""

    def __init__(
        self, pin_hash: str, state_file: Path, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.pin_hash = pin_hash
        self.state_file = state_file
        self.clock = clock

    def _load(self) -> dict[str, float]:
        try:
            data = json.loads(self.state_file.read_text())
            return {k: float(data.get(k, 0)) for k in ("failures", "locked_until", "lockouts")}
        except (OSError, ValueError, AttributeError):
            return {"failures": 0.0, "locked_until": 0.0, "lockouts": 0.0}

    def _save(self, state: dict[str, float]) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.state_file)

    def locked_for(self) -> float:
        return max(0.0, self._load()["locked_until"] - self.clock())

    def check(self, pin: str) -> PinResult:
        if not self.pin_hash:
            return PinResult(False, "maint.not_configured")
        state = self._load()
        left = state["locked_until"] - self.clock()
        if left > 0:
            return PinResult(False, "maint.locked", seconds_locked=left)
        if verify_pin(pin, self.pin_hash):
            self._save({"failures": 0, "locked_until": 0, "lockouts": 0})
            return PinResult(True, "")
        state["failures"] += 1
        if state["failures"] >= MAX_FAILURES:
            state["lockouts"] += 1
            seconds = min(LOCKOUT_S * 2 ** (state["lockouts"] - 1), MAX_LOCKOUT_S)
            state["locked_until"] = self.clock() + seconds
            state["failures"] = 0
            self._save(state)
            return PinResult(False, "maint.locked", seconds_locked=seconds, new_lockout=True)
        self._save(state)
        return PinResult(
            False, "maint.wrong_pin", attempts_left=MAX_FAILURES - int(state["failures"])
        )


class TapGesture:
    """Five taps within four seconds on one spot; anything else starts the count again."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._taps: list[float] = []

    def tap(self) -> bool:
        now = self.clock()
        self._taps = [t for t in self._taps if now - t <= GESTURE_WINDOW_S] + [now]
        if len(self._taps) >= GESTURE_TAPS:
            self._taps = []
            return True
        return False


@dataclass(frozen=True, slots=True)
class MaintenanceNote:
    """A technician's test print ended: what the maintenance screen says about it."""

    text: str


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    """What the maintenance screen shows; nothing personal ever gets in here."""

    devices: tuple[tuple[str, str, str], ...] = ()  # (kind, state, reasons)
    catalog_version: int = 0
    app_version: str = ""
    network: tuple[str, ...] = ()
    broker: str = ""
    log_tail: tuple[str, ...] = ()
    last_action: str = ""


@dataclass
class PinPad:
    """The digits typed so far (never logged) and what the pad says."""

    digits: str = field(default="", repr=False)
    message_key: str = "maint.enter_pin"
    message_arg: str = ""


def network_summary(timeout_s: float = 2.0) -> tuple[str, ...]:
    """One line per interface with an address, from ``ip -brief address``."""
    try:
        out = subprocess.run(
            ["ip", "-brief", "address"], capture_output=True, text=True, timeout=timeout_s
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return (socket.gethostname(),)
    lines = [" ".join(line.split()) for line in out.splitlines() if line.strip()]
    return (socket.gethostname(), *lines[:6])


def log_tail(path: Path, lines: int = 14, max_bytes: int = 16384) -> tuple[str, ...]:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - max_bytes))
            text = f.read().decode(errors="replace")
    except OSError:
        return ()
    return tuple(line[:160] for line in text.splitlines()[-lines:])


def broker_summary(agent_dir: Path, journal_meta: Callable[[str], str | None]) -> str:
    """What the agent last said about its connection (it writes ``broker_state`` to the meta)."""
    state = journal_meta("broker_state")
    return state or ("agent not seen" if not agent_dir.exists() else "unknown")


class Desk:
    """The shell's side of maintenance mode; the runtime hands it every ``maint.*`` intent.

    It runs on the runtime's thread, except test prints, which run on a worker and report back
    through ``post`` (the runtime's queue).
    """

    def __init__(
        self,
        *,
        guard: PinGuard,
        state_dir: Path,
        app_version: str,
        post: Callable[[Any], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.guard = guard
        self.state_dir = state_dir
        self.app_version = app_version
        self.post = post
        self.gesture = TapGesture(clock)
        self.pad = PinPad()
        self.report: MaintenanceReport | None = None
        self.exit_code: int | None = None
        self.last_action = ""

    def reset(self) -> None:
        self.pad = PinPad()
        self.report = None
        self.last_action = ""

    def type_digit(self, digit: str) -> None:
        if digit.isdigit() and len(digit) == 1 and len(self.pad.digits) < PIN_LENGTH[1]:
            self.pad.digits += digit
            self.pad.message_key, self.pad.message_arg = "maint.enter_pin", ""

    def erase(self) -> None:
        self.pad.digits = self.pad.digits[:-1]

    def submit(self) -> PinResult:
        pin, self.pad.digits = self.pad.digits, ""
        result = self.guard.check(pin)
        self.pad.message_key = result.message_key or "maint.enter_pin"
        if result.message_key == "maint.locked":
            self.pad.message_arg = str(max(1, round(result.seconds_locked / 60)))
        elif result.message_key == "maint.wrong_pin":
            self.pad.message_arg = str(result.attempts_left)
        else:
            self.pad.message_arg = ""
        return result

    def build_report(
        self,
        *,
        devices: list[tuple[str, str, str]],
        catalog_version: int,
        meta: Callable[[str], str | None],
    ) -> MaintenanceReport:
        self.report = MaintenanceReport(
            devices=tuple(devices),
            catalog_version=catalog_version,
            app_version=self.app_version,
            network=network_summary(),
            broker=broker_summary(self.state_dir / "agent", meta),
            log_tail=log_tail(self.state_dir / "logs" / "kiosk.log"),
            last_action=self.last_action,
        )
        return self.report

    # --- the runtime hands every ``maint.*`` intent here (on its one thread) -------------------

    def intent(self, rt: Runtime, name: str, arg: Any) -> list[Effect]:
        s = rt.session
        if name == "maint.gesture":
            if s.state in ("idle", "out_of_order") and self.gesture.tap():
                self.reset()
                return s.on_open_maintenance()
            return []
        if s.state not in ("unlock", "maintenance"):
            raise ValueError(f"{name} outside maintenance mode")
        if name in ("maint.leave", "maint.desktop"):
            if s.state == "maintenance":
                rt.journal.alert("maintenance", {"action": name.removeprefix("maint.")})
                if name == "maint.desktop":
                    self.exit_code = EXIT_TO_DESKTOP
            self.reset()
            return s.on_close_maintenance()
        effects = s.on_touch()
        if name == "maint.digit":
            self.type_digit(str(arg))
        elif name == "maint.erase":
            self.erase()
        elif name == "maint.submit" and s.state == "unlock":
            result = self.submit()
            if result.ok:
                rt.journal.alert("maintenance", {"action": "entered"})
                effects = s.on_unlocked()
                self.refresh(rt)
            elif result.new_lockout:
                rt.journal.alert("maintenance", {"action": "pin_locked"})
        elif name == "maint.refresh" and s.state == "maintenance":
            rt.refresh_health()
            self.refresh(rt)
        elif name == "maint.test_print" and s.state == "maintenance":
            threading.Thread(
                target=self._test_print, args=(rt, str(arg)), name="test-print", daemon=True
            ).start()
            self.last_action = f"{arg}: …"
            self.refresh(rt)
        return effects

    def noted(self, rt: Runtime, text: str) -> None:
        self.last_action = text
        self.refresh(rt)

    def refresh(self, rt: Runtime) -> None:
        devices = [
            (kind, h.state.value, ", ".join(h.reasons)) for kind, h in sorted(rt.health.items())
        ]
        self.build_report(
            devices=devices, catalog_version=rt.catalog.version, meta=rt.journal.get_meta
        )

    @staticmethod
    def _test_print(rt: Runtime, which: str) -> None:
        """On a worker: a test page or slip, built like the real ones; the result goes back."""
        from kiosk.shell import printing

        now = rt.now()
        try:
            if which == "a4":
                outcome = printing.print_test_page(rt.devices.a4_printer, now, rt.catalog, rt.font)
            else:
                outcome = printing.print_test_slip(rt.devices.thermal_printer, now)
            text = f"{which}: {'printed' if outcome.ok else 'NOT printed'}"
            if outcome.reasons:
                text += f" ({', '.join(outcome.reasons)})"
        except Exception as err:
            log.exception("test print on %s failed", which)
            text = f"{which}: NOT printed ({type(err).__name__})"
        rt.queue.put(MaintenanceNote(text))
