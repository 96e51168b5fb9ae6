"""Recording a call, with real peers: ``fleet console --call-recording`` in its own process, a
station's agent on a private mosquitto, and headless Chromium whose (fake) microphone plays a
440 Hz tone.

- The console's routes from a real browser: a script records the microphone with MediaRecorder
  (``audio/webm;codecs=opus``) and uploads the pieces; the stored file must be a WebM whose audio
  is that tone (decoded with PyAV); an admin plays it on ``/calls`` under the console's
  Content-Security-Policy, and the fetch is audited.
- A whole recorded call: the call page (``call.js``) calls the kiosk's runtime (its aiortc peer
  plays a 1000 Hz tone), the kiosk asks the resident, the resident agrees, the page mixes both
  voices and uploads them; the console's recording holds both tones.
"""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select

from fleet.console.store import AuditEntry, Store
from fleet.protocol.call import RECORD_CHUNK_S
from kiosk.shell.runtime import Intent
from sandbox.mosquitto import MosquittoBroker
from tests.fleet.console.test_call_browser import (
    KIOSK_HZ,
    STAFF_HZ,
    analyse,
    call_from_the_station_page,
    chromium_with_microphone,
    kiosk,
    login,
    station_known,
    tone_wav,
    until,
)
from tests.fleet.console.test_console_browser import ARTIFACTS, SITE, console_process, start_station

pytestmark = pytest.mark.slow

STATION = "st-rec"
HZ = 440.0
SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"

RECORD_JS = """
const [site, station, sdp, seconds, done] = arguments;
(async () => {
  const csrf = document.getElementById('call').dataset.csrf;
  const json = (path, body) => fetch(path, {method: 'POST', body: JSON.stringify(body),
    headers: {'X-CSRF-Token': csrf, 'Content-Type': 'application/json'}});
  const offered = await json(`/api/stations/${site}/${station}/calls`, {sdp});
  const id = (await offered.json()).id;
  const command = await (await fetch(`/api/commands/${id}`)).json();
  const consent = await json(`/api/calls/${id}/consent`, {consent: 'yes'});
  const stream = await navigator.mediaDevices.getUserMedia({audio: true});
  const recorder = new MediaRecorder(stream, {mimeType: 'audio/webm;codecs=opus'});
  const pieces = [];
  recorder.ondataavailable = (e) => { if (e.data.size) pieces.push(e.data); };
  recorder.start(1000);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  await new Promise((r) => { recorder.onstop = r; recorder.stop(); });
  const answers = [];
  for (const [seq, piece] of pieces.entries()) {
    const r = await fetch(`/api/calls/${id}/recording?seq=${seq}`,
      {method: 'POST', headers: {'X-CSRF-Token': csrf}, body: piece});
    answers.push([r.status, await r.json()]);
  }
  done({id, record: command.args.record, consent: consent.status, answers,
        type: pieces[0].type});
})().catch((e) => done({error: String(e)}));
"""

PLAY_JS = """
const [done] = arguments;
const audio = document.querySelector('audio');
audio.addEventListener('error', () => done({error: audio.error && audio.error.code}));
audio.addEventListener('timeupdate', () => {
  if (audio.currentTime > 0.5) done({played: audio.currentTime});
});
audio.play().catch((e) => done({error: String(e)}));
"""


def decoded(path: Path) -> tuple[np.ndarray, int]:
    """The recording's first channel as floats, and its rate (PyAV decodes the WebM/Opus)."""
    with av.open(str(path)) as container:
        chunks, rate = [], 48000
        for frame in container.decode(audio=0):
            rate = frame.sample_rate
            chunks.append(frame.to_ndarray().reshape(-1, frame.samples)[0])
    return np.concatenate(chunks).astype(np.float64), rate


def test_a_browser_recording_is_stored_as_the_tone_and_an_admin_plays_it(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{tmp_path / 'console.sqlite3'}"
    folder = tmp_path / "recordings"
    users = {"tech": "technician", "boss": "admin"}
    options = ("--call-recording", "--call-recordings-dir", str(folder))
    agent, _journal = start_station(tmp_path, broker, STATION)
    try:
        with (
            console_process(tmp_path, broker, db_url, users, *options) as url,
            chromium_with_microphone(tone_wav(tmp_path / "mic.wav", HZ)) as browser,
        ):
            login(browser, url, "tech")
            until(lambda: station_known(url, browser, STATION), 30, "the station on the console")
            browser.get(f"{url}/stations/{SITE}/{STATION}/call")
            section = browser.find_element(By.ID, "call")
            assert section.get_attribute("data-recording") == "on"  # --call-recording reached it
            got: dict[str, Any] = browser.execute_async_script(RECORD_JS, SITE, STATION, SDP, 3.5)
            assert "error" not in got, got
            assert got["record"] is True and got["consent"] == 200
            assert got["type"].startswith("audio/webm")
            assert len(got["answers"]) >= 3
            assert all(status == 200 and a["appended"] for status, a in got["answers"])
            call = got["id"]
            path = folder / f"{call}.webm"
            assert path.stat().st_size == got["answers"][-1][1]["bytes"]
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            samples, rate = decoded(path)
            assert len(samples) >= rate * 2.5  # the pieces make one playable recording
            peak, level, share = analyse(samples[rate // 2 :], rate)
            print(f"recorded {peak:.1f} Hz at {level:.1f} dBFS ({share:.2f} of the energy)")
            assert abs(peak - HZ) < 5 and share > 0.8 and level > -40

            browser.delete_all_cookies()
            login(browser, url, "boss")
            browser.get(f"{url}/calls")
            assert browser.find_element(By.CSS_SELECTOR, f"#call-{call} audio")
            played = browser.execute_async_script(PLAY_JS)
            assert "played" in played, played  # media-src 'self' lets the page play it
            browser.save_screenshot(str(ARTIFACTS / "calls-recording.png"))
    finally:
        agent.stop()
    store = Store(db_url)
    try:
        with store.session() as db:
            rows = db.scalars(select(AuditEntry).where(AuditEntry.action == "recording_fetched"))
            fetched = [(r.actor, r.detail["id"]) for r in rows]
        assert fetched and set(fetched) == {("boss", call)}  # each fetch audited
    finally:
        store.close()


def band_share(samples: np.ndarray, rate: int, hz: float) -> float:
    """The share of the energy within 3% of ``hz``."""
    x = samples - samples.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return float(spectrum[np.abs(freqs - hz) <= 0.03 * hz].sum() / spectrum.sum())


def test_a_recorded_call_holds_both_voices_after_the_residents_yes(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{tmp_path / 'console.sqlite3'}"
    folder = tmp_path / "recordings"
    options = (
        "--call-recording",
        "--call-recording-days",
        "7",
        "--call-recordings-dir",
        str(folder),
    )
    with (
        console_process(tmp_path, broker, db_url, {"tech": "technician"}, *options) as url,
        kiosk(tmp_path, broker) as (station, _agent),
        chromium_with_microphone(tone_wav(tmp_path / "staff-mic.wav", STAFF_HZ)) as browser,
    ):
        wait = call_from_the_station_page(station, browser, url)
        until(lambda: station.frames[-1].call.consent == "ask", 10, "the kiosk's question")
        assert station.frames[-1].call.record_days == 7  # the console's retention, told
        assert not folder.exists() or not list(folder.glob("*.webm"))  # nothing before a yes
        station.runtime.post(Intent("call.consent_yes"))  # the resident agrees
        wait.until(
            lambda d: d.find_element(By.ID, "call-recording").get_attribute("data-state") == "yes"
        )
        time.sleep(RECORD_CHUNK_S + 2)  # a piece on its own and the last one with the stop
        browser.save_screenshot(str(ARTIFACTS / "call-recording.png"))
        browser.find_element(By.ID, "call-hangup").click()
        wait.until(lambda d: d.execute_script("return window.stationCall.ended") is True)
        call = browser.execute_script("return window.stationCall.id")
        pieces = browser.execute_script("return window.stationCall.pieces")
    assert pieces >= 2
    meta = json.loads((folder / f"{call}.json").read_text())
    assert meta["pieces"] == pieces
    samples, rate = decoded(folder / f"{call}.webm")
    assert len(samples) >= rate * RECORD_CHUNK_S
    staff, resident = band_share(samples, rate, STAFF_HZ), band_share(samples, rate, KIOSK_HZ)
    rest = max(1.0 - staff - resident, 1e-6)
    shares = f"{staff:.3f} at {STAFF_HZ:.0f} Hz, {resident:.3f} at {KIOSK_HZ:.0f} Hz"
    print(f"recording's energy: {shares}, {rest:.5f} elsewhere")
    # both voices, mixed: each tone stands far above everything else. The staff member's is the
    # weaker: Chromium's noise suppression on the microphone takes a steady tone for noise
    # (a share of 0.03 is -15 dB under the station's; absent, it would be under 1e-5)
    assert staff > 0.005 and resident > 0.5
    assert staff > 10 * rest and resident > 10 * rest
    store = Store(db_url)
    try:
        with store.session() as db:
            rows = db.scalars(select(AuditEntry).where(AuditEntry.action == "call_consent"))
            assert [(r.actor, r.detail) for r in rows] == [("tech", {"id": call, "consent": "yes"})]
    finally:
        store.close()
