"""Processes killed with SIGKILL: the UI mid-print, the agent mid-outbox, a writer mid-SQLite.

- **UI killed mid-print**: the A4 printer is switched off so the certificate job waits in CUPS
  after the kiosk submitted it (``print_jobs`` says ``submitted``); the UI process is killed with
  SIGKILL; the printer comes back; the UI is started again. It must settle the job (exactly once:
  the paper comes out once, the journal says completed) and serve the next resident. Recovered:
  the next certificate session printed (from the restart of the UI).
- **Agent killed mid-outbox**: the agent is down while the UI serves residents and the outbox
  fills (with the UI's sessions and 3,000 more written through the journal API as the UI writes
  them); the agent is started and killed with SIGKILL twice in the middle of draining, while the
  UI keeps serving; then started for good. Every event must reach the subscriber (duplicates are
  allowed only as at-least-once redeliveries of the same event id). Recovered: the first event
  delivered after the last restart.
- **Kill during an SQLite write**: a process writes sessions through
  :class:`statedir.journal.Journal` as fast as it can and prints each transaction id once it is
  committed; it is killed with SIGKILL at random moments, 40 times. After each kill ``PRAGMA
  integrity_check`` must say ok, and every transaction the writer saw committed must be there,
  closed, with its events. Recovered: the first commit of the next writer (from its start).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from faults.report import Row
from faults.rig import CERTIFICATE, REPO, Rig, Session, until
from statedir.journal import Journal


def _cups_jobs(rig: Rig) -> int:
    out = subprocess.run(
        ["lpstat", "-h", rig.cups.server, "-o", rig.cups.queue],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return len([line for line in out.splitlines() if line.strip()])


def _print_states(rig: Rig) -> dict[str, str]:
    with rig._journal() as db:
        return {k: st for k, st in db.execute("SELECT key, state FROM print_jobs")}


def ui_kill_mid_print(work: Path) -> Row:
    name = "kill -9 of the UI mid-print"
    with Rig(work, ui_args=("--health-interval", "0.5", "--print-deadline", "120")) as rig:
        ui = rig.start_ui()
        rig.start_agent()
        rig.ticket_session()
        rig.certificate_session()
        rig.cups.printer.stop()  # the A4 printer is off: the job waits in CUPS
        st = ui.do("start", state=["identify"])
        cut = Session(st["txn_id"], CERTIFICATE)
        rig.ledger.sessions.append(cut)
        rig.ledger.interrupted.append(cut.txn_id)
        rig.sam.insert()
        ui.wait(state=["choose"])
        ui.do("pick", CERTIFICATE, state=["preview"], preview_ready=True)
        ui.do("confirm", state=["printing"])
        until(lambda: _cups_jobs(rig) > 0, 30, "the job to reach CUPS")
        submitted = [k for k, s in _print_states(rig).items() if s == "submitted"]
        ui.kill9()  # the kiosk dies mid-print
        rig.ui = None
        rig.cups.printer.restart()
        t0 = time.monotonic()
        rig.take_card()
        rig.start_ui()
        until(
            lambda: all(_print_states(rig).get(k) == "completed" for k in submitted),
            60,
            "the interrupted job to be settled",
        )
        settled = time.monotonic() - t0
        after = rig.certificate_session()
        recovered = time.monotonic() - t0
        survived = bool(after.print_ok)
        rig.settle()
        lost = rig.account()
        states = [_print_states(rig).get(k) for k in submitted]
    return Row(
        name,
        survived,
        lost,
        recovered,
        f"killed with job {','.join(k[:12] for k in submitted)} submitted and waiting in CUPS;"
        f" after restart it was settled {states} in {settled:.1f} s; recovered = the next"
        " certificate printed",
    )


def fill_outbox(journal: Journal, n: int) -> list[str]:
    """n closed and rated sessions written as the UI writes them; their transaction ids."""
    ids = []
    for i in range(n):
        txn = journal.begin_transaction("queue_ticket", lang="zh", elder=i % 2 == 0)
        journal.update_transaction(txn, service="queue_ticket")
        journal.finish_transaction(txn, outcome="completed", outputs=["thermal"])
        journal.rate(txn, 1 + i % 5)
        ids.append(txn)
    return ids


def _delivered(rig: Rig, target: int) -> bool:
    return rig.subscriber.count() >= target


def agent_kill_mid_outbox(work: Path, bulk: int = 3000) -> Row:
    name = "kill -9 of the agent mid-outbox"
    with Rig(work) as rig:
        rig.start_ui()
        for _ in range(20):  # the agent is not running yet: the outbox fills
            rig.ticket_session()
        journal = Journal(rig.state / "journal.sqlite3")
        for txn in fill_outbox(journal, bulk):
            rig.ledger.sessions.append(Session(txn, "queue_ticket", True, "", True, True))
        journal.close()
        total = rig.outbox_size()
        kills = []
        for fraction in (0.1, 0.5):
            rig.start_agent()
            target = int(total * fraction)
            until(partial(_delivered, rig, target), 120, "the drain to be under way")
            rig.kill_agent()
            kills.append((rig.subscriber.count(), rig.outbox_size()))
            for _ in range(5):  # residents go on being served while the agent is dead
                rig.ticket_session()
        t0 = time.monotonic()
        rig.start_agent()
        until(lambda: rig.subscriber.first_after(t0) is not None, 60, "a first event")
        first = rig.subscriber.first_after(t0)
        rig.settle(timeout=180)
        lost = rig.account()
        if any(left == 0 for _, left in kills):
            lost.append("(the outbox was empty at a kill: the kill proved nothing)")
        redelivered = sum(n - 1 for n in rig.subscriber.deliveries.values() if n > 1)
    assert first is not None
    return Row(
        name,
        True,
        lost,
        first - t0,
        f"{total} events queued; killed at (delivered, left) {kills}; {redelivered}"
        " redeliveries of the same event id (at-least-once, de-duplicated); recovered = first"
        " event after the restart",
    )


_WRITER = """
import sys
from pathlib import Path
from statedir.journal import Journal
j = Journal(Path(sys.argv[1]))
print("ready", flush=True)
i = 0
while True:
    t = j.begin_transaction("", lang="zh", elder=False)
    j.update_transaction(t, service="queue_ticket", identity_hash="ab" * 32)
    j.help_request(screen="choose", txn_id=t)
    j.finish_transaction(t, outcome="completed", outputs=["thermal"])
    j.rate(t, 1 + i % 5, ["fast"])
    j.put_health([{"device": "thermal_printer", "state": "ok", "n": i}])
    print(t, flush=True)
    i += 1
"""


def sqlite_kill_write(work: Path, rounds: int = 40) -> Row:
    name = "kill -9 during an SQLite write"
    work.mkdir(parents=True, exist_ok=True)
    path = work / "journal.sqlite3"
    rng = random.Random(467)  # noqa: S311  (kill moments, not secrets)
    committed: list[str] = []
    problems: list[str] = []
    recoveries: list[float] = []
    for _ in range(rounds):
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            problems.append("a writer did not start after a kill")
            proc.kill()
            proc.wait()
            break
        first = proc.stdout.readline().strip()
        recoveries.append(time.monotonic() - started)
        time.sleep(rng.uniform(0.02, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        rest = proc.stdout.read().split()
        proc.stdout.close()
        committed += [first, *rest]
        db = sqlite3.connect(path)
        try:
            check = db.execute("PRAGMA integrity_check").fetchone()[0]
            if check != "ok":
                problems.append(f"integrity_check: {check}")
        finally:
            db.close()
    journal = Journal(path)
    try:
        records = {r.id: r for r in journal.transactions()}
        events = journal.pending_events(limit=10_000_000)
    finally:
        journal.close()
    txn_events = {e.payload["txn_id"] for e in events if e.type == "transaction"}
    rated = {e.payload["txn_id"] for e in events if e.type == "rating"}
    for txn in committed:
        r = records.get(txn)
        if r is None or r.outcome != "completed" or r.rating is None:
            problems.append(f"txn {txn[:8]}: committed, then not found whole")
        elif txn not in txn_events or txn not in rated:
            problems.append(f"txn {txn[:8]}: its events are missing from the outbox")
    closed = [t for t, r in records.items() if r.outcome is not None]
    if sorted(txn_events) != sorted(closed):
        problems.append("closed transactions and transaction events differ")
    half = sum(1 for r in records.values() if r.outcome is None)
    return Row(
        name,
        not any(p.startswith("integrity") or "did not start" in p for p in problems),
        problems,
        max(recoveries) if recoveries else None,
        f"{rounds} kills at random moments; integrity_check ok after each:"
        f" {not any(p.startswith('integrity') for p in problems)}; {len(committed)} committed"
        f" transactions all found whole; {half} left open by a kill mid-session (no event, as"
        " designed); recovered = worst time from a new writer's start to its first commit",
    )


def summary(rows: list[Row]) -> str:
    return json.dumps([r.scenario for r in rows])
