"""Remote commands end to end: a console-rights operator, a real mosquitto, the real agent, and for
UI-side commands the real kiosk runtime on simulated devices sharing the journal with the agent."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from PIL import Image

from drivers.cups.printer import CupsPrinter
from drivers.escpos.printer import EscposPrinter
from drivers.escpos.simulator import EscposSimulator
from drivers.providers.demo import DemoProvider, generate_dataset
from drivers.sam.reader import SamReader
from drivers.sam.simulator import SamSimulator
from fleet.agent import Agent, AgentConfig
from fleet.agent.commands import MAX_PAYLOAD, CommandFailed, Handler, redact
from fleet.mqtt.client import CONSOLE_USER
from flows.catalog import load_catalog
from flows.synthetic import DEMO_RESIDENT
from kiosk.fonts import find_cjk_font
from kiosk.i18n import Translator
from kiosk.shell.catalog_watch import DEMO_CATALOG
from kiosk.shell.devices import SpeechOff
from kiosk.shell.deviceset import Devices
from kiosk.shell.remote import EXIT_RESTART_UI, MAX_PNG_BYTES, KioskRemote, fit_png
from kiosk.shell.runtime import Frame, Intent, Runtime
from sandbox.cups import CupsSandbox
from sandbox.mosquitto import MosquittoBroker
from statedir.journal import Journal, identity_hash

SITE = "zibo-gx"
STATION = "st-0101"


def until(cond: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Operator:
    """The console's side: publishes commands (with expiry), collects results by command id."""

    def __init__(self, broker: MosquittoBroker, station: str = STATION) -> None:
        self.root = f"kiosk/v1/{SITE}/{station}"
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.raw_sizes: list[int] = []
        self.births: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"operator-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set(CONSOLE_USER, broker.console_password)
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(f"{self.root}/cmd/+/result", 1), (f"{self.root}/birth", 1)]
        )
        self.client.on_subscribe = lambda *_: ready.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert ready.wait(5)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        with self._lock:
            if msg.topic.endswith("/birth"):
                self.births.append(body)
                return
            self.raw_sizes.append(len(msg.payload))
            assert msg.properties is not None and msg.properties.MessageExpiryInterval > 0
            self.results.setdefault(body["id"], []).append(body)

    def send(self, name: str, args: dict[str, Any] | None = None, **kw: Any) -> str:
        command_id = kw.pop("command_id", None) or uuid.uuid4().hex[:12]
        payload = kw.pop("raw", None) or json.dumps({"name": name, "args": args or {}, **kw})
        props = Properties(PacketTypes.PUBLISH)
        props.MessageExpiryInterval = 300
        before = len(self.statuses(command_id))
        for _ in range(20):  # like the console: again (same id) until answered, e.g. while the
            # agent has connected but not yet subscribed
            self.client.publish(f"{self.root}/cmd/{command_id}", payload, qos=1, properties=props)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                if len(self.statuses(command_id)) > before:
                    return command_id
                time.sleep(0.02)
        raise AssertionError(f"no answer to command {command_id}")

    def statuses(self, command_id: str) -> list[str]:
        with self._lock:
            return [r["status"] for r in self.results.get(command_id, [])]

    def final(self, command_id: str, timeout: float = 20.0) -> dict[str, Any]:
        finals = ("succeeded", "failed", "timed_out")
        until(
            lambda: any(s in finals for s in self.statuses(command_id)),
            timeout=timeout,
            what=f"the result of {command_id}",
        )
        with self._lock:
            return [r for r in self.results[command_id] if r["status"] in finals][-1]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def operator(broker: MosquittoBroker) -> Iterator[Operator]:
    op = Operator(broker)
    yield op
    op.close()


def agent_config(tmp_path: Path, broker: MosquittoBroker) -> AgentConfig:
    state = tmp_path / STATION
    return AgentConfig(
        site=SITE,
        station=STATION,
        host=broker.host,
        port=broker.port,
        state_dir=state / "agent",
        journal_path=state / "journal.sqlite3",
        health_interval_s=0.5,
        will_delay_s=1,
    )


@pytest.fixture
def agent(tmp_path: Path, broker: MosquittoBroker) -> Iterator[Agent]:
    a = Agent(agent_config(tmp_path, broker))
    a.start()
    assert a.connected.wait(10)
    yield a
    a.stop()


# --- agent-side commands ---------------------------------------------------------------------


def test_collect_logs_answers_accepted_then_succeeded_with_a_redacted_tail(
    tmp_path: Path, agent: Agent, operator: Operator
) -> None:
    secret = b"k" * 32
    person_hash = identity_hash(secret, DEMO_RESIDENT.id_number)
    txn = agent.journal.begin_transaction(
        "personal_tax_record", lang="zh", elder=False, identity_hash=person_hash
    )
    agent.journal.finish_transaction(txn, outcome="completed", outputs=["a4"])
    logs = tmp_path / STATION / "logs"
    logs.mkdir()
    (logs / "kiosk.log.1").write_text("old line 1\nold line 2\n")
    (logs / "kiosk.log").write_text(
        "INFO kiosk.shell.runtime: session started\n"
        f"ERROR drivers.sam: bad frame for {DEMO_RESIDENT.id_number} name={DEMO_RESIDENT.name}\n"
        f"DEBUG kiosk.shell.runtime: hash {person_hash} served\n"
        "INFO kiosk.shell.runtime: order 12345678901234567 and 1234567890123456789 are not IDs\n"
    )
    command_id = operator.send("collect_logs", {"lines": 5})
    result = operator.final(command_id)
    assert operator.statuses(command_id)[0] == "accepted"
    assert result["status"] == "succeeded", result
    text = result["detail"]["text"]
    assert text.splitlines()[0] == "old line 2"  # the tail goes across the rotation
    assert "session started" in text and "[id-number]" in text and "[personal]" in text
    assert DEMO_RESIDENT.id_number not in text and DEMO_RESIDENT.name not in text
    assert person_hash not in text
    assert "12345678901234567 and 1234567890123456789" in text  # other numbers stay
    assert result["detail"]["masked"] == 3


def test_rebirth_publishes_the_birth_again(agent: Agent, operator: Operator) -> None:
    until(lambda: operator.births, what="the retained birth")
    before = len(operator.births)
    result = operator.final(operator.send("rebirth"))
    assert result["status"] == "succeeded"
    until(lambda: len(operator.births) > before, what="a new birth")
    assert operator.births[-1]["station"] == STATION


def test_wrong_commands_fail_with_a_reason_and_stay_failed(
    agent: Agent, operator: Operator
) -> None:
    unknown = operator.final(operator.send("format_disk"))
    assert (unknown["status"], unknown["detail"]["reason"]) == ("failed", "unknown_command")
    assert "screenshot" in unknown["detail"]["known"]
    bad = operator.final(operator.send("test_print", {"printer": "laser"}))
    assert bad["detail"]["reason"] == "bad_args"
    garbage = operator.send("", raw="not json")
    assert operator.final(garbage)["detail"]["reason"] == "bad_payload"
    slow = operator.final(operator.send("self_test", timeout_s=10**9))
    assert slow["detail"]["reason"] == "bad_timeout"
    operator.send("", raw="not json", command_id=garbage)  # the same id again: the same answer
    until(lambda: len(operator.statuses(garbage)) == 2)
    assert operator.results[garbage][-1]["detail"]["reason"] == "bad_payload"
    assert operator.results[garbage][-1]["repeat"] is True


def test_a_command_id_runs_once_also_after_the_agent_restarts(
    tmp_path: Path, broker: MosquittoBroker, operator: Operator
) -> None:
    runs: list[str] = []

    def count(command: Any) -> dict[str, Any]:
        runs.append(command.id)
        if command.args.get("fail"):
            raise CommandFailed("asked_to_fail", detail_n=len(runs))
        return {"n": len(runs)}

    def with_count(a: Agent) -> Agent:
        a.commands.register(Handler("count", "agent", 10.0, validate=lambda args: args, run=count))
        return a

    agent = with_count(Agent(agent_config(tmp_path, broker)))
    agent.start()
    try:
        assert agent.connected.wait(10)
        first = operator.final(operator.send("count", command_id="once-1"))
        failing = operator.final(operator.send("count", {"fail": True}, command_id="once-2"))
        ui = operator.send("self_test", timeout_s=1, command_id="once-3")  # no UI is running
        assert operator.final(ui)["detail"] == {"reason": "deadline"}
    finally:
        agent.stop()
    assert (first["detail"], failing["detail"]["reason"]) == ({"n": 1}, "asked_to_fail")
    again = with_count(Agent(agent_config(tmp_path, broker)))  # a new process would do the same
    again.start()
    try:
        assert again.connected.wait(10)
        for command_id in ("once-1", "once-2", "once-3"):
            operator.send("count", command_id=command_id)
    finally:
        again.stop()
    assert runs == ["once-1", "once-2"]  # never a second run
    repeats = {c: operator.results[c][-1] for c in ("once-1", "once-2", "once-3")}
    assert all(any(r["repeat"] for r in operator.results[c]) for c in repeats)
    assert repeats["once-1"]["detail"] == {"n": 1}
    assert repeats["once-2"]["status"] == "failed"
    assert repeats["once-3"]["status"] == "timed_out"


# --- UI-side commands through the journal, with the real runtime --------------------------------


@pytest.fixture(scope="module")
def cups(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CupsSandbox]:
    sandbox = CupsSandbox(tmp_path_factory.mktemp("cups"))
    sandbox.start()
    yield sandbox
    sandbox.stop()


def fake_screen(path: Path) -> Path:
    """Stands in for Kivy's Window.screenshot: a full-HD picture that does not compress well."""
    rng = random.Random(7)
    image = Image.new("RGB", (1920, 1080), (240, 236, 228))
    pixels = image.load()
    assert pixels is not None
    for y in range(0, 1080, 3):
        for x in range(0, 1920, 3):
            pixels[x, y] = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    out = path.with_name(path.stem + "0001.png")  # Kivy adds a counter to the name
    image.save(out, format="PNG")
    return out


class Kiosk:
    """The UI process's part: the runtime on simulators, pumped like the Kivy clock would."""

    def __init__(self, tmp_path: Path, cups: CupsSandbox) -> None:
        self.sam = SamSimulator()
        self.sam.start()
        self.printer = EscposSimulator()
        self.printer.start()
        devices = Devices(
            SamReader(self.sam.port, poll_s=0.05),
            CupsPrinter(cups.queue, server=cups.server),
            EscposPrinter(self.printer.url),
            SpeechOff(),
            {"demo": DemoProvider(generate_dataset(tmp_path / "demo.sqlite3"))},
        )
        self.journal = Journal(tmp_path / STATION / "journal.sqlite3")
        self.runtime = Runtime(
            catalog=load_catalog(DEMO_CATALOG),
            devices=devices,
            journal=self.journal,
            translator=Translator(strict=True),
            font=find_cjk_font(),
            secret=b"k" * 32,
            health_interval_s=0.2,
        )
        # a Monday morning at the station: every service and window open, whenever CI runs
        monday = dt.datetime(2026, 12, 7, 10, 0, tzinfo=self.runtime.catalog.station.zone)
        self.runtime.now = lambda: monday
        self.runtime.remote.screenshot = fake_screen
        self.runtime.remote.catalog_loader = lambda: load_catalog(DEMO_CATALOG).model_copy(
            update={"version": 7}
        )
        self.frames: list[Frame] = []
        self.runtime.on_frame = self.frames.append
        self.runtime.start()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while not self._stop.wait(1 / 30):
            self.runtime.pump()

    def state(self) -> str:
        return str(self.runtime.session.state)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.runtime.stop()
        self.printer.stop()
        self.sam.stop()
        self.journal.close()


@pytest.fixture
def kiosk(tmp_path: Path, cups: CupsSandbox) -> Iterator[Kiosk]:
    k = Kiosk(tmp_path, cups)
    yield k
    k.close()


@pytest.mark.slow
def test_ui_commands_wait_for_the_resident_and_never_picture_a_session(
    kiosk: Kiosk, agent: Agent, operator: Operator
) -> None:
    rt = kiosk.runtime
    rt.post(Intent("start"))
    until(lambda: kiosk.state() == "identify")
    kiosk.sam.insert(DEMO_RESIDENT)
    until(lambda: kiosk.state() == "choose", what="the resident identified")
    shot = operator.final(operator.send("screenshot"))
    assert (shot["status"], shot["detail"]) == ("failed", {"reason": "in_session"})
    late = operator.send("test_print", {"printer": "a4"}, timeout_s=1)
    assert operator.final(late)["status"] == "timed_out"  # it waited for the resident
    thermal = operator.send("test_print", {"printer": "thermal"})
    time.sleep(1.0)
    assert operator.statuses(thermal) == ["accepted"]  # still waiting: the session goes on
    rt.post(Intent("pick", "personal_tax_record"))
    until(lambda: rt.session.view.preview_ready, what="the preview")
    rt.post(Intent("confirm"))
    until(lambda: kiosk.state() == "rate", what="printed")
    receipts = len(kiosk.printer.receipts)
    rt.post(Intent("rate", (5, ())))
    until(lambda: kiosk.state() == "take_card", what="the card asked for")
    assert operator.statuses(thermal) == ["accepted"]  # the card asked for is still a session
    kiosk.sam.remove()
    until(lambda: kiosk.state() == "idle", what="the thank-you, then home")
    assert operator.final(thermal)["status"] == "succeeded"
    assert len(kiosk.printer.receipts) == receipts + 1
    assert kiosk.journal.transactions()[0].identity_hash  # an identified resident was served
    a4 = operator.final(operator.send("test_print", {"printer": "a4"}), timeout=90)
    assert a4["status"] == "succeeded" and a4["detail"]["printer"] == "a4"

    shot = operator.final(operator.send("screenshot"))
    assert shot["status"] == "succeeded", shot
    png = base64.b64decode(shot["detail"]["png_base64"])
    assert len(png) <= MAX_PNG_BYTES and max(operator.raw_sizes) < MAX_PAYLOAD
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size[0] < 1920  # downscaled to fit
        assert image.size == (shot["detail"]["width"], shot["detail"]["height"])

    test = operator.final(operator.send("self_test"))
    assert test["status"] == "succeeded", test
    assert {"id_reader", "a4_printer", "thermal_printer"} <= set(test["detail"]["devices"])
    kiosk.printer.paper_out = True
    faulty = operator.final(operator.send("self_test"))
    assert faulty["detail"]["reason"] == "devices_faulty"
    assert "thermal_printer" in faulty["detail"]["faulty"]
    kiosk.printer.paper_out = False
    until(lambda: kiosk.state() == "idle", what="back in service")

    reload = operator.final(operator.send("reload_catalog"))
    assert reload["detail"] == {"version": 7, "applies": "now"}
    until(lambda: rt.catalog.version == 7)

    restart = operator.send("restart_ui")
    until(lambda: kiosk.frames and kiosk.frames[-1].exit_code == EXIT_RESTART_UI, what="exit")
    assert operator.statuses(restart) == ["accepted"]
    # the app stops with EXIT_RESTART_UI, systemd starts a new UI: its remote settles the command
    KioskRemote(rt).recover()
    assert operator.final(restart)["detail"] == {"restarted": True}


def test_fit_png_downscales_until_it_fits(tmp_path: Path) -> None:
    raw = fake_screen(tmp_path / "grab.png").read_bytes()
    assert len(raw) > MAX_PNG_BYTES
    png, size = fit_png(raw, MAX_PNG_BYTES)
    assert len(png) <= MAX_PNG_BYTES and size[0] < 1920
    small = io.BytesIO()
    Image.new("RGB", (64, 32), "white").save(small, format="PNG")
    assert fit_png(small.getvalue(), MAX_PNG_BYTES) == (small.getvalue(), (64, 32))


def test_redaction_masks_id_numbers_names_and_journal_values() -> None:
    hash_ = "ab" * 32
    text = (
        "id 11010519491231002X and 110105194912310021; 2017 card CAN320170510012; "
        "name=张秀英, 姓名：李建国; "
        f"{hash_} {'cd' * 32}; ts 1764000000123 and 17640000001234567890"
    )
    masked, n = redact(text, [hash_])
    assert "11010519491231002X" not in masked and "110105194912310021" not in masked
    assert "CAN320170510012" not in masked and "张秀英" not in masked and "李建国" not in masked
    assert hash_ not in masked and "cd" * 32 in masked  # only what the journal marks personal
    assert "1764000000123" in masked and "17640000001234567890" in masked
    assert n == 6
