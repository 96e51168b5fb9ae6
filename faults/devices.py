"""Devices failing under a resident: the ID reader unplugged, A4 paper out, the thermal cover.

- **SAM reader unplug and replug**: a resident's card has been read (``choose``) when the
  USB-serial adapter disappears (the simulator closes its pty); the kiosk must close that session
  as abandoned (and report it), show the reader offline, and when the adapter comes back on a new
  pty behind the same stable link, read cards again without a restart. Recovered: the first card
  read after the replug.
- **A4 paper out mid-job**: the queue prints through a CUPS backend of the suite's own
  (``faults.rig.PAPER_BACKEND``) that, while a flag file exists, holds the job it is sending and
  reports ``STATE: +media-empty-error`` to cupsd, which is what a real backend does for a printer
  out of paper; the kiosk sees ``paper_out`` through IPP. Two cases: (a) paper refilled after 4 s,
  within the kiosk's print deadline: the job must come out once and the resident be served;
  (b) paper refilled only after the deadline (10 s here): the kiosk cancels the job, tells the
  resident and reports the failure, and the cancelled job must not come out later when the paper
  is back. CUPS keeps the backend's ``media-empty-error`` after a cancelled job and learns that
  paper is back only from the next job (a backend is handed ``PRINTER_STATE_REASONS`` and clears
  what the printer no longer says, as CUPS' ``ipp`` backend does), so the technician who refills
  the tray presses "Test print" (the console's ``test_print`` command): exactly one test page,
  then certificates are offered again. Recovered: from the refill in (a) to the job completed.
- **Thermal cover open**: the ESC/POS simulator's cover opens between the bytes and the cut of a
  slip (``FaultEscpos.cover_opens_mid_job``): nothing comes out, the driver must see it in the
  status after the job, the resident be told and the station go out of order (every service needs
  a slip); the cover is closed. Recovered: the first slip printed after the cover was closed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from faults.report import Row
from faults.rig import CERTIFICATE, FaultError, Rig, Session, until


def sam_unplug_replug(work: Path) -> Row:
    name = "SAM reader unplug and replug"
    with Rig(work) as rig:
        ui = rig.start_ui()
        rig.start_agent()
        rig.certificate_session()
        st = ui.do("start", state=["identify"])
        cut = Session(st["txn_id"], "social_insurance_certificate", finished=True)
        rig.ledger.sessions.append(cut)  # closed as abandoned: one transaction event expected
        rig.sam.insert()
        ui.wait(state=["choose"])
        rig.sam.unplug()
        after_unplug = ui.wait(state=["idle", "out_of_order"], timeout=30)
        until(
            lambda: ui.status()["health"].get("id_reader", [""])[0] == "offline",
            30,
            "the reader to be offline",
        )
        rig.sam.remove()
        time.sleep(1.0)
        rig.sam.replug()
        t0 = time.monotonic()
        st = ui.do("start", state=["identify"])
        session = Session(st["txn_id"], "social_insurance_certificate")
        rig.ledger.sessions.append(session)
        rig.sam.insert()
        ui.wait(state=["choose"], timeout=60)
        read = time.monotonic() - t0
        ui.do("pick", session.service, state=["preview"], preview_ready=True)
        rig._print_and_rate(session, 5, 60)
        rig.take_card()
        rig.settle()
        lost = rig.account()
        with rig._journal() as db:
            row = db.execute(
                "SELECT outcome, reason FROM transactions WHERE id = ?", (cut.txn_id,)
            ).fetchone()
    return Row(
        name,
        bool(session.print_ok),
        lost,
        read,
        f"unplugged with a card read: the kiosk went to {after_unplug['state']} and closed the"
        f" session as {row[0]} ({row[1]}); replugged on a new pty behind the same link;"
        " recovered = the first card read after the replug",
    )


def _reasons(rig: Rig) -> list[str]:
    """printer-state-reasons of the queue, as CUPS tells any client."""
    import cups

    host, _, port = rig.cups.server.rpartition(":")
    cups.setServer(host)
    cups.setPort(int(port))
    conn = cups.Connection(host=host, port=int(port))
    attrs = conn.getPrinterAttributes(
        rig.cups.queue, requested_attributes=["printer-state-reasons"]
    )
    return [str(r) for r in attrs.get("printer-state-reasons", [])]


def _media_empty(rig: Rig) -> bool:
    return any(r.startswith("media-empty") for r in _reasons(rig))


def a4_paper_out(work: Path, refill_s: float = 4.0, late_s: float = 14.0) -> Row:
    name = "A4 paper out mid-job"
    deadline = 10.0
    with Rig(
        work,
        paper_backend=True,
        ui_args=("--health-interval", "0.5", "--print-deadline", str(deadline)),
    ) as rig:
        rig.start_ui()
        rig.start_agent()
        first = rig.certificate_session()
        if not first.print_ok:
            raise RuntimeError("the paper backend does not print")
        flag = rig.cups.paper_flag
        marks: dict[str, float] = {}

        def technician(after: float) -> None:
            until(lambda: _media_empty(rig), 30, "CUPS to report media-empty", step=0.1)
            marks["seen"] = time.monotonic()
            time.sleep(after)
            flag.unlink()
            marks["refill"] = time.monotonic()

        # (a) refilled in time
        flag.touch()
        helper = threading.Thread(target=technician, args=(refill_s,), daemon=True)
        a = rig.certificate_session(before_confirm=helper.start)
        printed_at = time.monotonic()
        helper.join(30)
        recovered = printed_at - marks["refill"]
        # (b) refilled too late: the job is cancelled and must never come out
        flag.touch()
        marks.clear()
        helper = threading.Thread(target=technician, args=(late_s,), daemon=True)
        b = rig.certificate_session(before_confirm=helper.start)
        helper.join(60)
        time.sleep(3)  # would a cancelled job still print once the paper is back?
        pages_before = len(rig.cups.printed_files())
        ui = rig._ui()
        stale = ui.status()["unavailable"].get(CERTIFICATE, "")
        # CUPS learns that paper is back only from a job: the technician who refilled the tray
        # presses "Test print" (the console's command; the maintenance screen has the same)
        t_back = time.monotonic()
        rig.subscriber.send_command("test_print", {"printer": "a4"})
        try:
            until(lambda: CERTIFICATE not in ui.status()["unavailable"], 60, "certificates back")
        except FaultError:
            return Row(
                name,
                False,
                rig.account(),
                None,
                f"(a) printed={a.print_ok}; (b) printed={b.print_ok} ({b.error_key}); after the"
                f" refill and a test print the certificates stayed unavailable ({stale}) for"
                f" 60 s; CUPS printer-state-reasons {_reasons(rig)}",
            )
        back_s = time.monotonic() - t_back
        test_pages = len(rig.cups.printed_files()) - pages_before
        c = rig.certificate_session()
        rig.settle()
        lost = rig.account()
    return Row(
        name,
        bool(a.print_ok) and not b.print_ok and bool(c.print_ok) and test_pages == 1,
        lost,
        recovered,
        f"(a) paper back after {refill_s:.0f} s: printed={a.print_ok}; (b) paper back after"
        f" {late_s:.0f} s > deadline {deadline:.0f} s: printed={b.print_ok}, resident told"
        f" {b.error_key or '-'}, cancelled job never came out; next resident printed="
        f"{c.print_ok} (certificates offered again {back_s:.1f} s after the technician's test"
        f" print, {test_pages} page); recovered = refill to job completed in (a)",
    )


def thermal_cover_open(work: Path, open_s: float = 3.0) -> Row:
    name = "thermal cover open"
    with Rig(work) as rig:
        ui = rig.start_ui()
        rig.start_agent()
        rig.ticket_session()
        rig.escpos.cover_opens_mid_job = True
        failed = rig.ticket_session()
        until(lambda: ui.status()["state"] == "out_of_order", 30, "the station to go out of order")
        time.sleep(open_s)
        rig.escpos.cover_open = False
        t0 = time.monotonic()
        ui.wait(state=["idle"], timeout=30)
        back = rig.ticket_session()
        recovered = time.monotonic() - t0
        rig.settle()
        lost = rig.account()
    return Row(
        name,
        not failed.print_ok and bool(back.print_ok),
        lost,
        recovered,
        f"cover opened before the cut: printed={failed.print_ok}, resident told"
        f" {failed.error_key or '-'}, station out of order until the cover closed; recovered ="
        " the first slip after closing",
    )
