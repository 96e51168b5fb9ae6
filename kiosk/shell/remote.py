"""The kiosk's side of remote commands: what the agent asks of the UI through the journal.

The agent (``fleet.agent.commands``) writes UI-side commands to the journal's ``commands`` table as
``pending``; :meth:`KioskRemote.poll`, called from :meth:`kiosk.shell.runtime.Runtime.pump` on the
UI
thread, picks them up when it may, carries them out and writes the result, which the agent
publishes. A command still pending at its deadline is ``timed_out`` (the agent decides).

- ``test_print`` (``printer``: ``a4`` | ``thermal``): a sample page or receipt, never during a
  resident's session; ``failed`` with the printer's reasons if it did not print.
- ``self_test``: every device's health, now; ``failed`` (``devices_faulty``) if one is in fault
  or offline (a device switched off in the configuration, e.g. speech, is not a fault).
- ``reload_catalog``: re-read the catalog store; the catalog applies between sessions.
- ``screenshot``: a PNG of the attract screen only. While a resident is in a session it is
  refused at once (``failed``, ``in_session``); on the out-of-order or maintenance screens too
  (``not_attract_screen``). The attract screen must have been shown for
  :data:`IDLE_SETTLE_S`, so the picture is never one of a session's last frame. The exception
  is a staff member's call (``args: {"call": id}``, :mod:`kiosk.shell.call`): while that call
  is talking, the screen as it is, for the staff member guiding the resident; the screen shows
  a resident's name and ID number only masked, so the picture does too. The PNG is
  written to ``{state}/screenshots/{id}.png``, downscaled until it fits the payload limit; the
  agent sends it base64-encoded.
- ``restart_ui``: waits until no resident is in a session, then the app stops with
  :data:`EXIT_RESTART_UI` (the systemd unit has ``Restart=always``, and only
  ``RestartPreventExitStatus=3``, leaving to the desktop, keeps it down). The result is written
  by the next UI process when it starts (:meth:`KioskRemote.recover`): ``succeeded`` with
  ``restarted: true``. If the UI never comes back, the command times out.
- ``call_offer`` (:mod:`fleet.protocol.call`): a staff member's call, answered or refused at
  once by :mod:`kiosk.shell.call`.
- ``help_reply`` (:mod:`fleet.protocol.help`): a technician's answer to a help request, shown
  and spoken at once (:mod:`kiosk.shell.helpdesk`), in a session or on the home screen;
  ``succeeded`` with ``shown: session | home``. A technician at the station (maintenance) or an
  answer that does not parse: ``failed``.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleet.protocol.call import CALL_OFFER
from fleet.protocol.help import HELP_REPLY, parse_reply
from flows.catalog import Catalog
from flows.models import DeviceState
from statedir.journal import CommandRecord

if TYPE_CHECKING:
    from kiosk.shell.runtime import Runtime

log = logging.getLogger("kiosk.shell.remote")

EXIT_RESTART_UI = 4
"""The app's exit status for a remote ``restart_ui`` (systemd ``Restart=always`` restarts it)."""

POLL_S = 0.5
IDLE_SETTLE_S = 1.0
MAX_PNG_BYTES = 180 * 1024  # base64 makes it ~240 KiB, under the agent's 256 KiB payload limit
KEEP_SCREENSHOTS = 5
NO_SESSION = frozenset({"idle", "out_of_order", "unlock", "maintenance"})
"""States in which no resident is being served."""
WAIT_FOR_IDLE = frozenset({"test_print", "restart_ui"})

Screenshot = Callable[[Path], "str | Path"]
"""App-provided, called on the UI thread: write a PNG of the window near ``path``, return where."""


class KioskRemote:
    def __init__(
        self,
        runtime: Runtime,
        *,
        screenshot: Screenshot | None = None,
        catalog_loader: Callable[[], Catalog] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runtime = runtime
        self.screenshot = screenshot
        self.catalog_loader = catalog_loader
        self.exit_code: int | None = None
        self._clock = clock
        self._next_poll = 0.0
        self._idle_since: float | None = None

    @property
    def state_dir(self) -> Path:
        return self.runtime.journal.path.parent

    def recover(self) -> None:
        """At start: settle what the previous UI process left running."""
        journal = self.runtime.journal
        for cmd in journal.commands(state="running", target="ui"):
            if cmd.name == "restart_ui":
                journal.finish_command(cmd.id, "succeeded", {"restarted": True})
            else:
                journal.finish_command(cmd.id, "failed", {"reason": "interrupted"})

    def poll(self) -> bool:
        """UI thread, from the pump: take up pending commands; True if the frame must change."""
        now = self._clock()
        state = self.runtime.session.state
        if state == "idle":
            self._idle_since = self._idle_since if self._idle_since is not None else now
        else:
            self._idle_since = None
        if now < self._next_poll or self.exit_code is not None:
            return False
        self._next_poll = now + POLL_S
        changed = False
        for cmd in self.runtime.journal.commands(state="pending", target="ui"):
            try:
                changed |= self._take(cmd, state, now)
            except Exception as err:
                log.exception("remote command %s failed", cmd.id)
                self._finish(cmd, "failed", {"reason": "error", "error": type(err).__name__})
        return changed

    def _take(self, cmd: CommandRecord, state: str, now: float) -> bool:
        if cmd.name == CALL_OFFER:  # a staff member's call: at once or never (kiosk.shell.call)
            return self.runtime.calls.offer(cmd, state)
        in_session = state not in NO_SESSION
        if cmd.name in WAIT_FOR_IDLE and (in_session or state in ("unlock", "maintenance")):
            return False  # later, when the resident is done (or the deadline passes)
        guided = cmd.name == "screenshot" and self.runtime.calls.guides(cmd.args)
        if cmd.name == "screenshot" and not guided:
            if state != "idle":
                reason = "in_session" if in_session else "not_attract_screen"
                if self.runtime.journal.claim_command(cmd.id):
                    self._finish(cmd, "failed", {"reason": reason})
                return False
            if self._idle_since is None or now - self._idle_since < IDLE_SETTLE_S:
                return False
        if not self.runtime.journal.claim_command(cmd.id):
            return False
        log.info("remote command %s (%s)", cmd.id, cmd.name)
        if cmd.name == "restart_ui":
            self.exit_code = EXIT_RESTART_UI
            return True
        if cmd.name == "screenshot":
            self._screenshot(cmd)
            return False
        if cmd.name == HELP_REPLY:
            self._help_reply(cmd, state)
            return True
        work: dict[str, Callable[[CommandRecord], tuple[str, dict[str, Any]]]] = {
            "test_print": self._test_print,
            "self_test": self._self_test,
            "reload_catalog": self._reload_catalog,
        }
        run = work.get(cmd.name)
        if run is None:
            self._finish(cmd, "failed", {"reason": "unsupported"})
            return False
        threading.Thread(
            target=self._worker, args=(cmd, run), name=f"remote-{cmd.name}", daemon=True
        ).start()
        return False

    def _finish(self, cmd: CommandRecord, state: str, detail: dict[str, Any]) -> None:
        if not self.runtime.journal.finish_command(cmd.id, state, detail):
            log.warning("remote command %s ended after its deadline", cmd.id)

    def _worker(
        self, cmd: CommandRecord, run: Callable[[CommandRecord], tuple[str, dict[str, Any]]]
    ) -> None:
        try:
            state, detail = run(cmd)
        except Exception as err:
            log.exception("remote command %s (%s) failed", cmd.id, cmd.name)
            state, detail = "failed", {"reason": "error", "error": type(err).__name__}
        self._finish(cmd, state, detail)

    # --- the commands ----------------------------------------------------------------------------

    def _test_print(self, cmd: CommandRecord) -> tuple[str, dict[str, Any]]:
        from kiosk.shell import printing

        rt = self.runtime
        printer = str(cmd.args.get("printer"))
        now = rt.now()
        if printer == "a4":
            outcome = printing.print_test_page(
                rt.devices.a4_printer,
                now,
                rt.catalog,
                rt.font,
                job_key=f"remote:{cmd.id}",
                title="remote test page",
            )
        elif printer == "thermal":
            outcome = printing.print_test_slip(rt.devices.thermal_printer, now)
        else:
            return "failed", {"reason": "bad_args"}
        detail = {
            "printer": printer,
            "state": outcome.job_state.value,
            "reasons": list(outcome.reasons),
        }
        if outcome.ok:
            return "succeeded", detail
        return "failed", {"reason": "not_printed", **detail}

    def _self_test(self, _cmd: CommandRecord) -> tuple[str, dict[str, Any]]:
        devices: dict[str, dict[str, Any]] = {}
        for device in self.runtime.devices.all():
            try:
                h = device.health()
                key = h.device if h.kind == "provider" else h.kind
                devices[key] = {"state": h.state.value, "reasons": list(h.reasons)}
            except Exception as err:
                name = str(getattr(device, "name", type(device).__name__))
                devices[name] = {"state": "fault", "reasons": [type(err).__name__]}
        bad = sorted(
            k
            for k, d in devices.items()
            if d["state"] in (DeviceState.FAULT.value, DeviceState.OFFLINE.value)
            and "disabled_in_config" not in d["reasons"]
        )
        if bad:
            return "failed", {"reason": "devices_faulty", "faulty": bad, "devices": devices}
        return "succeeded", {"devices": devices}

    def _help_reply(self, cmd: CommandRecord, state: str) -> None:
        from kiosk.shell.helpdesk import HelpAnswer

        reply = parse_reply(cmd.args)
        if reply is None:
            self._finish(cmd, "failed", {"reason": "bad_args"})
        elif state in ("unlock", "maintenance"):
            self._finish(cmd, "failed", {"reason": "maintenance"})
        else:
            self.runtime.queue.put(HelpAnswer(reply))  # shown and spoken on the next pump
            shown = "home" if state in NO_SESSION else "session"
            self._finish(cmd, "succeeded", {"shown": shown, "lang": self.runtime.session.lang})

    def _reload_catalog(self, _cmd: CommandRecord) -> tuple[str, dict[str, Any]]:
        if self.catalog_loader is None:
            return "failed", {"reason": "unsupported"}
        catalog = self.catalog_loader()
        self.runtime.offer_catalog(catalog)
        idle = self.runtime.session.state in NO_SESSION
        return "succeeded", {
            "version": catalog.version,
            "applies": "now" if idle else "after_session",
        }

    def _screenshot(self, cmd: CommandRecord) -> None:
        """UI thread: grab the window now; shrink and store it off the UI thread."""
        if self.screenshot is None:
            self._finish(cmd, "failed", {"reason": "unsupported"})
            return
        shots = self.state_dir / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        raw = Path(self.screenshot(shots / f".grab-{cmd.id}.png"))
        threading.Thread(
            target=self._worker,
            args=(cmd, lambda c: self._store_png(c, raw, shots)),
            name="remote-screenshot",
            daemon=True,
        ).start()

    def _store_png(self, cmd: CommandRecord, raw: Path, shots: Path) -> tuple[str, dict[str, Any]]:
        try:
            png, size = fit_png(raw.read_bytes(), MAX_PNG_BYTES)
        finally:
            raw.unlink(missing_ok=True)
        target = shots / f"{cmd.id}.png"
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(png)
        tmp.replace(target)
        for old in sorted(shots.glob("*.png"), key=lambda p: p.stat().st_mtime)[:-KEEP_SCREENSHOTS]:
            old.unlink(missing_ok=True)
        return "succeeded", {
            "file": f"screenshots/{target.name}",
            "width": size[0],
            "height": size[1],
            "bytes": len(png),
        }


def fit_png(data: bytes, max_bytes: int) -> tuple[bytes, tuple[int, int]]:
    """A PNG no larger than ``max_bytes``: as is, else downscaled (and reduced to 256 colours)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as opened:
        if len(data) <= max_bytes:
            return data, opened.size
        image = opened.convert("RGB")
    width = image.size[0]
    while True:
        width = int(width * 0.75)
        height = max(1, round(image.size[1] * width / image.size[0]))
        small = image.resize((width, height), Image.Resampling.LANCZOS)
        small = small.quantize(colors=256)
        out = io.BytesIO()
        small.save(out, format="PNG", optimize=True)
        if out.tell() <= max_bytes or width <= 160:
            return out.getvalue(), small.size
