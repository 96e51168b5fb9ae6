"""Help at the station, end to end (issue 18, 帮办): answered back, and honest after hours.

The real kiosk app runs on Xvfb (``help_app.py``) and is driven with touches. For the answer, the
rest of the system is real too: the station's fleet agent reads the kiosk's journal and talks to a
private mosquitto; the console ingests the help request and raises the alert; the test, as the
technician, acknowledges it through the console's API with an answer; the console sends the
``help_reply`` command, the agent hands it to the kiosk through the journal, and the kiosk shows
and speaks it. After hours, the receipt comes out of the ESC/POS printer simulator on TCP.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.escpos.simulator import EscposSimulator
from fleet.agent import Agent, AgentConfig
from fleet.console import Console, Settings
from fleet.console.store import AuditEntry, CommandRow
from sandbox.mosquitto import MosquittoBroker
from statedir.journal import Journal
from tests.fleet.console.test_console import PASSWORD, login
from tests.kiosk.ui.app_process import AppProcess

HERE = Path(__file__).resolve().parent
SITE, STATION = "zibo-gx", "st-help"


@pytest.fixture
def thermal(tmp_path: Path) -> Iterator[EscposSimulator]:
    sim = EscposSimulator(out_dir=tmp_path / "receipts")
    sim.start()
    yield sim
    sim.stop()


def until(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


class App(AppProcess):
    """help_app.py in a subprocess; its stdout lines as they come."""

    def __init__(self, tmp_path: Path, xvfb: str, artifacts: Path, thermal: EscposSimulator):
        super().__init__()
        self.state = tmp_path / "state"
        config = tmp_path / "kiosk.toml"
        config.write_text(
            "version = 1\n"
            f'[state]\ndir = "{self.state}"\n'
            f'[devices]\nthermal_printer = "{thermal.url}"\naudio_player_args = ["-D", "null"]\n'
            "[ui]\nwidth = 1920\nheight = 1080\nshow_simulator_controls = false\n",
            encoding="utf-8",
        )
        self.config, self.xvfb = config, xvfb
        self.shots = artifacts / "help"
        self.shots.mkdir(exist_ok=True)

    def start(self, scenario: str, lang: str) -> None:
        args = ["--config", str(self.config), "--artifacts", str(self.shots), "--lang", lang]
        self.launch(HERE / "help_app.py", [*args, "--scenario", scenario], self.xvfb)

    def finish(self) -> None:
        code = self.wait(240)
        log = self.state / "logs" / "kiosk.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        assert code == 0, "\n".join(self.stderr)[-2000:] + tail
        assert "error in the UI loop" not in log.read_text(errors="replace")


@pytest.mark.gui
@pytest.mark.slow
def test_a_technicians_answer_is_shown_and_spoken_to_the_resident(
    tmp_path: Path, xvfb: str, artifacts: Path, thermal: EscposSimulator
) -> None:
    broker = MosquittoBroker(tmp_path / "broker")
    broker.start()
    console = Console(
        broker.host,
        broker.port,
        password=broker.console_password,
        db_url=f"sqlite:///{tmp_path / 'console.sqlite3'}",
        settings=Settings(sweep_s=0.2),
    )
    console.add_user("tech", PASSWORD, "technician")
    console.start()
    app = App(tmp_path, xvfb, artifacts, thermal)
    agent: Agent | None = None
    try:
        app.start("reply", "zh")
        until(lambda: app.saw("AT idle"), 60, "the home screen")
        agent = Agent(
            AgentConfig(
                site=SITE,
                station=STATION,
                host=broker.host,
                port=broker.port,
                state_dir=app.state,
                journal_path=app.state / "journal.sqlite3",
                health_interval_s=1.0,
                will_delay_s=1,
            )
        )
        agent.start()
        until(lambda: app.saw("AT help"), 60, "the resident touching Help")
        tech, csrf = login(console, "tech")
        [alert] = until(
            lambda: [a for a in tech.get("/api/alerts").json() if a["kind"] == "help_request"],
            15,
            "the help request on the console",
        )
        assert alert["station"] == STATION and alert["detail"]["screens"] == ["identify"]
        # a reply the station could not take is refused, and the alert stays open
        bad = tech.post(
            f"/api/alerts/{alert['id']}/ack",
            headers={"X-CSRF-Token": csrf},
            json={"reply": "on_the_way", "minutes": 0},
        )
        assert bad.status_code == 400
        assert [a["id"] for a in tech.get("/api/alerts").json()] == [alert["id"]]
        ack = tech.post(
            f"/api/alerts/{alert['id']}/ack",
            headers={"X-CSRF-Token": csrf},
            json={"reply": "on_the_way", "minutes": 10},
        )
        assert ack.status_code == 200 and ack.json()["acknowledged"] is True
        command_id = ack.json()["reply_command"]
        app.finish()
        done = until(
            lambda: (
                (c := tech.get(f"/api/commands/{command_id}").json())["status"] == "succeeded" and c
            ),
            15,
            "the station's result",
        )
    finally:
        if agent is not None:
            agent.stop()
        console.stop()
        broker.stop()

    answer = "工作人员正在赶来，大约 10 分钟后到，请稍等。"
    assert app.value("SHOWN") == repr(f"工作人员回复\n{answer}")
    assert answer in app.said()  # spoken, once it was shown
    assert app.said().count(answer) == 1
    assert app.value("AFTER_CLOSE") == "''"  # closed by the resident: gone
    assert (done["name"], done["args"], done["detail"]["shown"]) == (
        "help_reply",
        {"kind": "on_the_way", "minutes": 10},
        "session",
    )
    with console.store.session() as db:
        trail = [(a.action, a.actor, a.detail) for a in db.query(AuditEntry)]
        [row] = db.query(CommandRow).filter(CommandRow.name == "help_reply").all()
        assert row.actor == "tech"
    assert ("acknowledge_alert", "tech") in [(a, b) for a, b, _ in trail]
    [(_, _, replied)] = [t for t in trail if t[0] == "help_reply"]
    assert replied["minutes"] == 10 and replied["id"] == command_id
    for name in ("help-1-asked-zh", "help-2-answered-zh"):
        assert (app.shots / f"{name}.png").stat().st_size > 10_000


@pytest.mark.gui
@pytest.mark.slow
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_after_hours_the_kiosk_says_so_and_prints_the_hotline(
    tmp_path: Path, xvfb: str, artifacts: Path, thermal: EscposSimulator, lang: str
) -> None:
    app = App(tmp_path, xvfb, artifacts, thermal)
    app.start("after_hours", lang)
    app.finish()
    print("\n".join(app.lines))  # shown when the test fails
    if lang == "zh":
        assert app.value("TITLE") == repr("现在不是工作时间")
        assert "8:30至17:30" in app.value("BODY")
        assert app.value("HOTLINE") == repr("如需帮助，请拨打服务热线：12345")
        assert "工作人员会尽快联系您" not in app.value("BODY")  # not at 22:00
        [prompt] = [s for s in app.said() if s.startswith("现在不是工作时间")]
        assert "一 二 三 四 五" in prompt  # the hotline digit by digit, not 一万二千…
        assert app.value("SLIP") == repr("小票已打印，请取走")
    else:
        assert app.value("TITLE") == repr("No staff on duty now")
        assert "8:30 to 17:30" in app.value("BODY")
        assert app.value("HOTLINE") == repr("For help now, call the hotline: 12345")
        [prompt] = [s for s in app.said() if s.startswith("No staff are on duty now")]
        assert "1 2 3 4 5" in prompt
        assert app.value("SLIP") == repr("Slip printed, please take it")
    # one slip (a second touch printed nothing), with the hotline and the duty hours
    [slip] = thermal.receipts
    slip.picture().save(app.shots / f"help-after-hours-slip-{lang}.png")
    assert "12345" in slip.text and "8:30" in slip.text and "17:30" in slip.text
    assert ("求助热线" if lang == "zh" else "Help hotline") in slip.text
    # the help request is still sent: the console shows it (its alert waits for the morning)
    journal = Journal(app.state / "journal.sqlite3")
    try:
        helps = [e for e in journal.pending_events() if e.type == "help"]
    finally:
        journal.close()
    assert [e.payload["screen"] for e in helps] == ["idle"]


@pytest.mark.gui
@pytest.mark.slow
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_station_without_call_audio_says_so_and_offers_the_slip_on_duty(
    tmp_path: Path, xvfb: str, artifacts: Path, thermal: EscposSimulator, lang: str
) -> None:
    app = App(tmp_path, xvfb, artifacts, thermal)
    app.start("no_call", lang)
    app.finish()
    print("\n".join(app.lines))  # shown when the test fails
    assert app.value("SLIP_SHOWN") == "True"  # offered on duty, because no call is possible
    [prompt] = [s for s in app.said() if "不能通话" in s or "Calls are not available" in s]
    if lang == "zh":
        assert app.value("TITLE") == repr("已通知工作人员")
        assert "本机不能通话" in app.value("BODY") and "打印热线小票" in app.value("BODY")
        assert prompt.startswith("已通知工作人员。本机不能通话。")
        assert app.value("SLIP") == repr("小票已打印，请取走")
    else:
        assert "Calls are not available at this station" in app.value("BODY")
        assert prompt.startswith("Staff have been notified. Calls are not available")
        assert app.value("SLIP") == repr("Slip printed, please take it")
    [slip] = thermal.receipts
    assert "12345" in slip.text
    assert (app.shots / f"help-no-call-elder-{lang}.png").stat().st_size > 10_000
