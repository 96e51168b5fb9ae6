// The call page (fleet/console/calls.py): the technician's end of a WebRTC call to a station.
// The console relays the offer and the answer; media go browser <-> kiosk. The call's life is
// on the data channel "call" (fleet/protocol/call.py): "ping" every second, "bye" to end, and
// five seconds of silence is a dropped call, ended on both sides.
// Video: the technician's camera when "send my camera" is ticked and one exists (else voice only,
// and the page still receives the station's camera where it has one).
// Recording, where the console records calls (data-recording="on"): nothing until the kiosk says
// "consent:yes" on the channel (the resident pressed "record"); then both voices, mixed, are
// recorded and uploaded in pieces of a few seconds (/api/calls/{id}/recording?seq=N). "consent:no"
// and a question never answered record nothing.
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
  const call = { state: "idle", id: null, remote: null, reason: null, video: false };
  window.stationCall = call; // for the page's tests
  let pc = null, channel = null, mic = null, heard = 0, talkingSince = 0, ticker = null;
  const cameraBox = document.getElementById("call-camera");
  const video = document.getElementById("call-video");
  const videoBox = document.getElementById("call-video-box");
  const self = document.getElementById("call-self");
  const selfBox = document.getElementById("call-self-box");
  const recordingLine = document.getElementById("call-recording");
  const RECORD_MS = Number(root.dataset.recordChunk) || 5000;
  let recorder = null, recordCtx = null, uploads = Promise.resolve(), pieces = 0;
  call.consent = ""; // "", "yes", "no": what the kiosk said (for the page's tests)
  call.pieces = 0; // recording pieces the console has stored
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

  function recordingState(state) {
    if (root.dataset.recording !== "on") return;
    recordingLine.hidden = false;
    recordingLine.dataset.state = state;
    const key = "msgRecording" + state.charAt(0).toUpperCase() + state.slice(1);
    recordingLine.textContent = root.dataset[key] || state;
  }

  // The kiosk's answer to the recording's question, relayed to the console; after a yes, both
  // voices are mixed and recorded, each piece uploaded in order.
  async function consent(answer) {
    if (root.dataset.recording !== "on" || call.consent || !call.id) return;
    call.consent = answer;
    recordingState(answer);
    const [code] = await post(`/api/calls/${call.id}/consent`, { consent: answer });
    if (answer !== "yes" || code !== 200 || recorder || !call.remote || !mic) return;
    recordCtx = new AudioContext();
    await recordCtx.resume();
    const mixed = recordCtx.createMediaStreamDestination();
    for (const stream of [new MediaStream(mic.getAudioTracks()), call.remote]) {
      recordCtx.createMediaStreamSource(stream).connect(mixed);
    }
    recorder = new MediaRecorder(mixed.stream, { mimeType: "audio/webm;codecs=opus" });
    recorder.ondataavailable = (event) => {
      if (!event.data || !event.data.size) return;
      const seq = pieces++;
      uploads = uploads.then(() => upload(seq, event.data));
    };
    recorder.start(RECORD_MS);
  }

  async function upload(seq, blob) {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      try {
        const response = await fetch(`/api/calls/${call.id}/recording?seq=${seq}`, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "audio/webm", "X-CSRF-Token": csrf },
          body: blob,
        });
        if (response.ok) { call.pieces += 1; return; }
        if (response.status < 500) return; // refused: said by the console, not retried
      } catch (err) { /* the network: try again */ }
      await new Promise((r) => setTimeout(r, 1000 * (attempt + 1)));
    }
  }

  async function stopRecording() {
    if (!recorder) return;
    if (recorder.state !== "inactive") {
      const stopped = new Promise((r) => recorder.addEventListener("stop", r, { once: true }));
      recorder.stop(); // the last piece comes with the stop
      await stopped;
    }
    await uploads;
    if (recordCtx) recordCtx.close();
    recorder = null;
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
    const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
    mic = null;
    if (cameraBox && cameraBox.checked) {
      try {
        mic = await navigator.mediaDevices.getUserMedia({
          audio: audio, video: { width: { ideal: 640 }, height: { ideal: 480 } },
        });
      } catch (err) { /* no camera, or refused: a call by voice */ }
    }
    try {
      if (!mic) mic = await navigator.mediaDevices.getUserMedia({ audio: audio });
    } catch (err) {
      return finish("failed", false);
    }
    pc = new RTCPeerConnection({ iceServers: JSON.parse(root.dataset.ice || "[]") });
    mic.getTracks().forEach((track) => pc.addTrack(track, mic));
    if (mic.getVideoTracks().length) {
      self.srcObject = new MediaStream(mic.getVideoTracks());
      selfBox.hidden = false;
    } else {
      pc.addTransceiver("video", { direction: "recvonly" }); // the station's camera, if any
    }
    channel = pc.createDataChannel("call");
    channel.onopen = connected;
    channel.onmessage = (event) => {
      heard = Date.now();
      if (event.data === "bye") finish("resident", false);
      else if (event.data === "consent:yes") consent("yes");
      else if (event.data === "consent:no") consent("no");
    };
    channel.onclose = () => finish("dropped", false);
    pc.ontrack = (event) => {
      if (event.track.kind === "video") {
        video.srcObject = new MediaStream([event.track]);
        videoBox.hidden = false;
        call.video = true;
        return;
      }
      call.remote = new MediaStream([event.track]);
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
    recordingState("waiting");
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
    await stopRecording(); // before the connection closes: the last words are in it
    if (pc) pc.close();
    if (mic) mic.getTracks().forEach((t) => t.stop());
    if (recordingLine.dataset.state === "waiting") recordingState("no");
    hangupButton.disabled = true;
    startButton.disabled = false;
    if (call.id) await post(`/api/calls/${call.id}/end`, { reason: reason });
    call.ended = true;
  }

  startButton.addEventListener("click", start);
  hangupButton.addEventListener("click", () => finish("staff", true));
})();
