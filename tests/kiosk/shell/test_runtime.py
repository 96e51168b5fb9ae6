"""The shell without a screen: real drivers against their simulators, the runtime pumped by hand."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.escpos.simulator import EscposSimulator
from drivers.sam.simulator import SamSimulator
from flows.synthetic import DEMO_RESIDENT
from kiosk.shell.devices import SpeechOff
from kiosk.shell.runtime import Frame, Intent, Runtime
from sandbox.cups import CupsSandbox
from statedir.journal import Journal
from tests.kiosk.shell.station import pump_until, running_station


@pytest.fixture
def rig(
    tmp_path: Path, cups: CupsSandbox
) -> Iterator[tuple[Runtime, SamSimulator, EscposSimulator, list[Frame]]]:
    """The shell on a Monday morning at the station (the rig's clock): every service and window
    open, whenever CI runs."""
    with running_station(tmp_path, cups) as station:
        yield station.runtime, station.sam, station.printer, station.frames


def test_a_session_through_the_shell(
    rig: tuple[Runtime, SamSimulator, EscposSimulator, list[Frame]],
) -> None:
    runtime, sam, printer, frames = rig
    runtime.post(Intent("start"))
    pump_until(runtime, lambda: runtime.session.state == "identify")
    sam.insert(DEMO_RESIDENT)
    pump_until(runtime, lambda: runtime.session.state == "choose")
    assert frames[-1].view.masked_name == "张**"
    runtime.post(Intent("pick", "personal_tax_record"))
    pump_until(runtime, lambda: runtime.session.view.preview_ready)
    assert frames[-1].preview is not None and frames[-1].preview.png
    runtime.post(Intent("confirm"))
    pump_until(runtime, lambda: runtime.session.state == "rate")
    assert "个人所得税纳税记录".encode("gb18030") in printer.receipts[0].raw
    runtime.post(Intent("rate", (2, ("slow",))))
    pump_until(runtime, lambda: runtime.session.state == "take_card")  # the card is asked for
    sam.remove()
    pump_until(runtime, lambda: runtime.session.state == "thanks")
    runtime.post(Intent("cancel"))  # the thank-you's button
    pump_until(runtime, lambda: runtime.session.state == "idle")
    [txn] = runtime.journal.transactions()
    assert (txn.rating, txn.rating_tags, txn.outputs) == (2, ["slow"], ["a4", "thermal"])


def test_a_printer_that_never_answers_status_still_prints_the_notice(
    tmp_path: Path, cups: CupsSandbox
) -> None:
    """Status "unknown" (a printer silent to DLE EOT): the station serves, the slip prints."""
    with running_station(tmp_path, cups, thermal_profile="no-status-58") as station:
        runtime, printer = station.runtime, station.printer
        thermal = runtime.devices.thermal_printer
        pump_until(runtime, lambda: thermal.health().reasons == ("no_status",))
        assert thermal.health().state.value == "unknown"
        assert runtime.session.state == "idle"
        assert "disability_certificate_checklist" not in runtime.session.unavailable()
        runtime.post(Intent("start"))
        pump_until(runtime, lambda: runtime.session.state == "identify")
        runtime.post(Intent("skip_identity"))
        pump_until(runtime, lambda: runtime.session.state == "choose")
        runtime.post(Intent("pick", "disability_certificate_checklist"))
        pump_until(runtime, lambda: runtime.session.state == "notice")
        runtime.post(Intent("confirm"))
        pump_until(runtime, lambda: runtime.session.state == "rate")
        pump_until(runtime, lambda: len(printer.receipts) == 1)
        assert "一次性告知单" in printer.receipts[0].text
        [job] = runtime.journal.print_jobs()
        assert (job["state"], job["reason"]) == ("completed", "status_unknown")


def test_services_outside_their_hours_are_unavailable_with_the_reason(
    rig: tuple[Runtime, SamSimulator, EscposSimulator, list[Frame]],
) -> None:
    runtime, *_ = rig
    runtime.now = lambda: dt.datetime(2026, 11, 23, 2, 0)  # the tax platform's maintenance
    pump_until(runtime, lambda: "personal_tax_record" in runtime.session.unavailable())
    assert runtime.session.unavailable()["personal_tax_record"] == "unavailable.hours_opens"
    assert runtime.session.reason_params()["personal_tax_record"] == {
        "day": "today",
        "date": "2026-11-23",
        "time": "06:00",
    }
    assert "social_insurance_certificate" not in runtime.session.unavailable()


def test_out_of_paper_makes_slip_services_unavailable(
    rig: tuple[Runtime, SamSimulator, EscposSimulator, list[Frame]],
) -> None:
    runtime, _, printer, _ = rig
    printer.paper_out = True
    pump_until(runtime, lambda: runtime.session.state == "out_of_order")
    printer.paper_out = False
    pump_until(runtime, lambda: runtime.session.state == "idle")


def test_a_catalog_update_waits_for_the_end_of_the_session(
    rig: tuple[Runtime, SamSimulator, EscposSimulator, list[Frame]],
) -> None:
    runtime, *_ = rig
    newer = runtime.catalog.model_copy(update={"version": 2})
    runtime.post(Intent("start"))
    pump_until(runtime, lambda: runtime.session.state == "identify")
    runtime.offer_catalog(newer)
    runtime.pump()
    assert runtime.catalog.version == 1
    runtime.post(Intent("cancel"))
    pump_until(runtime, lambda: runtime.catalog.version == 2)


def test_a_failed_print_is_told_recorded_and_reported(
    rig: tuple[Runtime, SamSimulator, EscposSimulator, list[Frame]], cups: CupsSandbox
) -> None:
    runtime, sam, printer, frames = rig
    runtime._print_deadline_s = 3.0  # a short deadline for the test
    cups.printer.stop()  # the A4 printer is switched off
    try:
        runtime.post(Intent("start"))
        pump_until(runtime, lambda: runtime.session.state == "identify")
        sam.insert(DEMO_RESIDENT)
        pump_until(runtime, lambda: runtime.session.state == "choose")
        runtime.post(Intent("pick", "residence_certificate"))
        pump_until(runtime, lambda: runtime.session.view.preview_ready)
        runtime.post(Intent("confirm"))
        pump_until(runtime, lambda: runtime.session.state == "rate", timeout=20)
    finally:
        cups.printer.restart()
    view = frames[-1].view
    assert view.print_ok is False and view.print_error_key == "error.a4.timeout"
    assert printer.receipts == []  # no slip for a certificate that did not print
    [job] = runtime.journal.print_jobs()
    assert job["state"] == "failed" and job["printer"] == "a4"
    alerts = [e.payload for e in runtime.journal.pending_events() if e.type == "alert"]
    assert alerts and alerts[0]["kind"] == "print_failed"
    [txn] = runtime.journal.transactions()
    assert (txn.outcome, txn.reason) == ("failed", "error.a4.timeout")
    health = runtime.devices.a4_printer.health()
    assert "last_job_failed" in health.reasons


def test_maintenance_opens_only_with_the_gesture_and_the_pin(
    tmp_path: Path, rig: tuple[Runtime, SamSimulator, EscposSimulator, list[Frame]]
) -> None:
    from kiosk.shell.maintenance import MAX_FAILURES, Desk, PinGuard, hash_pin

    runtime, _, printer, _ = rig
    pin = "13579"
    now = [1_000_000.0]

    def clock() -> float:
        return now[0]

    runtime.desk = Desk(
        guard=PinGuard(hash_pin(pin), tmp_path / "pin.json", clock=clock),
        state_dir=tmp_path,
        app_version="test",
        post=runtime.queue.put,
        clock=clock,
    )

    def do(name: str, arg: Any = None) -> None:
        runtime.post(Intent(name, arg))
        runtime.pump()

    for _ in range(4):
        do("maint.gesture")
    assert runtime.session.state == "idle"  # four taps are not the gesture
    now[0] += 10
    for _ in range(5):
        do("maint.gesture")
    assert runtime.session.state == "unlock"
    for _ in range(MAX_FAILURES):
        for digit in "2468":
            do("maint.digit", digit)
        do("maint.submit")
    assert runtime.session.state == "unlock"
    assert runtime.desk.pad.message_key == "maint.locked"
    for digit in pin:
        do("maint.digit", digit)
    do("maint.submit")
    assert runtime.session.state == "unlock", "locked: the right PIN waits"
    now[0] += 301
    for digit in pin:
        do("maint.digit", digit)
    do("maint.submit")
    assert runtime.session.state == "maintenance"
    report = runtime.desk.report
    assert report is not None and report.catalog_version == runtime.catalog.version
    do("maint.test_print", "thermal")  # a technician's test slip reaches the printer
    pump_until(runtime, lambda: "printed" in runtime.desk.last_action, timeout=20)
    assert runtime.desk.last_action == "thermal: printed"
    # (double size on 58 mm paper: 16 columns, so the title takes two lines)
    assert any("Test receipt" in " ".join(r.lines) for r in printer.receipts)
    do("maint.desktop")
    assert runtime.session.state == "idle" and runtime.desk.exit_code == 3
    alerts = [e for e in runtime.journal.pending_events() if e.type == "alert"]
    actions = [e.payload["detail"]["action"] for e in alerts]
    assert actions == ["pin_locked", "entered", "desktop"]


class LoudnessLog(SpeechOff):
    """Speech that notes the loudness it is set to (the runtime's choice is under test)."""

    def __init__(self) -> None:
        self.levels: list[float] = []

    def set_volume(self, level: float) -> None:
        self.levels.append(level)

    def route(self, headphones: bool) -> bool:
        return False


def test_volume_follows_the_hours_and_resets_after_each_session(
    rig: tuple[Runtime, SamSimulator, EscposSimulator, list[Frame]],
) -> None:
    runtime, _, _, frames = rig
    speech = LoudnessLog()
    runtime.devices.speech = speech
    runtime._volume = (0.8, 0.5, "21:00-08:00")
    runtime.now = lambda: dt.datetime(2026, 11, 23, 23, 30)  # night: the quiet hours

    def do(name: str, arg: Any = None) -> None:
        runtime.post(Intent(name, arg))
        runtime.pump()

    do("start")
    do("louder", True)
    assert speech.levels[-1] == 1.0 and frames[-1].louder
    do("cancel")
    assert speech.levels[-1] == 0.5 and not frames[-1].louder  # back to the night volume
    runtime.now = lambda: dt.datetime(2026, 11, 24, 10, 0)
    do("start")
    do("cancel")
    assert speech.levels[-1] == 0.8  # the day volume


class SpokenLog(SpeechOff):
    def __init__(self) -> None:
        self.texts: list[str] = []

    def speak(self, text: str, *, lang: str, elder: bool = False) -> None:
        self.texts.append(text)


def test_an_idle_station_repeats_its_invitation_and_a_busy_one_does_not(
    rig: tuple[Runtime, SamSimulator, EscposSimulator, list[Frame]],
) -> None:
    runtime, _, _, _ = rig
    speech = SpokenLog()
    runtime.devices.speech = speech
    runtime._attract_every_s = 0.2
    invitation = runtime.tr("prompt.home", "zh")
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        runtime.pump()
        time.sleep(0.02)
    assert speech.texts.count(invitation) >= 3
    runtime.post(Intent("start"))
    runtime.pump()
    speech.texts.clear()
    deadline = time.monotonic() + 0.8
    while time.monotonic() < deadline:
        runtime.pump()
        time.sleep(0.02)
    assert invitation not in speech.texts  # a resident is being served: no advertising


def test_the_catalog_version_serving_residents_is_noted_for_the_agent(
    rig: tuple[Runtime, SamSimulator, EscposSimulator, list[Frame]],
) -> None:
    runtime, _, _, _ = rig
    assert runtime.journal.get_meta("catalog_version") == str(runtime.catalog.version)
    newer = runtime.catalog.model_copy(update={"version": runtime.catalog.version + 1})
    runtime.post(Intent("start"))
    runtime.pump()
    runtime.offer_catalog(newer)
    runtime.pump()
    assert runtime.journal.get_meta("catalog_version") == str(newer.version - 1)  # in session
    runtime.post(Intent("cancel"))
    runtime.pump()
    assert runtime.journal.get_meta("catalog_version") == str(newer.version)


class BrokenJournal(Journal):
    """A journal on a disk that filled up: writes fail as SQLite fails them, until it is freed."""

    full = False

    def begin_transaction(self, *args: Any, **kw: Any) -> str:
        if self.full:
            import sqlite3

            raise sqlite3.OperationalError("database or disk is full")
        return super().begin_transaction(*args, **kw)

    def set_meta(self, key: str, value: str) -> None:
        if self.full:
            import sqlite3

            raise sqlite3.OperationalError("database or disk is full")
        super().set_meta(key, value)


def test_a_journal_that_cannot_write_puts_the_station_out_of_order(
    rig: tuple[Runtime, SamSimulator, EscposSimulator, list[Frame]], tmp_path: Path
) -> None:
    runtime, _, _, frames = rig
    journal = BrokenJournal(tmp_path / "full.sqlite3")
    runtime.journal = journal
    journal.full = True
    runtime.post(Intent("start"))
    pump_until(runtime, lambda: runtime.session.state == "out_of_order", timeout=10)
    assert frames[-1].unavailable and set(frames[-1].unavailable.values()) == {
        "unavailable.journal"
    }
    assert journal.transactions() == []  # nothing could be written ...
    journal.full = False  # space was freed: the next health round finds the journal writable
    pump_until(runtime, lambda: runtime.session.state == "idle", timeout=10)
    pump_until(runtime, lambda: journal.outbox_size() > 0, timeout=10)
    # ... and the writes that waited were made, in order: the refused session is on record
    [txn] = journal.transactions()
    assert (txn.outcome, txn.abandoned_state, txn.reason) == ("abandoned", "identify", "cancel")


def test_the_journal_records_the_language_and_mode_the_resident_used(
    rig: tuple[Runtime, SamSimulator, EscposSimulator, list[Frame]],
) -> None:
    """Issue 20 point 9: a session begun in Chinese, standard mode, and switched on its way
    is recorded (and reported to the centre) as it was used; a switch on the rating page,
    after the transaction is finished, changes nothing and breaks nothing."""
    runtime, sam, _printer, _frames = rig
    runtime.post(Intent("start"))
    pump_until(runtime, lambda: runtime.session.state == "identify")
    runtime.post(Intent("lang", "en"))
    runtime.post(Intent("elder", True))
    sam.insert(DEMO_RESIDENT)
    pump_until(runtime, lambda: runtime.session.state == "choose")
    runtime.post(Intent("pick", "personal_tax_record"))
    pump_until(runtime, lambda: runtime.session.view.preview_ready)
    runtime.post(Intent("confirm"))
    pump_until(runtime, lambda: runtime.session.state == "rate")
    runtime.post(Intent("elder", False))  # after the finish: the transaction stays as used
    runtime.post(Intent("rate", (5, ())))
    pump_until(runtime, lambda: runtime.session.state == "take_card")
    assert runtime.writer.ok
    [txn] = runtime.journal.transactions()
    assert (txn.lang, txn.elder, txn.outcome, txn.rating) == ("en", True, "completed", 5)
    events = [e for e in runtime.journal.pending_events() if e.type == "transaction"]
    assert [(e.payload["lang"], e.payload["elder"]) for e in events] == [("en", True)]
