"""A staff member's call to a station (远程帮办, issue 22), end to end and on real peers.

``fleet console`` runs in its own process against a private mosquitto; the station's fleet agent
and the kiosk's runtime (its shell, pumped on a thread of the test as the app's clock would) share
a state directory. The technician's browser is a headless Chromium whose microphone is a WAV of a
440 Hz tone (Chromium's fake capture device); the kiosk's aiortc peer plays a WAV of a 1000 Hz
tone and writes what it receives to a WAV. Each side must receive the other's tone (frequency and
level checked with numpy), and the console's audit must hold the call with its duration.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import sqlite3
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from fleet.agent import Agent
from flows.catalog import load_catalog
from kiosk.fonts import find_cjk_font
from kiosk.i18n import Translator
from kiosk.shell.call_peer import CallMedia
from kiosk.shell.catalog_watch import DEMO_CATALOG
from kiosk.shell.devices import SpeechOff
from kiosk.shell.deviceset import Devices
from kiosk.shell.runtime import Frame, Intent, Runtime
from sandbox.camera import KIOSK_COLOURS, STAFF_COLOURS, matches, quadrants, quadrants_y4m
from sandbox.mosquitto import MosquittoBroker
from statedir.journal import Journal
from tests.fleet.console.test_console_browser import (
    ARTIFACTS,
    CHROMIUM_FLAGS,
    PASSWORD,
    SITE,
    console_process,
    start_station,
)

pytestmark = pytest.mark.slow

STATION = "st-call"
STAFF_HZ = 440.0  # the technician's microphone
KIOSK_HZ = 1000.0  # the station's microphone
RATE = 48000
AMPLITUDE = 0.3
SENT_DBFS = 20 * math.log10(AMPLITUDE / math.sqrt(2))  # a sine's RMS level: -13.5 dBFS


def tone_wav(path: Path, hz: float, seconds: float = 4.0, amplitude: float = AMPLITUDE) -> Path:
    """A mono 16-bit WAV of a pure tone (a whole number of periods, so that it loops cleanly)."""
    n = int(RATE * seconds)
    t = np.arange(n) / RATE
    samples = (amplitude * 32767 * np.sin(2 * math.pi * hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())
    return path


def analyse(samples: np.ndarray, rate: float) -> tuple[float, float, float]:
    """(dominant frequency in Hz, level in dBFS, share of the energy within 5% of it)."""
    x = samples.astype(np.float64)
    x = x - x.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    peak = float(freqs[int(np.argmax(spectrum[1:])) + 1])
    near = np.abs(freqs - peak) <= 0.05 * peak
    share = float(spectrum[near].sum() / spectrum.sum())
    rms = float(np.sqrt(np.mean(x**2)))
    return peak, 20 * math.log10(max(rms, 1e-12)), share


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        channels, rate = w.getnchannels(), w.getframerate()
    return data.reshape(-1, channels)[:, 0].astype(np.float64) / 32768.0, rate


@contextlib.contextmanager
def chromium_with_microphone(wav: Path, camera: Path | None = None) -> Iterator[WebDriver]:
    """Headless Chromium whose microphone plays ``wav`` (Chromium's fake capture device), and
    whose camera plays ``camera`` (a ``.y4m``; Chromium's own moving pattern without one)."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver_path, "install the Debian packages chromium and chromium-driver"
    profile = tempfile.mkdtemp(prefix="call-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
        *([f"--use-file-for-fake-video-capture={camera}"] if camera else []),
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class SpokenLog(SpeechOff):
    """No sound: what would be said, kept."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def speak(self, text: str, *, lang: str, elder: bool = False) -> None:
        self.texts.append(text)


class WaitingReader:
    """A card reader no card is put on (the resident asks for help before that)."""

    def read_again(self) -> None:
        pass


@dataclass
class Kiosk:
    runtime: Runtime
    spoken: SpokenLog
    frames: list[Frame]
    received: Path


@contextlib.contextmanager
def kiosk(
    tmp_path: Path, broker: MosquittoBroker, camera: Path | None = None
) -> Iterator[tuple[Kiosk, Agent]]:
    """The station: its agent, and the kiosk's runtime on the same journal, pumped on a thread;
    its call audio is a WAV of a 1000 Hz tone and a WAV of what it hears; its camera ``camera``."""
    agent, _ = start_station(tmp_path, broker, STATION)
    spoken = SpokenLog()
    unused: Any = object()  # no printer is used here
    runtime = Runtime(
        catalog=load_catalog(DEMO_CATALOG),
        devices=Devices(WaitingReader(), unused, unused, spoken),
        journal=Journal(tmp_path / STATION / "journal.sqlite3"),
        translator=Translator(strict=True),
        font=find_cjk_font(),
        secret=b"k" * 32,
        attract_every_s=3600,
    )
    received = tmp_path / "kiosk-received.wav"
    runtime.calls.audio = CallMedia(
        source=str(tone_wav(tmp_path / "kiosk-mic.wav", KIOSK_HZ)),
        sink=str(received),
        camera=str(camera or ""),
    )
    frames: list[Frame] = []
    runtime.on_frame = frames.append
    stop = threading.Event()

    def pump() -> None:
        while not stop.is_set():
            try:
                runtime.pump()
            except Exception:
                import traceback

                traceback.print_exc()
                raise
            time.sleep(0.02)

    thread = threading.Thread(target=pump, name="kiosk-pump", daemon=True)
    thread.start()
    try:
        yield Kiosk(runtime, spoken, frames, received), agent
    finally:
        runtime.calls.close()
        stop.set()
        thread.join(5)
        agent.stop()


def login(browser: WebDriver, url: str, name: str) -> None:
    browser.get(url + "/login")
    browser.find_element(By.ID, "name").send_keys(name)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "who").text.startswith(name))


def until(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def audit_rows(db: Path) -> list[tuple[str, str, Any, float]]:
    import json

    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT action, actor, detail, ts FROM audit ORDER BY id").fetchall()
    return [(a, who, json.loads(d or "{}"), ts) for a, who, d, ts in rows]


def ended_in_audit(db: Path) -> list[tuple[str, str, Any, float]] | None:
    rows = audit_rows(db)
    return rows if any(action == "call_end" for action, *_ in rows) else None


RECORD_JS = """
const done = arguments[arguments.length - 1];
const seconds = arguments[0];
const ctx = new AudioContext();
ctx.resume().then(() => {
  const source = ctx.createMediaStreamSource(window.stationCall.remote);
  const tap = ctx.createScriptProcessor(4096, 1, 1);
  const got = [];
  tap.onaudioprocess = (e) => {
    const block = e.inputBuffer.getChannelData(0);
    for (let i = 0; i < block.length; i += 1) got.push(block[i]);
    if (got.length >= ctx.sampleRate * seconds) {
      tap.onaudioprocess = null; source.disconnect(); tap.disconnect();
      done({rate: ctx.sampleRate, samples: got.map((v) => Math.round(v * 32767))});
    }
  };
  source.connect(tap);
  tap.connect(ctx.destination);
});
"""


VIDEO_JS = """
const video = document.getElementById(arguments[0]);
if (!video || !video.videoWidth) return null;
const canvas = document.createElement("canvas");
canvas.width = video.videoWidth; canvas.height = video.videoHeight;
canvas.getContext("2d").drawImage(video, 0, 0);
return canvas.toDataURL("image/png");
"""


def page_picture(browser: WebDriver, element: str = "call-video") -> list[tuple[int, int, int]]:
    """The four quadrants' colours of a ``<video>`` on the page, as the technician sees it."""
    import base64
    import io

    from PIL import Image

    url = browser.execute_script(VIDEO_JS, element)
    if not url:
        return []
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
    return quadrants(image.tobytes(), image.width, image.height)


@dataclass
class Rig:
    url: str  # the console's
    station: Kiosk
    browser: WebDriver  # the technician's
    db: Path  # the console's SQLite file


@contextlib.contextmanager
def call_rig(
    tmp_path: Path,
    broker: MosquittoBroker,
    users: dict[str, str] | None = None,
    *,
    cameras: bool = False,
) -> Iterator[Rig]:
    """``fleet console`` (``users``: name → role, a technician "tech" by default), the station,
    and the technician's Chromium with a 440 Hz microphone; with ``cameras``, both sides'
    cameras are files of four coloured quadrants."""
    db = tmp_path / "console.sqlite3"
    staff_wav = tone_wav(tmp_path / "staff-mic.wav", STAFF_HZ)
    staff_camera = quadrants_y4m(tmp_path / "staff.y4m", STAFF_COLOURS) if cameras else None
    kiosk_camera = quadrants_y4m(tmp_path / "kiosk.y4m", KIOSK_COLOURS) if cameras else None
    with (
        console_process(
            tmp_path, broker, f"sqlite:///{db}", users or {"tech": "technician"}
        ) as url,
        kiosk(tmp_path, broker, kiosk_camera) as (station, _agent),
        chromium_with_microphone(staff_wav, staff_camera) as browser,
    ):
        yield Rig(url, station, browser, db)


def call_from_the_call_page(station: Kiosk, browser: WebDriver, url: str) -> WebDriverWait:
    """The technician opens the station's call page and calls (the resident has asked for
    help); returns once the page is talking."""
    login(browser, url, "tech")
    until(lambda: station_known(url, browser), 30, "the station on the console")
    browser.get(f"{url}/stations/{SITE}/{STATION}/call")
    browser.find_element(By.ID, "call-start").click()
    wait = WebDriverWait(browser, 40, poll_frequency=0.1)
    wait.until(lambda d: d.execute_script("return window.stationCall.state") == "talking")
    return wait


def call_from_the_station_page(station: Kiosk, browser: WebDriver, url: str) -> WebDriverWait:
    """A resident starts and asks for help (the kiosk may now take a call); the technician logs
    in, finds "call" offered on the station's page (its birth says ``call``: the kiosk noted its
    call audio), and calls; returns once the page is talking."""
    station.runtime.post(Intent("start"))
    station.runtime.post(Intent("help"))
    login(browser, url, "tech")
    until(
        lambda: station_known(url, browser) and browser.find_elements(By.ID, "call-station"),
        45,
        "the call offered",
    )
    browser.find_element(By.ID, "call-station").click()
    wait = WebDriverWait(browser, 40, poll_frequency=0.1)
    wait.until(lambda d: d.find_element(By.ID, "call-start").is_enabled())
    browser.find_element(By.ID, "call-start").click()
    wait.until(lambda d: d.execute_script("return window.stationCall.state") == "talking")
    return wait


def station_known(url: str, browser: WebDriver, station: str = STATION) -> bool:
    browser.get(f"{url}/stations/{SITE}/{station}")
    return "404" not in browser.title and bool(browser.find_elements(By.ID, "live"))


def test_a_call_carries_each_sides_tone_and_is_audited_with_its_duration(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with call_rig(tmp_path, broker, cameras=True) as rig:
        url, station, browser, db = rig.url, rig.station, rig.browser, rig.db
        wait = call_from_the_station_page(station, browser, url)
        frame = until(lambda: station.frames and station.frames[-1], 5, "a frame")
        until(lambda: station.frames[-1].call.phase == "talking", 10, "the kiosk talking")
        frame = station.frames[-1]
        assert frame.call.staff == "tech" and frame.view.screen != "idle"
        assert any("工作人员tech正在呼叫您" in t for t in station.spoken.texts)
        browser.save_screenshot(str(ARTIFACTS / "call-talking.png"))

        heard = browser.execute_async_script(RECORD_JS, 2.0)  # what the technician hears

        # each side sees the other's camera, whole and the right way round
        until(
            lambda: matches(page_picture(browser), KIOSK_COLOURS),
            10,
            f"the station's camera on the page (seen {page_picture(browser)})",
        )
        until(station.runtime.calls.picture, 10, "the staff member's picture at the kiosk")
        until(
            lambda: (
                (p := station.runtime.calls.picture()) is not None
                and matches(quadrants(p.rgb, p.width, p.height), STAFF_COLOURS)
            ),
            10,
            "the staff member's camera at the kiosk",
        )
        assert station.frames[-1].call.camera and station.frames[-1].call.picture
        assert any("摄像头已打开" in t for t in station.spoken.texts)  # the resident is told
        browser.save_screenshot(str(ARTIFACTS / "call-video.png"))
        time.sleep(0.5)
        browser.find_element(By.ID, "call-hangup").click()  # the technician ends the call
        wait.until(lambda d: d.execute_script("return window.stationCall.ended") is True)
        until(lambda: station.frames[-1].call.phase in ("ended", ""), 10, "the kiosk's end")
        assert station.frames[-1].call.ended in ("staff", "")
        ended_frames = [f.call for f in station.frames if f.call.phase == "ended"]
        assert ended_frames and ended_frames[-1].ended == "staff"

        # the technician heard the kiosk's 1000 Hz tone
        samples = np.asarray(heard["samples"], dtype=np.float64)[int(heard["rate"] * 0.5) :]
        peak, level, share = analyse(samples / 32768.0, float(heard["rate"]))
        print(f"the technician heard {peak:.1f} Hz at {level:.1f} dBFS ({share:.2f} of energy)")
        assert abs(peak - KIOSK_HZ) < 10, peak
        assert abs(level - SENT_DBFS) < 6, level  # as sent: the kiosk applies no processing
        assert share > 0.8, share

        # the kiosk heard the technician's 440 Hz tone
        until(
            lambda: station.received.exists() and station.received.stat().st_size > RATE, 10, "wav"
        )
        got, rate = read_wav(station.received)
        assert len(got) > rate * 2, "less than two seconds received"
        peak, level, share = analyse(got[rate // 2 :], rate)
        print(f"the kiosk heard {peak:.1f} Hz at {level:.1f} dBFS ({share:.2f} of energy)")
        assert abs(peak - STAFF_HZ) < 10, peak
        assert -40 < level < SENT_DBFS + 3, level  # the browser's gain control may lower it
        assert share > 0.8, share

        # the console audited the call: the offer, its start and its end with the duration
        rows = until(lambda: ended_in_audit(db), 10, "the call's end in the audit")
        calls = [(a, who, d) for a, who, d, _ in rows if a.startswith("call_")]
        assert [a for a, *_ in calls] == ["call_offer", "call_start", "call_end"]
        assert {who for _, who, _ in calls} == {"tech"}
        end = calls[-1][2]
        assert end["reason"] == "staff" and end["connected"] is True
        assert 2.0 <= end["duration_s"] <= 30.0, end
        assert len({d["id"] for *_, d in calls}) == 1


DENIED_JS = """
const done = arguments[arguments.length - 1];
const csrf = document.querySelector('input[name="csrf_token"]').value;
fetch(arguments[0], {
  method: "POST", credentials: "same-origin",
  headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
  body: JSON.stringify({sdp: "v=0\\r\\no=- 1 1 IN IP4 127.0.0.1\\r\\n"}),
}).then((r) => done(r.status));
"""


def test_no_call_without_a_help_request_and_none_from_a_role_without_the_permission(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    users = {"tech": "technician", "oper": "operator"}
    with call_rig(tmp_path, broker, users) as rig:
        url, station, browser, db = rig.url, rig.station, rig.browser, rig.db
        station.runtime.post(Intent("start"))  # a resident is served and did not ask for help
        login(browser, url, "tech")
        until(lambda: station_known(url, browser), 30, "the station on the console")
        browser.get(f"{url}/stations/{SITE}/{STATION}/call")
        wait = WebDriverWait(browser, 40, poll_frequency=0.1)
        browser.find_element(By.ID, "call-start").click()
        wait.until(lambda d: d.execute_script("return window.stationCall.ended") is True)
        assert browser.execute_script("return window.stationCall.reason") == "no_help_request"
        status = browser.find_element(By.ID, "call-status")
        assert status.get_attribute("data-state") == "no-help-request"
        assert "没有按“帮助”" in status.text  # the technician is told why, in words
        browser.save_screenshot(str(ARTIFACTS / "call-refused.png"))
        assert station.runtime.session.state == "identify"  # the session went on untouched
        assert all(f.call.phase == "" for f in station.frames)
        assert not any("呼叫您" in t for t in station.spoken.texts)
        record = station.runtime.journal.commands(state="failed", target="ui")
        assert [(r.name, r.detail) for r in record] == [
            ("call_offer", {"reason": "no_help_request"})
        ]

        # an operator may look at the station but not call it: page and API refuse, audited
        browser.delete_all_cookies()
        login(browser, url, "oper")
        browser.get(f"{url}/stations/{SITE}/{STATION}/call")
        assert not browser.find_elements(By.ID, "call-start")
        assert "403" in browser.title or browser.find_elements(By.CSS_SELECTOR, "main")
        browser.get(f"{url}/stations/{SITE}/{STATION}")  # a page with the session's CSRF token
        assert not browser.find_elements(By.ID, "call-station")  # no way in is offered
        api = f"{url}/api/stations/{SITE}/{STATION}/calls"
        assert browser.execute_async_script(DENIED_JS, api) == 403

        rows = audit_rows(db)
        offers = [(a, who) for a, who, *_ in rows if a == "call_offer"]
        assert offers == [("call_offer", "tech")]  # the operator's attempts sent nothing
        denied = [d for a, who, d, _ in rows if a == "denied" and who == "oper"]
        assert [d.get("needs") for d in denied] == ["call", "call"]
        ends = [d for a, _, d, _ in rows if a == "call_end"]
        assert len(ends) == 1 and ends[0]["connected"] is False and ends[0]["duration_s"] == 0


def test_a_call_whose_page_goes_away_ends_on_the_kiosk_within_seconds(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    with call_rig(tmp_path, broker) as rig:
        url, station, browser, db = rig.url, rig.station, rig.browser, rig.db
        station.runtime.post(Intent("help"))  # asked on the home screen, before a session
        call_from_the_call_page(station, browser, url)
        until(lambda: station.frames[-1].call.phase == "talking", 10, "the kiosk talking")
        # the technician's tab is gone without a word (crash, closed laptop, lost network)
        browser.execute_script("window.stop(); document.documentElement.innerHTML = '';")
        browser.get("about:blank")
        gone = time.monotonic()
        until(lambda: station.frames[-1].call.phase != "talking", 15, "the kiosk noticing")
        noticed = time.monotonic() - gone
        ended = [f.call for f in station.frames if f.call.phase == "ended"]
        assert ended and ended[-1].ended == "dropped", ended[-1:]
        assert noticed < 8.0, noticed  # DROP_S (5 s) and a pump or two
        assert any("通话已断开" in t for t in station.spoken.texts)  # said, not only shown
        # the console's audit has the call's end all the same: the kiosk reported it (evt/call_end)
        rows = until(lambda: ended_in_audit(db), 15, "the call's end in the audit")
        ends = [(who, d) for a, who, d, _ in rows if a == "call_end"]
        assert len(ends) == 1, ends
        who, end = ends[0]
        assert who == "tech" and end["by"] == "station", end
        assert end["reason"] == "dropped" and end["connected"] is True
        assert 0.0 < end["duration_s"] < 30.0, end
        starts = [d for a, _, d, _ in rows if a == "call_start"]
        assert [d["id"] for d in starts] == [end["id"]]


FROZEN_S = 10.0


def test_a_call_whose_kiosk_goes_quiet_ends_on_the_page_and_in_the_audit(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    with call_rig(tmp_path, broker) as rig:
        url, station, browser, db = rig.url, rig.station, rig.browser, rig.db
        station.runtime.post(Intent("help"))
        call_from_the_call_page(station, browser, url)
        until(lambda: station.frames[-1].call.phase == "talking", 10, "the kiosk talking")
        # the kiosk's peer goes quiet without a word (its process frozen): its loop is held
        peer = station.runtime.calls._peer
        assert peer is not None
        peer._loop.call_soon_threadsafe(time.sleep, FROZEN_S)
        gone = time.monotonic()
        WebDriverWait(browser, 15, poll_frequency=0.1).until(
            lambda d: d.execute_script("return window.stationCall.ended") is True
        )
        noticed = time.monotonic() - gone
        assert noticed < 8.0, noticed  # DROP_S (5 s) and a tick
        status = browser.find_element(By.ID, "call-status")
        assert status.get_attribute("data-state") == "ended-dropped"
        assert "断开" in status.text, status.text  # said in words to the technician
        browser.save_screenshot(str(ARTIFACTS / "call-kiosk-gone.png"))
        rows = until(lambda: ended_in_audit(db), 10, "the call's end in the audit")
        ends = [(who, d) for a, who, d, _ in rows if a == "call_end"]
        assert len(ends) == 1 and ends[0][0] == "tech", ends
        end = ends[0][1]
        assert end["reason"] == "dropped" and end["connected"] is True
        assert "by" not in end  # the page's own report: the kiosk could not say anything
        assert 0.0 < end["duration_s"] < 30.0, end
        # the kiosk comes back to its senses, ends the call too and reports it: still one end
        until(lambda: station.frames[-1].call.phase != "talking", FROZEN_S + 10, "the kiosk's end")
        until(lambda: not station.runtime.journal.pending_events(), 10, "the outbox sent")
        time.sleep(1.0)
        assert [a for a, *_ in audit_rows(db)].count("call_end") == 1


def drawn_screen(station: Kiosk, grabbed: list[Any]) -> Callable[[Path], Path]:
    """The kiosk's screenshot without a window: the current frame's resident fields drawn as the
    screen shows them (the app's is Window.screenshot); what each picture was drawn from is kept."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(find_cjk_font()), 28)

    def grab(path: Path) -> Path:
        view = station.frames[-1].view
        grabbed.append(view)
        image = Image.new("RGB", (640, 360), "white")
        draw = ImageDraw.Draw(image)
        draw.text((20, 20), f"screen: {view.screen}", fill="black", font=font)
        draw.text((20, 80), view.masked_name, fill="black", font=font)
        draw.text((20, 140), view.masked_id_number, fill="black", font=font)
        image.save(path)
        return path

    return grab


def test_during_a_call_the_technician_sees_the_kiosks_screen_masked_as_on_the_kiosk(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    from flows.models import IdentityRead
    from flows.synthetic import DEMO_RESIDENT

    with call_rig(tmp_path, broker) as rig:
        url, station, browser = rig.url, rig.station, rig.browser
        rt = station.runtime
        grabbed: list[Any] = []
        rt.remote.screenshot = drawn_screen(station, grabbed)
        rt.post(Intent("start"))
        rt.post(IdentityRead("id_reader", DEMO_RESIDENT))  # the resident's card was read
        until(lambda: station.frames and station.frames[-1].view.screen == "choose", 10, "choose")
        login(browser, url, "tech")
        until(lambda: station_known(url, browser), 30, "the station on the console")
        rt.post(Intent("help"))
        browser.get(f"{url}/stations/{SITE}/{STATION}/call")
        browser.find_element(By.ID, "call-start").click()
        wait = WebDriverWait(browser, 40, poll_frequency=0.1)
        wait.until(lambda d: d.execute_script("return window.stationCall.state") == "talking")
        # the page shows the kiosk's screen, and a fresh one every few seconds
        wait.until(lambda d: d.execute_script("return window.stationCall.screens") >= 2)
        img = browser.find_element(By.ID, "call-screen")
        assert img.is_displayed()
        assert browser.execute_script("return arguments[0].naturalWidth", img) == 640
        browser.save_screenshot(str(ARTIFACTS / "call-guided-screen.png"))
        browser.find_element(By.ID, "call-hangup").click()
        wait.until(lambda d: d.execute_script("return window.stationCall.ended") is True)

        # every picture was taken from a screen that shows the resident only masked
        assert len(grabbed) >= 2 and {v.screen for v in grabbed} == {"choose"}
        for view in grabbed:
            shown = f"{view.masked_name} {view.masked_id_number}"
            assert DEMO_RESIDENT.id_number not in shown and DEMO_RESIDENT.name not in shown
            assert view.masked_id_number.endswith(DEMO_RESIDENT.id_number[-4:])
            assert "*" in view.masked_id_number and "*" in view.masked_name
        # the screenshots were the call's: named by it, sent by its technician
        shots = [r for r in rt.journal.commands(target="ui") if r.name == "screenshot"]
        assert shots and all(r.args.get("call") for r in shots)
        assert {r.state for r in shots} <= {"succeeded", "failed"}

        # after the call, the same command is refused in a session (no call to guide)
        stale = dict(shots[-1].args)
        rt.journal.add_command(
            "after-call", "screenshot", stale, target="ui", deadline=time.time() + 30
        )
        until(lambda: (c := rt.journal.command("after-call")) and c.state == "failed", 10, "no")
        record = rt.journal.command("after-call")
        assert record is not None and record.detail == {"reason": "in_session"}
