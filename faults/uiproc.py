"""The kiosk UI process without a window, for the fault suite: ``python -m faults.uiproc``.

It builds the station exactly as ``kiosk run`` does (:func:`kiosk.station.create_station` from a
TOML configuration: real drivers, the real journal, the disk guard, the catalog watch), starts the
runtime and pumps it on its main thread, as the Kivy clock would. Only the screen is missing: a
JSON-lines control port stands in for the touches. Because it is a process of its own, the fault
suite can ``kill -9`` it, run it under ``faketime`` and sample its memory, descriptors and threads.

Requests (one JSON object a line), each answered with one line:

- ``{"op": "status"}`` → the state, the transaction id, preview and print results, health;
- ``{"op": "do", "name": INTENT, "arg": ..., "until": {...}, "timeout": S}`` → post the intent
  (optional), then answer once the status matches ``until`` (``state``: a list of states,
  ``preview_ready``: bool) or the timeout passed (``"timeout": true`` in the answer);
- ``{"op": "objects"}`` → live Python objects by type (a leak hunt's first look);
- ``{"op": "stop"}`` → stop cleanly and exit 0.

It prints ``ready PORT`` on standard output once the runtime has started.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import logging
import queue
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.config import load_config
from kiosk.shell.runtime import Intent, Runtime
from kiosk.station import create_station, setup_logging

PUMP_S = 0.005
HEARTBEAT_S = 1.0


@dataclass
class Request:
    body: dict[str, Any]
    reply: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    deadline: float = 0.0


def status(runtime: Runtime) -> dict[str, Any]:
    view = runtime.session.view
    return {
        "state": runtime.session.state,
        "txn_id": runtime.session.txn_id,
        "preview_ready": view.preview_ready,
        "print_ok": view.print_ok,
        "print_error_key": view.print_error_key,
        "unavailable": runtime.session.unavailable(),
        "health": {kind: [h.state.value, list(h.reasons)] for kind, h in runtime.health.items()},
    }


def objects() -> dict[str, Any]:
    """Live Python objects by type (the 40 most numerous), to tell a leak from a filling cache."""
    gc.collect()
    counts = collections.Counter(type(o).__name__ for o in gc.get_objects())
    return {"objects": dict(counts.most_common(40)), "total": sum(counts.values())}


def matches(st: dict[str, Any], until: dict[str, Any]) -> bool:
    states = until.get("state")
    if states is not None and st["state"] not in states:
        return False
    return not ("preview_ready" in until and st["preview_ready"] != until["preview_ready"])


def serve_control(server: socket.socket, requests: queue.Queue[Request]) -> None:
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        threading.Thread(target=_connection, args=(conn, requests), daemon=True).start()


def _connection(conn: socket.socket, requests: queue.Queue[Request]) -> None:
    with conn, conn.makefile("rwb") as stream:
        for line in stream:
            if not line.strip():
                continue
            request = Request(json.loads(line))
            requests.put(request)
            answer = request.reply.get()
            stream.write(json.dumps(answer).encode() + b"\n")
            stream.flush()


def run(args: argparse.Namespace) -> int:
    config = load_config(Path(args.config))
    setup_logging(config.state_dir)
    station = create_station(config)
    runtime = station.runtime
    if args.print_deadline:
        runtime._print_deadline_s = args.print_deadline
    if args.health_interval:
        runtime._health_interval_s = args.health_interval
    runtime.start()

    requests: queue.Queue[Request] = queue.Queue()
    server = socket.create_server(("127.0.0.1", args.control_port))
    port = int(server.getsockname()[1])
    threading.Thread(target=serve_control, args=(server, requests), daemon=True).start()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    print(f"ready {port}", flush=True)

    waiting: list[Request] = []
    last_beat = 0.0
    try:
        while not stopping.is_set():
            runtime.pump()
            now = time.monotonic()
            if now - last_beat >= HEARTBEAT_S:
                try:
                    runtime.heartbeat()
                except Exception:
                    logging.getLogger("faults.uiproc").exception("heartbeat failed")
                last_beat = now
            while True:
                try:
                    request = requests.get_nowait()
                except queue.Empty:
                    break
                op = request.body.get("op")
                if op == "stop":
                    stopping.set()
                    request.reply.put({"ok": True})
                    continue
                if op == "objects":
                    request.reply.put(objects())
                    continue
                if op == "do" and request.body.get("name"):
                    arg = request.body.get("arg")
                    runtime.post(
                        Intent(request.body["name"], tuple(arg) if isinstance(arg, list) else arg)
                    )
                    runtime.pump()
                request.deadline = now + float(request.body.get("timeout", 0.0))
                waiting.append(request)
            if waiting:
                st = status(runtime)
                for request in list(waiting):
                    until = request.body.get("until") or {}
                    timed_out = time.monotonic() >= request.deadline
                    if matches(st, until) or timed_out:
                        request.reply.put({**st, "timeout": timed_out and not matches(st, until)})
                        waiting.remove(request)
            time.sleep(PUMP_S)
    finally:
        server.close()
        runtime.stop()
        runtime.journal.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the kiosk runtime without a window")
    parser.add_argument("--config", required=True)
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--print-deadline", type=float, default=0.0)
    parser.add_argument("--health-interval", type=float, default=0.0)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
