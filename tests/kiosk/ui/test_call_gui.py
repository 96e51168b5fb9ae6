"""The kiosk's call overlay (远程帮办, issue 22) on the real app, and the resident ending a call.

The real kiosk app runs on Xvfb (``call_app.py``) in elder mode, in Chinese and in English; its
call audio is a WAV of a tone (``[call] microphone``) and a WAV of what it hears. The rest is real:
the station's fleet agent, a private mosquitto, ``fleet console`` in its own process, and the
technician's page in a headless Chromium with a fake microphone. The resident asks for help, the
technician calls; the overlay (screenshots in ``test-artifacts/call/``) shows the staff member's
name, passes the elder-mode audit, turns the voice up, and its "end call" ends the call on the
console's page too, which audits the call's end as the resident's. The console records calls:
the question comes first, which the resident answers yes (zh: the recording is kept) or no (en:
nothing is recorded). Both cameras are files of four
coloured quadrants (:mod:`sandbox.camera`): the kiosk's screenshot must show the technician's
picture whole, and the technician's page the station's, which turns black while the resident has
turned the camera off.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from fleet.agent import Agent, AgentConfig
from sandbox.camera import KIOSK_COLOURS, STAFF_COLOURS, matches, quadrants, quadrants_y4m
from sandbox.mosquitto import MosquittoBroker
from tests.fleet.console.test_call_browser import (
    audit_rows,
    chromium_with_microphone,
    ended_in_audit,
    login,
    page_picture,
    station_known,
    tone_wav,
)
from tests.fleet.console.test_console_browser import SITE, console_process
from tests.kiosk.ui.app_process import AppProcess
from tests.kiosk.ui.test_help import until

HERE = Path(__file__).resolve().parent
STATION = "st-call-gui"


class CallApp(AppProcess):
    """call_app.py in a subprocess; its stdout lines as they come."""

    def __init__(self, tmp_path: Path, xvfb: str, shots: Path, lang: str, consent: str) -> None:
        super().__init__()
        self.state = tmp_path / "state"
        mic = tone_wav(tmp_path / "kiosk-mic.wav", 1000.0)
        camera = quadrants_y4m(tmp_path / "kiosk.y4m", KIOSK_COLOURS)
        self.go = tmp_path / "go"
        config = tmp_path / "kiosk.toml"
        config.write_text(
            "version = 1\n"
            f'[station]\nid = "{STATION}"\nsite = "{SITE}"\n'
            f'[state]\ndir = "{self.state}"\n'
            '[devices]\naudio_player_args = ["-D", "null"]\n'
            "[ui]\nwidth = 1920\nheight = 1080\nshow_simulator_controls = false\n"
            f'[call]\nmicrophone = "{mic}"\nspeaker = "{tmp_path / "heard.wav"}"\n'
            f'speaker_format = ""\ncamera = "{camera}"\n',
            encoding="utf-8",
        )
        self.launch(
            HERE / "call_app.py",
            [
                "--config",
                str(config),
                "--artifacts",
                str(shots),
                "--lang",
                lang,
                "--go",
                str(self.go),
                "--consent",
                consent,
            ],
            xvfb,
        )

    def finish(self) -> None:
        assert self.wait(120) == 0, "\n".join(self.stderr)[-3000:]


CAMERA = {"zh": ("关闭摄像头", "打开摄像头"), "en": ("Camera off", "Camera on")}
CONSENT = {"zh": "yes", "en": "no"}  # the resident's answer to the recording's question
EXPECTED = {
    "zh": ("工作人员 tech 正在和您通话", "通话已结束", "工作人员tech正在呼叫您"),
    "en": ("tech is talking with you", "The call has ended", "Staff member tech is calling you"),
}


@pytest.mark.gui
@pytest.mark.slow
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_call_overlay_in_elder_mode_and_the_resident_ending_the_call(
    tmp_path: Path, xvfb: str, artifacts: Path, lang: str
) -> None:
    shots = artifacts / "call"
    shots.mkdir(exist_ok=True)
    broker = MosquittoBroker(tmp_path / "broker")
    broker.start()
    db = tmp_path / "console.sqlite3"
    recordings = tmp_path / "recordings"
    recording = ("--call-recording", "--call-recordings-dir", str(recordings))
    agent: Agent | None = None
    app: CallApp | None = None
    consent = CONSENT[lang]
    try:
        with (
            console_process(
                tmp_path, broker, f"sqlite:///{db}", {"tech": "technician"}, *recording
            ) as url,
            chromium_with_microphone(
                tone_wav(tmp_path / "staff-mic.wav", 440.0),
                quadrants_y4m(tmp_path / "staff.y4m", STAFF_COLOURS),
            ) as browser,
        ):
            app = CallApp(tmp_path, xvfb, shots, lang, consent)
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
            login(browser, url, "tech")
            until(lambda: station_known(url, browser, STATION), 30, "the station on the console")
            until(lambda: app.saw("AT help"), 60, "the resident touching Help")
            browser.get(f"{url}/stations/{SITE}/{STATION}/call")
            browser.find_element(By.ID, "call-start").click()
            wait = WebDriverWait(browser, 60, poll_frequency=0.2)
            wait.until(lambda d: d.execute_script("return window.stationCall.state") == "talking")
            until(lambda: matches(page_picture(browser), KIOSK_COLOURS), 20, "the kiosk's camera")
            wait.until(lambda d: d.execute_script("return window.stationCall.consent") == consent)
            browser.save_screenshot(str(shots / f"console-talking-{lang}.png"))
            until(
                lambda: app.values("CAMERA") or app.proc.poll() is not None,
                60,
                "the resident turning the camera off",
            )
            assert app.values("CAMERA"), "\n".join(app.lines[-8:] + app.stderr[-20:])
            until(lambda: all(max(q) < 40 for q in page_picture(browser)), 10, "black on the page")
            app.go.touch()
            until(lambda: matches(page_picture(browser), KIOSK_COLOURS), 10, "the camera again")
            wait.until(lambda d: d.execute_script("return window.stationCall.ended") is True)
            state = browser.execute_script("return window.stationCall.state")
            status = browser.find_element(By.ID, "call-status").text
            browser.save_screenshot(str(shots / f"console-ended-by-resident-{lang}.png"))
            app.finish()
            rows = until(lambda: ended_in_audit(db), 10, "the call's end in the audit")
            agent.stop()  # before the console and the broker go
            agent = None
    finally:
        if agent is not None:
            agent.stop()
        if app is not None and app.proc.poll() is None:
            app.proc.kill()
        broker.stop()

    talking, ended, spoken = EXPECTED[lang]
    assert app is not None
    # the console records calls: the question first, elder-sized, said; the answer kept
    asked = {"zh": "要录音，录音保存30天", "en": "recorded and the recording kept for 30 days"}
    assert asked[lang] in app.value("CONSENT_ASKED")
    assert 3 <= int(app.value("CONSENT_TARGETS")) <= 6
    said_asked = {"zh": "这次通话要录音", "en": "This call is to be recorded"}[lang]
    assert any(said_asked in line for line in app.said())
    kept = sorted(recordings.glob("*.webm")) if recordings.exists() else []
    if consent == "yes":
        assert len(kept) == 1 and kept[0].stat().st_size > 1000, kept
    else:
        assert kept == []  # declined: nothing recorded at all
    consents = [d["consent"] for a, _, d, _ in audit_rows(db) if a == "call_consent"]
    assert consents == [consent]
    # the technician's picture, as the resident sees it on the screen
    x, y, w, h = map(int, app.value("PICTURE").split())
    with Image.open(shots / f"call-1-talking-{lang}-elder.png") as shot:
        box = shot.convert("RGB").crop((x, shot.height - y - h, x + w, shot.height - y))
    assert w >= 200 and h >= 150, (w, h)  # large enough to recognise a face
    seen = quadrants(box.tobytes(), box.width, box.height)
    assert matches(seen, STAFF_COLOURS), seen
    assert app.value("CAMERA") == " ".join(map(repr, CAMERA[lang]))
    told = {"zh": "工作人员能看到您", "en": "the staff member can see you"}[lang]
    assert any(told in line for line in app.said())  # the camera is said, not only shown
    assert app.values("TALKING") == [repr(talking)]
    assert app.values("AUDIT") == []  # elder sizes, contrast, targets: nothing to fix
    [targets] = app.values("TARGETS")
    assert 3 <= int(targets) <= 6
    [volume] = app.values("VOLUME")
    assert volume.split() == ["'100%'", "'125%'"] or "125" in volume
    assert app.values("ENDED") == [repr(ended)]
    assert app.values("UNDER") == ["identify"]  # the session underneath went on
    assert any(spoken in line for line in app.said())  # said as well as shown
    assert state == "ended-resident" and status  # the console's page knows who ended it
    end = [d for a, _, d, _ in rows if a == "call_end"][-1]
    assert end["reason"] == "resident" and end["connected"] is True and end["duration_s"] > 0
    assert [a for a, *_ in audit_rows(db) if a.startswith("call_")] == [
        "call_offer",
        "call_start",
        "call_consent",
        "call_end",
    ]
