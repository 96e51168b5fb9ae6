// The call page (fleet/console/calls.py): the technician's end of a WebRTC call to a station.
// The console relays the offer and the answer; media go browser <-> kiosk. The call's life is
// on the data channel "call" (fleet/protocol/call.py): "ping" every second, "bye" to end, and
// five seconds of silence is a dropped call, ended on both sides.
"use strict";
(function () {
  const root = document.getElementById("call");
  if (!root) return;
  const PING_MS = 1000;
  const DROP_MS = 5000;
  const station = root.dataset.station;
  const csrf = root.dataset.csrf;
  const status = document.getElementById("call-status");
  const timer = document.getElementById("call-timer");
  const startButton = document.getElementById("call-start");
  const hangupButton = document.getElementById("call-hangup");
  const remote = document.getElementById("call-remote");
  const call = { state: "idle", id: null, remote: null, reason: null };
  window.stationCall = call; // for the page's tests
  let pc = null, channel = null, mic = null, heard = 0, talkingSince = 0, ticker = null;
  const SCREEN_MS = Number(root.dataset.screenEvery) || 3000;
  const screenBox = document.getElementById("call-screen-box");
  const screenImg = document.getElementById("call-screen");
  const screenAt = document.getElementById("call-screen-at");
  let screenTimer = null, screenBusy = false;
  call.screens = 0; // pictures of the kiosk's screen shown so far (for the page's tests)

  // The kiosk's current screen, every few seconds while the call is up: a screenshot command
  // naming the call, polled like any command, one at a time.
  async function refreshScreen() {
    if (screenBusy || call.state !== "talking") return;
    screenBusy = true;
    try {
      const [code, sent] = await post(`/api/calls/${call.id}/screen`);
      if (code !== 202) return;
      const deadline = Date.now() + 15000;
      while (call.state === "talking" && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 300));
        const response = await fetch(`/api/commands/${sent.id}`, { credentials: "same-origin" });
        const command = await response.json();
        if (command.status === "succeeded") {
          screenImg.src = `/stations/${station}/screenshots/${sent.id}.png`;
          await screenImg.decode().catch(() => null);
          screenBox.hidden = false;
          screenAt.textContent = new Date().toLocaleTimeString();
          call.screens += 1;
          return;
        }
        if (command.status === "failed" || command.status === "timed_out") return;
      }
    } finally {
      screenBusy = false;
    }
  }

  function show(state, reason) {
    const key = "msg" + state.replace(/(^|[-_])(\w)/g, (m, s, c) => c.toUpperCase());
    call.state = state;
    status.dataset.state = state;
    status.textContent = root.dataset[key] || state;
    if (reason) call.reason = reason;
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try { data = await response.json(); } catch (e) { /* no body */ }
    return [response.status, data];
  }

  function gathered(peer) {
    if (peer.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { if (peer.iceGatheringState === "complete") resolve(); };
      peer.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 5000); // what was gathered by then goes
    });
  }

  async function start() {
    startButton.disabled = true;
    call.reason = null;
    show("microphone");
    try {
      mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (err) {
      return finish("failed", false);
    }
    pc = new RTCPeerConnection({ iceServers: JSON.parse(root.dataset.ice || "[]") });
    mic.getTracks().forEach((track) => pc.addTrack(track, mic));
    channel = pc.createDataChannel("call");
    channel.onopen = connected;
    channel.onmessage = (event) => {
      heard = Date.now();
      if (event.data === "bye") finish("resident", false);
    };
    channel.onclose = () => finish("dropped", false);
    pc.ontrack = (event) => {
      call.remote = event.streams[0] || new MediaStream([event.track]);
      remote.srcObject = call.remote;
    };
    hangupButton.disabled = false;
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    show("ringing");
    const [code, sent] = await post(`/api/stations/${station}/calls`, { sdp: pc.localDescription.sdp });
    if (code !== 202) return finish("failed", false);
    call.id = sent.id;
    while (call.state === "ringing") {
      await new Promise((r) => setTimeout(r, 300));
      const response = await fetch(`/api/commands/${call.id}`, { credentials: "same-origin" });
      const command = await response.json();
      if (command.status === "succeeded" && command.detail && command.detail.sdp) {
        show("connecting");
        await pc.setRemoteDescription({ type: "answer", sdp: command.detail.sdp });
      } else if (command.status === "failed" || command.status === "timed_out") {
        const why = (command.detail && command.detail.reason) || command.status;
        show(why === "no_help_request" ? "no-help-request" : "refused", why);
        return finish("failed", false, true);
      }
    }
  }

  function connected() {
    heard = Date.now();
    talkingSince = Date.now();
    show("talking");
    post(`/api/calls/${call.id}/connected`).then(refreshScreen);
    screenTimer = setInterval(refreshScreen, SCREEN_MS);
    ticker = setInterval(() => {
      if (channel && channel.readyState === "open") channel.send("ping");
      if (Date.now() - heard > DROP_MS) finish("dropped", false);
      const s = Math.floor((Date.now() - talkingSince) / 1000);
      timer.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
    }, PING_MS);
  }

  async function finish(reason, byStaff, keepMessage) {
    if (call.state.startsWith("ended") || call.state === "idle") return;
    if (!keepMessage) show("ended-" + reason, reason);
    else call.state = "ended-" + reason;
    call.reason = call.reason || reason;
    if (ticker) clearInterval(ticker);
    if (screenTimer) clearInterval(screenTimer);
    if (byStaff && channel && channel.readyState === "open") {
      channel.send("bye");
      await new Promise((r) => setTimeout(r, 100));
    }
    if (pc) pc.close();
    if (mic) mic.getTracks().forEach((t) => t.stop());
    hangupButton.disabled = true;
    startButton.disabled = false;
    if (call.id) await post(`/api/calls/${call.id}/end`, { reason: reason });
    call.ended = true;
  }

  startButton.addEventListener("click", start);
  hangupButton.addEventListener("click", () => finish("staff", true));
})();
