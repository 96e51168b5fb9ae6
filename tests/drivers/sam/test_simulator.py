"""The simulator's own surface: the JSON-lines control port and ``python -m`` in a process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import serial

from drivers.sam import protocol as p
from drivers.sam.reader import SamReader
from drivers.sam.simulator import SamSimulator
from flows.models import CardRemoved, CardType, IdentityRead, ReaderConnected, ReaderDisconnected
from flows.synthetic import DEMO_HMT

REPO = Path(__file__).resolve().parents[3]


def ask(port: int, *messages: dict[str, object]) -> list[dict[str, object]]:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as conn:
        stream = conn.makefile("rwb")
        answers = []
        for message in messages:
            stream.write(json.dumps(message).encode() + b"\n")
            stream.flush()
            answers.append(json.loads(stream.readline()))
        return answers


def test_control_port_places_and_removes_cards(sim: SamSimulator) -> None:
    port = sim.serve_control()
    inserted, status, removed = ask(
        port, {"cmd": "insert", "card": "demo"}, {"cmd": "status"}, {"cmd": "remove"}
    )
    assert inserted["ok"] and inserted["card"] is True
    assert status == {
        "ok": True,
        "port": sim.port,
        "link": str(sim.link_path),
        "plugged": True,
        "card": True,
    }
    assert removed["ok"] and removed["card"] is False and not sim.card_present


def test_control_port_refuses_what_it_does_not_know(sim: SamSimulator) -> None:
    port = sim.serve_control()
    unknown, bad_card, bad_fault = ask(
        port,
        {"cmd": "dance"},
        {"cmd": "insert", "card": "nobody"},
        {"cmd": "fault", "fault": "fire"},
    )
    assert not unknown["ok"] and not bad_card["ok"] and not bad_fault["ok"]
    with socket.create_connection(("127.0.0.1", port), timeout=3) as conn:
        conn.sendall(b"not json\n")
        assert json.loads(conn.makefile().readline())["ok"] is False


def test_two_control_clients_at_once(sim: SamSimulator) -> None:
    port = sim.serve_control()
    with socket.create_connection(("127.0.0.1", port), timeout=3):  # an idle client
        assert ask(port, {"cmd": "status"})[0]["ok"]


def test_control_port_unplugs_and_replugs(
    sim: SamSimulator, reader: SamReader, events, wait_until
) -> None:
    port = sim.serve_control()
    events.wait_for(ReaderConnected)
    assert ask(port, {"cmd": "unplug"})[0]["plugged"] is False
    events.wait_for(ReaderDisconnected)
    assert sim.link_path is not None and not sim.link_path.exists()
    assert ask(port, {"cmd": "replug"})[0]["plugged"] is True
    events.wait_for(ReaderConnected)
    ask(port, {"cmd": "insert", "card": "hmt"})
    assert events.wait_for(IdentityRead).identity.card_type is CardType.HMT_PERMIT


def test_simulator_answers_unknown_commands_and_a_bad_checksum(sim: SamSimulator) -> None:
    with serial.Serial(sim.port, 115200, timeout=1, write_timeout=1) as port:
        port.write(p.encode_command((0x7E, 0x01)))
        decoder = p.FrameDecoder()
        decoder.feed(port.read(11))
        frame = decoder.next_frame()
        assert frame is not None and frame.status == p.SamCommandRejected.code
        bad = bytearray(p.encode_command(p.FIND_CARD))
        bad[-1] ^= 0x01
        port.write(bytes(bad))
        decoder.feed(port.read(11))
        frame = decoder.next_frame()
        assert frame is not None and frame.status == p.SamChecksumRejected.code
        port.write(p.encode_command(p.SAM_ID))
        decoder.feed(port.read(27))
        frame = decoder.next_frame()
        assert frame is not None and frame.status == p.SW_OK and len(frame.data) == 16


def test_runs_as_its_own_process(
    tmp_path: Path, make_reader: Callable[..., SamReader], events
) -> None:
    link = tmp_path / "usb-SAM-if00"
    proc = subprocess.Popen(
        [sys.executable, "-m", "drivers.sam.simulator", "--link", str(link), "--control-port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["link"] == str(link) and ready["port"].startswith("/dev/pts/")
        assert link.resolve() == Path(ready["port"])
        make_reader(str(link))
        events.wait_for(ReaderConnected)
        assert ask(ready["control"], {"cmd": "insert", "card": "hmt"})[0]["card"] is True
        read = events.wait_for(IdentityRead)
        assert read.identity.id_number == DEMO_HMT.id_number
        ask(ready["control"], {"cmd": "remove"})
        events.wait_for(CardRemoved)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert not link.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
