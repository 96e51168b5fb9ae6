"""The station under test: real processes and services on loopback, and the books kept on them.

A :class:`Rig` is one simulated terminal and its centre, all real:

- a private mosquitto (:class:`sandbox.mosquitto.MosquittoBroker`) and a subscriber with the
  console's
  rights that keeps every event by its event id (the console de-duplicates the same way);
- a private cupsd (:class:`FaultCups`, a :class:`sandbox.cups.CupsSandbox` whose
  scheduler can be stopped and started on the same port, and whose queue can print through a
  backend that runs out of paper);
- the ESC/POS simulator on TCP (:class:`FaultEscpos`: its cover can open in the middle of a job),
  the GA 467 SAM simulator on a pty behind a stable link, and, when asked, pcscd with the vpcd
  reader;
- the kiosk UI as its own process (:mod:`faults.uiproc`: ``kiosk.station.create_station`` pumped
  without a window) and the fleet agent as ``kiosk agent``, both from one ``kiosk.toml``.

The simulators live in this (the harness) process, so killing the kiosk does not kill its
printers, as on a real terminal. :meth:`Rig.account` compares what the harness did (its
:class:`Ledger`) with the journal, the subscriber and the paper that came out.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from assets import ASSETS_DIR
from drivers.escpos.simulator import EscposSimulator, SimReceipt
from drivers.sam.simulator import SamSimulator
from fleet.mqtt.client import CONSOLE_USER
from flows.synthetic import DEMO_RESIDENT
from sandbox.cups import CupsSandbox, SandboxError
from sandbox.mosquitto import MosquittoBroker
from sandbox.pcscd import Pcscd

REPO = Path(__file__).resolve().parents[1]
SITE = "faults-site"
STATION = "faults-0001"
CERTIFICATE = "social_insurance_certificate"  # A4 + thermal, needs the ID card
TICKET = "queue_ticket"  # thermal only, no card
WINDOW_HOURS = 'hours = ["08:30-12:00", "13:30-17:30"]\ndays = ["mon", "tue", "wed", "thu", "fri"]'


def always_open_catalog() -> str:
    """The demo catalog with the ticket's window open at every hour of every day: a scenario
    takes a queue ticket whenever it runs (the windows' hours have tests of their own)."""
    text = (ASSETS_DIR / "catalog" / "demo.toml").read_text(encoding="utf-8")
    if WINDOW_HOURS not in text:
        raise FaultError("the demo catalog's window 1 changed: update faults.rig.WINDOW_HOURS")
    days = 'days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\nholidays = true'
    return text.replace(WINDOW_HOURS, f'hours = ["00:00-23:59"]\n{days}')


AFTER_RATING = ["idle", "out_of_order", "take_card", "thanks"]  # issue 20: card, thank-you


class FaultError(Exception):
    """The rig could not do what a scenario asked (the scenario did not survive)."""


def until(cond: Callable[[], Any], timeout: float, what: str, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise FaultError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


# --- the centre's view: every event that reached the broker ------------------------------------


class Subscriber:
    """Console rights on ``kiosk/v1/+/+/evt/#``, a persistent session (survives broker restarts)."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.events: dict[str, tuple[str, dict[str, Any]]] = {}  # event id → (type, payload)
        self.deliveries: Counter[str] = Counter()
        self.arrivals: list[tuple[float, str]] = []  # (monotonic time, event id)
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="faults-subscriber", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(CONSOLE_USER, broker.console_password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 86400
        self.client.connect(broker.host, broker.port, clean_start=False, properties=props)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise FaultError("the subscriber did not subscribe")

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(f"kiosk/v1/{SITE}/{STATION}/evt/#", qos=1)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        kind = msg.topic.rsplit("/", 1)[1]
        with self._lock:
            self.events.setdefault(body["event_id"], (kind, body))
            self.deliveries[body["event_id"]] += 1
            self.arrivals.append((time.monotonic(), body["event_id"]))

    def count(self) -> int:
        with self._lock:
            return len(self.events)

    def send_command(self, name: str, args: dict[str, Any], timeout_s: float = 60.0) -> str:
        """What the console's command buttons publish (``cmd/{id}``, QoS 1); the command id."""
        command_id = uuid.uuid4().hex
        body = {"name": name, "args": args, "timeout_s": timeout_s}
        topic = f"kiosk/v1/{SITE}/{STATION}/cmd/{command_id}"
        self.client.publish(topic, json.dumps(body), qos=1).wait_for_publish(10)
        return command_id

    def first_after(self, t: float) -> float | None:
        with self._lock:
            return next((a for a, _ in self.arrivals if a >= t), None)

    def by_txn(self, kind: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        with self._lock:
            for event_id, (k, body) in self.events.items():
                if k == kind and body.get("txn_id"):
                    out[body["txn_id"]].append(event_id)
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --- peers with faults of their own --------------------------------------------------------------

PAPER_BACKEND = """#!/usr/bin/python3
# A CUPS backend for the fault suite: AppSocket, but the paper can run out in the middle of a job.
import os, socket, sys, time
FLAG = {flag!r}
if len(sys.argv) == 1:
    print('network faultpaper "Unknown" "fault suite printer"')
    sys.exit(0)
if not os.path.exists(FLAG) and "media-empty" in os.environ.get("PRINTER_STATE_REASONS", ""):
    # what CUPS' own ipp backend does: the printer no longer says so, so neither does CUPS
    sys.stderr.write("STATE: -media-empty-error\\n")
    sys.stderr.flush()
data = open(sys.argv[6], "rb").read() if len(sys.argv) > 6 else sys.stdin.buffer.read()
out = False
while os.path.exists(FLAG):  # the job is being fed and the tray is empty
    if not out:
        sys.stderr.write("STATE: +media-empty-error\\nINFO: out of paper\\n")
        sys.stderr.flush()
        out = True
    time.sleep(0.2)
if out:
    sys.stderr.write("STATE: -media-empty-error\\n")
    sys.stderr.flush()
host, port = os.environ["DEVICE_URI"].split("://", 1)[1].strip("/").rsplit(":", 1)
with socket.create_connection((host, int(port)), timeout=30) as conn:
    conn.sendall(data)
sys.exit(0)
"""


class FaultCups(CupsSandbox):
    """The private cupsd, plus: stop and start the scheduler alone (same port, same spool), and a
    queue whose printer runs out of paper while ``paper_flag`` exists."""

    @property
    def paper_flag(self) -> Path:
        return self.server_root / "paper-out"

    def scheduler_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop_scheduler(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=15)

    def start_scheduler(self, timeout_s: float = 30.0) -> None:
        root = self.server_root
        self._proc = subprocess.Popen(
            ["cupsd", "-f", "-c", str(root / "cupsd.conf"), "-s", str(root / "cups-files.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        self._wait(deadline, self._scheduler_running, "cupsd did not start again")
        self._wait(deadline, self._queue_ready, f"queue {self.queue} does not accept jobs")

    def use_paper_backend(self) -> None:
        """A private ServerBin with one more backend, then the queue prints through it."""
        root = self.server_root
        serverbin = root / "serverbin"
        backends = serverbin / "backend"
        backends.mkdir(parents=True, exist_ok=True)
        for entry in Path("/usr/lib/cups").iterdir():
            if entry.name != "backend" and not (serverbin / entry.name).exists():
                (serverbin / entry.name).symlink_to(entry)
        for entry in Path("/usr/lib/cups/backend").iterdir():
            if not (backends / entry.name).exists():
                (backends / entry.name).symlink_to(entry)
        script = backends / "faultpaper"
        script.write_text(PAPER_BACKEND.format(flag=str(self.paper_flag)))
        script.chmod(0o755)
        for path in (serverbin, backends):
            path.chmod(0o755)
        files = root / "cups-files.conf"
        files.write_text(
            files.read_text().replace("ServerBin /usr/lib/cups", f"ServerBin {serverbin}")
        )
        self.stop_scheduler()
        self.start_scheduler()
        self._lp("lpadmin", "-p", self.queue, "-v", f"faultpaper://127.0.0.1:{self.printer.port}")
        self._lp("cupsenable", self.queue)

    def printed_doc_ids(self) -> list[str]:
        """The document id of every PDF that came out (from its title), in order."""
        import pypdfium2

        ids = []
        for path in self.printed_files():
            doc = pypdfium2.PdfDocument(path)
            try:
                title = str(doc.get_metadata_dict().get("Title", ""))
            finally:
                doc.close()
            ids.append(title.split()[-1] if title.split() else f"?{path.name}")
        return ids


class FaultEscpos(EscposSimulator):
    """The ESC/POS simulator; ``cover_opens_mid_job`` opens the cover when the next cut comes."""

    def __init__(self) -> None:
        super().__init__()
        self.cover_opens_mid_job = False

    def finish(self, receipt: SimReceipt) -> None:
        if self.cover_opens_mid_job:  # the bytes arrived, the cover opens before the cut
            self.cover_opens_mid_job = False
            self.cover_open = True
        super().finish(receipt)


# --- the kiosk's processes ---------------------------------------------------------------------


class UiProcess:
    """``python -m faults.uiproc``: the kiosk runtime as a process, driven over its control port."""

    def __init__(
        self, config: Path, log: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.started_at = time.monotonic()
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "faults.uiproc", "--config", str(config), *args],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=out,
                env={**os.environ, **(env or {})},
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().split()
        if not line or line[0] != "ready":
            self.proc.kill()
            self.proc.wait()
            raise FaultError(f"the kiosk UI process did not start (see {log})")
        self.port = int(line[1])
        self.conn = socket.create_connection(("127.0.0.1", self.port), timeout=120)
        self.stream = self.conn.makefile("rwb")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def call(self, body: dict[str, Any]) -> dict[str, Any]:
        self.stream.write(json.dumps(body).encode() + b"\n")
        self.stream.flush()
        line = self.stream.readline()
        if not line:
            raise FaultError("the kiosk UI process went away")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def status(self) -> dict[str, Any]:
        return self.call({"op": "status"})

    def do(
        self,
        name: str | None,
        arg: Any = None,
        *,
        state: list[str] | None = None,
        preview_ready: bool | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        until_: dict[str, Any] = {}
        if state is not None:
            until_["state"] = state
        if preview_ready is not None:
            until_["preview_ready"] = preview_ready
        answer = self.call(
            {"op": "do", "name": name, "arg": arg, "until": until_, "timeout": timeout}
        )
        if answer.get("timeout"):
            raise FaultError(f"after {name!r} the kiosk stayed in {answer['state']}: {until_}")
        return answer

    def wait(self, **kw: Any) -> dict[str, Any]:
        return self.do(None, **kw)

    def _close_stream(self) -> None:
        with contextlib.suppress(OSError):
            self.stream.close()
            self.conn.close()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._close_stream()

    def stop(self) -> int:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, FaultError):
                self.call({"op": "stop"})
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_stream()
        return int(self.proc.returncode)


@dataclass
class Session:
    """One resident's visit as the harness drove it: what the resident was shown."""

    txn_id: str
    service: str
    print_ok: bool | None = None
    error_key: str = ""
    rated: bool = False
    finished: bool = False  # reached the rating screen (the transaction is closed)


@dataclass
class Ledger:
    sessions: list[Session] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)  # txn ids a fault cut off mid-session


@dataclass
class Rig:
    root: Path
    pcsc: bool = False
    paper_backend: bool = False
    state_dir: Path | None = None  # default root/state
    ui_args: tuple[str, ...] = ("--health-interval", "0.5")
    env: dict[str, str] = field(default_factory=dict)  # for the kiosk's processes (faketime)
    broker: MosquittoBroker = field(init=False)
    cups: FaultCups = field(init=False)
    escpos: FaultEscpos = field(init=False)
    sam: SamSimulator = field(init=False)
    pcscd: Pcscd | None = field(init=False, default=None)
    subscriber: Subscriber = field(init=False)
    ui: UiProcess | None = field(init=False, default=None)
    agent: subprocess.Popen[bytes] | None = field(init=False, default=None)
    ledger: Ledger = field(init=False, default_factory=Ledger)
    _stack: list[Callable[[], None]] = field(init=False, default_factory=list)

    # --- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # cupsd's backends run as lp and must reach the spool
        self.state = self.state_dir or self.root / "state"
        self.state.mkdir(parents=True, exist_ok=True)
        self.broker = MosquittoBroker(self.root / "broker")
        self.broker.start()
        self._stack.append(self.broker.stop)
        self.subscriber = Subscriber(self.broker)
        self._stack.append(self.subscriber.close)
        self.cups = FaultCups(self.root / "cups")
        self.cups.start()
        self._stack.append(self.cups.stop)
        if self.paper_backend:
            self.cups.use_paper_backend()
        self.escpos = FaultEscpos()
        self.escpos.start()
        self._stack.append(self.escpos.stop)
        self.sam = SamSimulator(link_path=self.root / "sam-link")
        self.sam.start()
        self._stack.append(self.sam.stop)
        if self.pcsc:
            self.pcscd = Pcscd(self.root / "pcscd")
            self.pcscd.start()
            self._stack.append(self.stop_pcscd)
        self.catalog = self.root / "catalog.toml"
        self.catalog.write_text(always_open_catalog(), encoding="utf-8")
        self.config = self.root / "kiosk.toml"
        self.config.write_text(self._config_text(), encoding="utf-8")

    def stop_pcscd(self) -> None:
        if self.pcscd is not None and self.pcscd.proc is not None:
            self.pcscd.stop()

    def _config_text(self) -> str:
        smartcard = 'smartcard_reader = "pcsc:Virtual PCD"\n' if self.pcsc else ""
        return (
            "version = 1\n"
            f'[station]\nid = "{STATION}"\nsite = "{SITE}"\ncatalog = "{self.catalog}"\n'
            f'[state]\ndir = "{self.state}"\n'
            "[devices]\n"
            f'id_reader = "sam:{self.root / "sam-link"}"\n'
            f'a4_printer = "cups:{self.cups.queue}@{self.cups.server}"\n'
            f'thermal_printer = "{self.escpos.url}"\n'
            'speech = "off"\n'
            f"{smartcard}"
            "[ui]\nattract_every_s = 0\n"
            f'[fleet]\nbroker = "{self.broker.address}"\nhealth_interval_s = 2\n'
        )

    def close(self) -> None:
        if self.ui is not None:
            self.ui.stop()
            self.ui = None
        self.stop_agent()
        while self._stack:
            with contextlib.suppress(Exception):
                self._stack.pop()()

    def __enter__(self) -> Rig:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def start_ui(self, *extra: str) -> UiProcess:
        self.ui = UiProcess(self.config, self.root / "ui.log", self.env, (*self.ui_args, *extra))
        return self.ui

    def start_agent(self) -> subprocess.Popen[bytes]:
        with (self.root / "agent.log").open("ab") as out:
            self.agent = subprocess.Popen(
                [sys.executable, "-m", "kiosk.cli", "--config", str(self.config), "agent"],
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
            )
        return self.agent

    def stop_agent(self) -> None:
        agent, self.agent = self.agent, None
        if agent is not None and agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(30)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()

    def kill_agent(self) -> None:
        agent, self.agent = self.agent, None
        if agent is not None:
            os.kill(agent.pid, signal.SIGKILL)
            agent.wait(10)

    # --- residents ------------------------------------------------------------------------------

    def ticket_session(self, *, rate: int = 5, timeout: float = 30.0) -> Session:
        """A queue ticket: no card, one slip."""
        ui = self._ui()
        ui.wait(state=["idle"], timeout=timeout)  # the last resident's thank-you ends first
        st = ui.do("start", state=["identify"], timeout=timeout)
        session = Session(st["txn_id"], TICKET)
        self.ledger.sessions.append(session)
        ui.do("skip_identity", state=["choose"], timeout=timeout)
        ui.do("pick", TICKET, state=["preview"], preview_ready=True, timeout=timeout)
        return self._print_and_rate(session, rate, timeout)

    def certificate_session(
        self,
        *,
        rate: int = 4,
        timeout: float = 60.0,
        before_confirm: Callable[[], None] = lambda: None,
    ) -> Session:
        """An ID card on the SAM reader, a certificate on A4 and its slip."""
        ui = self._ui()
        self.take_card()
        ui.wait(state=["idle"], timeout=timeout)  # the last resident's thank-you ends first
        st = ui.do("start", state=["identify"], timeout=timeout)
        session = Session(st["txn_id"], CERTIFICATE)
        self.ledger.sessions.append(session)
        self.sam.insert(DEMO_RESIDENT)
        ui.wait(state=["choose"], timeout=timeout)
        ui.do("pick", CERTIFICATE, state=["preview"], preview_ready=True, timeout=timeout)
        before_confirm()
        result = self._print_and_rate(session, rate, timeout)
        self.take_card()
        return result

    def take_card(self) -> None:
        """The resident takes the card; the reader notices after a few polls (debounced)."""
        if self.sam.card_present:
            self.sam.remove()
            time.sleep(0.6)
        if self.ui is not None:  # the card asked for, then a short thank-you, then home
            self.ui.wait(state=["idle", "out_of_order"], timeout=20)

    def _print_and_rate(self, session: Session, rate: int, timeout: float) -> Session:
        ui = self._ui()
        st = ui.do("confirm", state=["rate"], timeout=timeout)
        session.finished = True
        session.print_ok = bool(st["print_ok"])
        session.error_key = st["print_error_key"]
        if rate:
            ui.do("rate", [rate, []], state=AFTER_RATING, timeout=timeout)
            session.rated = True
        else:
            ui.do("skip_rating", state=AFTER_RATING, timeout=timeout)
        return session

    def _ui(self) -> UiProcess:
        if self.ui is None:
            raise FaultError("the kiosk UI process is not running")
        return self.ui

    # --- the books ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _journal(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(f"file:{self.state / 'journal.sqlite3'}?mode=ro", uri=True)
        try:
            yield db
        finally:
            db.close()

    def outbox_size(self) -> int:
        with self._journal() as db:
            return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def settle(self, timeout: float = 120.0) -> None:
        """Wait until the outbox is empty and the subscriber has heard the last of it."""
        until(lambda: self.outbox_size() == 0, timeout, "the outbox to drain", step=0.2)
        time.sleep(1.0)

    def account(self) -> list[str]:
        """What was lost or doubled: each a line; empty when every item is there exactly once."""
        problems: list[str] = []
        with self._journal() as db:
            txns = {
                r[0]: (r[1], r[2])
                for r in db.execute("SELECT id, outcome, rating FROM transactions")
            }
            jobs = db.execute("SELECT key, txn_id, printer, state FROM print_jobs").fetchall()
            outbox = int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        if outbox:
            problems.append(f"{outbox} events still in the outbox")
        sent_txn = self.subscriber.by_txn("transaction")
        sent_rating = self.subscriber.by_txn("rating")
        for s in self.ledger.sessions:
            short = s.txn_id[:8]
            if s.txn_id in self.ledger.interrupted:
                n = len(sent_txn.get(s.txn_id, []))
                if txns.get(s.txn_id, (None, None))[0] is None and n == 0:
                    problems.append(
                        f"txn {short} (cut off by the fault): never closed in the journal,"
                        " never reported to the centre"
                    )
                elif n > 1:
                    problems.append(f"txn {short}: {n} transaction events (want 1)")
                continue
            if s.txn_id not in txns:
                problems.append(f"txn {short}: not in the journal")
                continue
            if s.finished and txns[s.txn_id][0] is None:
                problems.append(f"txn {short}: left open in the journal")
            n = len(sent_txn.get(s.txn_id, []))
            if s.finished and n != 1:
                problems.append(f"txn {short}: {n} transaction events at the centre (want 1)")
            r = len(sent_rating.get(s.txn_id, []))
            if s.rated and r != 1:
                problems.append(f"txn {short}: {r} rating events at the centre (want 1)")
        # paper: every PDF that came out belongs to one completed job, and each completed job
        # came out once; the same for slips, by count (a queue ticket names no document)
        completed_a4 = Counter(
            k.removesuffix(":a4") for k, _, p, st in jobs if p == "a4" and st == "completed"
        )
        # test pages (kiosk.shell.printing.sample_page, transaction "test-…") are no resident's
        # paper
        printed = Counter(d for d in self.cups.printed_doc_ids() if "TEST" not in d)
        for doc, n in printed.items():
            if completed_a4[doc] != 1 or n != 1:
                problems.append(
                    f"A4 {doc}: came out {n}×, journal says completed {completed_a4[doc]}×"
                )
        for doc in completed_a4:
            if doc not in printed:
                problems.append(f"A4 {doc}: journal says completed, no paper came out")
        thermal_done = sum(1 for _, _, p, st in jobs if p == "thermal" and st == "completed")
        slips = len(self.escpos.receipts)
        if slips != thermal_done:
            problems.append(f"{slips} slips came out, the journal says {thermal_done} completed")
        return problems


def sample_process(pid: int) -> dict[str, int]:
    """RSS (KiB), open descriptors and threads of a process, from /proc."""
    rss = threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return {"rss_kib": rss, "fds": fds, "threads": threads}


__all__ = ["FaultError", "Rig", "SandboxError", "sample_process", "until"]
