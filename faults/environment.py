"""The machine under the kiosk: a disk that fills up, a wall clock that jumps.

- **Disk nearly full**: the state directory (journal, logs, the agent's files) is a tmpfs of its
  own (``mount -t tmpfs -o size=800m``; root needed). A ballast file leaves 100 MiB (below the
  disk guard's critical level: an alert, quieter logs), then 256 KiB (really full: SQLite and the
  logs get ENOSPC) while residents go on being served; then the ballast goes. Every session the
  harness drove must still be in the books exactly once. Recovered: from freeing the space to
  the first session whose transaction reached the subscriber.
- **Wall clock jumping forward and back**: the UI and the agent run with ``faults/clockshift.c``
  LD_PRELOAD'ed (compiled with gcc on the fly): their ``CLOCK_REALTIME`` jumps +3 h, then to −2 h,
  then back, each while residents are served, as when NTP or a technician steps the clock; the
  monotonic clock does not move, as on a real machine. (Not libfaketime: Debian's 0.9.10 breaks
  Python 3.11's ``time.sleep`` with the monotonic clock excluded, and hangs thread waits without
  it; see the C file.) Recovered: from a jump to the first session printed and rated after it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from faults.report import Row
from faults.rig import FaultError, Rig, until

MIB = 1024 * 1024


def _fill_to(mount: Path, free_bytes: int) -> None:
    ballast = mount / "ballast"
    have = ballast.stat().st_size if ballast.exists() else 0
    want = have + shutil.disk_usage(mount).free - free_bytes
    ballast.unlink(missing_ok=True)
    if want > 0:
        with ballast.open("wb") as f:
            os.posix_fallocate(f.fileno(), 0, want)


def disk_nearly_full(work: Path) -> Row:
    name = "disk nearly full"
    if os.geteuid() != 0:
        return Row(name, False, [], None, "not run: mounting a tmpfs needs root", ran=False)
    mount = work / "disk"
    mount.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=800m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return Row(name, False, [], None, f"not run: {done.stderr.strip()}", ran=False)
    try:
        with Rig(work, state_dir=mount / "state") as rig:
            ui = rig.start_ui()
            rig.start_agent()
            for _ in range(5):
                rig.ticket_session()
            _fill_to(mount, 100 * MIB)  # below the guard's critical level
            for _ in range(20):
                rig.ticket_session()
            rig.certificate_session()
            _fill_to(mount, 256 * 1024)  # really full
            full_ok = full_failed = 0
            for _ in range(20):
                try:
                    s = rig.ticket_session(timeout=20)
                    full_ok += bool(s.print_ok)
                except Exception:
                    full_failed += 1
                    ui.do("cancel", state=["idle", "out_of_order"], timeout=20)
            (mount / "ballast").unlink()
            t0 = time.monotonic()
            s = _first_session_served(rig, ui, within_s=60)
            until(
                lambda: s.txn_id in rig.subscriber.by_txn("transaction"),
                60,
                "the first session after the space came back to reach the centre",
            )
            recovered: float | None = time.monotonic() - t0
            stalled = ""
            try:
                rig.settle(timeout=60)
            except FaultError:
                stalled = (
                    f"the outbox stalled with {rig.outbox_size()} events after the space came"
                    " back, until the agent was restarted; "
                )
                recovered = None
                rig.stop_agent()
                rig.start_agent()
                rig.settle()
            lost = rig.account()
            alerts = [
                (b["kind"], b.get("detail", {}).get("level"))
                for k, b in rig.subscriber.events.values()
                if k == "alert" and str(b.get("kind", "")).startswith("disk")
            ]
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
    return Row(
        name,
        not stalled,
        lost,
        recovered,
        f"{stalled}state dir on an 800 MiB tmpfs; 100 MiB left: 20 sessions; 256 KiB left:"
        f" {full_ok} of 20 sessions printed ({full_failed} broke off); disk alerts at the"
        f" centre: {alerts};"
        " recovered = space freed to the next session reported",
    )


def _first_session_served(rig: Rig, ui: Any, within_s: float) -> Any:
    """After space came back, the station serves again once its health round finds the journal
    writable (it refuses services it could not record until then): try until it does."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return rig.ticket_session(timeout=20)
        except FaultError:
            if time.monotonic() > deadline:
                raise
            ui.do("cancel", state=["idle", "out_of_order"], timeout=20)
            time.sleep(1)


def _clockshift(work: Path) -> Path:
    lib = work / "clockshift.so"
    source = Path(__file__).with_name("clockshift.c")
    subprocess.run(
        ["gcc", "-O2", "-shared", "-fPIC", "-o", str(lib), str(source), "-ldl"],
        check=True,
        capture_output=True,
    )
    return lib


def clock_jumps(work: Path, sessions: int = 10) -> Row:
    name = "wall clock jumping forward and back"
    work.mkdir(parents=True, exist_ok=True)
    try:
        lib = _clockshift(work)
    except (OSError, subprocess.CalledProcessError) as err:
        return Row(
            name, False, [], None, f"not run: cannot build the clock shim ({err})", ran=False
        )
    offset = work / "clock-offset"
    offset.write_text("0\n")
    env = {"LD_PRELOAD": str(lib), "CLOCKSHIFT_FILE": str(offset)}
    recoveries = []
    seen: list[float] = []
    with Rig(work, env=env) as rig:
        rig.start_ui()
        rig.start_agent()
        for _ in range(sessions):
            rig.ticket_session()
        rig.certificate_session()
        for shift in (3 * 3600, -2 * 3600, 0):
            offset.write_text(f"{shift}\n")
            time.sleep(0.3)  # the shim re-reads the offset at most every 100 ms
            t0 = time.monotonic()
            first = rig.ticket_session()
            recoveries.append(time.monotonic() - t0)
            with rig._journal() as db:
                started = db.execute(
                    "SELECT started FROM transactions WHERE id = ?", (first.txn_id,)
                ).fetchone()[0]
            seen.append(round((started - time.time()) / 3600, 2))
            for _ in range(sessions):
                rig.ticket_session()
            rig.certificate_session()
        rig.settle()
        lost = rig.account()
    effective = abs(seen[0] - 3) < 0.05 and abs(seen[1] + 2) < 0.05
    if not effective:
        lost.append(f"(the clock shift did not take effect: the kiosk saw {seen} h)")
    return Row(
        name,
        all(s.print_ok for s in rig.ledger.sessions),
        lost,
        max(recoveries),
        f"UI and agent clocks stepped +3 h, −2 h, back to 0 (the journal saw {seen} h);"
        f" {len(rig.ledger.sessions)} sessions; recovered = worst first session after a jump",
    )
