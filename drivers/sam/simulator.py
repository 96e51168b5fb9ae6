"""A GA 467 SAM reader simulator on a pseudo-terminal: a real peer for the serial driver.

It answers real frames (see :mod:`drivers.sam.protocol`) on the master side of a pty; the driver
opens the slave device (``.port``, e.g. ``/dev/pts/5``) like a USB-serial reader. Tests, and a
small JSON-lines control port for other processes, place and remove synthetic cards and inject
faults: bad checksum, garbage before a frame, partial frames, silence (once, or muted for good),
any SW3 status, and unplugging: the pty goes away, and with ``link_path`` a stable symlink, like
``/dev/serial/by-id/...``, follows the new pty on replug.

A :class:`drivers.sam.modules.ModuleProfile` makes it play another kind of module: one that
lacks an optional command (answering ``21``, ``91`` or nothing), runs at 9600 baud (the rate the
driver set on the pty is checked; at another rate nothing is understood, as on a real UART, and
a paced module takes the wire's time to answer), or stays silent on *find card* with no card.

Every operation on the pty's descriptors happens on the serving thread, so a descriptor closed
by an unplug can never be reused under a read in flight.

Run on its own: ``python -m drivers.sam.simulator --link PATH --control-port N``; it prints one
JSON line ``{"port": ..., "link": ..., "control": N}`` when ready and runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import select
import socket
import sys
import termios
import threading
from pathlib import Path
from typing import Any, TypeVar

from drivers.sam import protocol as p
from drivers.sam.cards import encode_appended_address, encode_base_info
from drivers.sam.modules import PROFILES, STANDARD, ModuleProfile, command_name
from drivers.simtools import PtyPlug, close_pty, close_server, open_pty, run_until_signal
from flows.models import Identity
from flows.synthetic import DEMO_RESIDENT, SYNTHETIC_CARDS

SAM_ID = bytes.fromhex("0501000000000000a5a5a5a5a5a5a5a5")  # an invented module number
FAULTS = ("bad_checksum", "garbage", "partial", "silence")
GARBAGE = b"\x00\x13\xaa\xaa\x96junk\xaa\xaa"  # looks like the start of a preamble, is not


class SamSimulator(PtyPlug):
    """A SAM module with one card slot, speaking on a pty."""

    def __init__(
        self,
        link_path: Path | str | None = None,
        *,
        halt_after_read: bool = False,
        profile: ModuleProfile = STANDARD,
    ):
        self.link_path = Path(link_path) if link_path is not None else None
        self.profile = profile
        self.baud = profile.baud  # the module's UART rate now (60 xx changes it)
        self.halt_after_read = halt_after_read  # like modules that stop finding a card once read
        self.port = ""
        self.frames_seen: list[bytes] = []  # bodies of the commands received, for tests
        self._lock = threading.Lock()
        self._card: bytes | None = None
        self._address: bytes | None = None
        self._found = False
        self._selected = False
        self._halted = False
        # one-shot, in order; each for any command (None) or one command
        self._faults: list[tuple[tuple[int, int] | None, str]] = []
        self._status_next: list[tuple[tuple[int, int] | None, int]] = []
        self._muted = False
        self._master = -1
        self._slave = -1
        self._requests: queue.Queue[tuple[str, threading.Event]] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._control: socket.socket | None = None

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._open_pty()
        self._thread = threading.Thread(target=self._serve, name="sam-sim", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        close_server(self._control)
        self._control = None
        if self._thread is not None:
            self._thread.join(timeout=3)
            self._thread = None
        self._close_pty()

    def _open_pty(self) -> None:
        self._master, self._slave, self.port = open_pty(self.link_path)

    def _close_pty(self) -> None:
        close_pty(self._master, self._slave, self.link_path)
        self._master = self._slave = -1
        self.port = ""

    # --- what a person or a test does ----------------------------------------------------------

    def insert(self, card: Identity | bytes = DEMO_RESIDENT, *, appended_address: str = "") -> None:
        """Place a card: an identity, or a raw READ_BASE payload (to forge broken cards)."""
        payload = card if isinstance(card, bytes) else encode_base_info(card)
        address = encode_appended_address(appended_address) if appended_address else None
        with self._lock:
            self._card, self._address = payload, address
            self._found = self._selected = self._halted = False

    def remove(self) -> None:
        with self._lock:
            self._card = self._address = None
            self._found = self._selected = self._halted = False

    @property
    def card_present(self) -> bool:
        return self._card is not None

    def inject(self, fault: str, command: tuple[int, int] | None = None) -> None:
        """Spoil the next answer (or the next answer to ``command``) once: ``bad_checksum``,
        ``garbage`` (junk before the frame), ``partial`` (half a frame), ``silence``."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        with self._lock:
            self._faults.append((command, fault))

    def answer_next(self, sw3: int, command: tuple[int, int] | None = None) -> None:
        """The next command (or the next ``command``) is answered with status ``sw3``."""
        with self._lock:
            self._status_next.append((command, sw3))

    def mute(self, on: bool = True) -> None:
        """A module that no longer answers anything (powered off behind a live adapter)."""
        with self._lock:
            self._muted = on

    def commands(self) -> list[tuple[int, int]]:
        """(CMD, Para) of every command received so far."""
        with self._lock:
            return [p.Frame(body).command for body in self.frames_seen]

    # --- the wire ------------------------------------------------------------------------------

    def _serve(self) -> None:
        decoder = p.FrameDecoder()
        while not self._stop.is_set():
            self._do_requests()
            master = self._master
            if master < 0:
                self._stop.wait(0.02)
                continue
            try:
                ready, _, _ = select.select([master], [], [], 0.05)
                data = os.read(master, 4096) if ready else b""
            except (OSError, ValueError):
                self._stop.wait(0.02)
                continue
            if not data:
                continue
            if not self._rate_matches(master):  # garbage to the module's UART: no frame
                decoder = p.FrameDecoder()
                continue
            decoder.feed(data)
            while True:
                try:
                    frame = decoder.next_frame()
                except p.FrameError:
                    self.write_pty(p.encode_response(p.SamChecksumRejected.code))
                    continue
                if frame is None:
                    break
                with self._lock:
                    self.frames_seen.append(frame.body)
                self._answer(frame.command)
        self._do_requests()

    def _do_requests(self) -> None:
        while True:
            try:
                what, done = self._requests.get_nowait()
            except queue.Empty:
                return
            if what == "unplug" and self._master >= 0:
                self._close_pty()
            elif what == "replug" and self._master < 0:
                self._open_pty()
            done.set()

    def _rate_matches(self, master: int) -> bool:
        """Is the line set to the module's rate? (A pty shares its termios with the driver.)"""
        try:
            speed = termios.tcgetattr(master)[4]
        except termios.error:
            return True
        return bool(speed == getattr(termios, f"B{self.baud}"))

    def _answer(self, command: tuple[int, int]) -> None:
        with self._lock:
            if self._muted:
                return
            fault = _take(self._faults, command)
            forced = _take(self._status_next, command)
            response = self._respond(command) if forced is None else p.encode_response(forced)
            new_baud = self._new_baud(command) if forced is None else 0
        if fault == "silence" or response is None:
            return
        if fault == "bad_checksum":
            response = response[:-1] + bytes([response[-1] ^ 0xFF])
        elif fault == "garbage":
            response = GARBAGE + response
        elif fault == "partial":
            response = response[: len(response) // 2]
        if self.profile.paced:  # ten bits a byte on the line (start, eight data, stop)
            self._stop.wait(len(response) * 10 / self.baud)
        self.write_pty(response, deadline_s=1.0 + len(response) * 10 / self.baud)
        if new_baud:
            self.baud = new_baud  # the answer went at the old rate; the next command comes at this

    def _new_baud(self, command: tuple[int, int]) -> int:
        if command[0] != p.SET_BAUD or "set_baud" in self.profile.lacks:
            return 0
        rates = {code: baud for baud, code in p.BAUD_CODES.items()}
        return rates.get(command[1], 0)

    def _respond(self, command: tuple[int, int]) -> bytes | None:
        """The answer to ``command``, None for silence."""
        ok = p.SW_OK
        lacking = self.profile.lacks.get(command_name(command))
        if lacking == "silence":
            return None
        if lacking is not None:
            return p.encode_response(int(lacking, 16))
        if command in (p.RESET_SAM, p.SAM_STATUS):
            return p.encode_response(ok)
        if command == p.SAM_ID:
            return p.encode_response(ok, SAM_ID)
        if command[0] == p.SET_BAUD:
            return p.encode_response(ok if command[1] in p.BAUD_CODES.values() else 0x21)
        if command == p.FIND_CARD:
            if self._card is None or self._halted:
                if self.profile.silent_when_empty:
                    return None
                return p.encode_response(p.CardNotFound.code)
            self._found = True
            return p.encode_response(p.SW_CARD_FOUND, bytes(4))
        if command == p.SELECT_CARD:
            if self._card is None:
                return p.encode_response(p.CardSelectFailed.code)
            if not self._found:
                return p.encode_response(p.CardNotFoundYet.code)
            self._selected = True
            return p.encode_response(ok, bytes(8))
        if command in (p.READ_BASE, p.READ_ADDRESS):
            if self._card is None or not self._selected:
                return p.encode_response(p.CardReadFailed.code)
            if command == p.READ_ADDRESS:
                if self._address is None:
                    return p.encode_response(p.NoSuchContent.code)
                return p.encode_response(ok, self._address)
            self._halted = self.halt_after_read
            return p.encode_response(ok, self._card)
        return p.encode_response(p.SamCommandRejected.code)

    # --- control port (JSON lines over TCP on loopback) ----------------------------------------

    def serve_control(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen for JSON-lines commands; returns the port (0 picks a free one)."""
        server = socket.create_server((host, port))
        self._control = server
        threading.Thread(
            target=self._control_loop, args=(server,), name="sam-sim-control", daemon=True
        ).start()
        return int(server.getsockname()[1])

    def _control_loop(self, server: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(
                target=self._control_conn, args=(conn,), name="sam-sim-conn", daemon=True
            ).start()

    def _control_conn(self, conn: socket.socket) -> None:
        conn.settimeout(30.0)
        with conn, contextlib.suppress(OSError), conn.makefile("rwb") as stream:
            for line in stream:
                answer = self.control(line)
                stream.write(json.dumps(answer, ensure_ascii=False).encode() + b"\n")
                stream.flush()

    def control(self, line: bytes | str) -> dict[str, Any]:
        """One control command, as the TCP port receives it; returns the JSON answer."""
        try:
            message = json.loads(line)
            cmd = message["cmd"]
            if cmd == "insert":
                card = SYNTHETIC_CARDS[str(message.get("card", "demo"))]
                self.insert(card, appended_address=str(message.get("appended_address", "")))
            elif cmd == "remove":
                self.remove()
            elif cmd == "fault":
                self.inject(str(message["fault"]))
            elif cmd == "status_next":
                self.answer_next(int(message["sw3"]))
            elif cmd == "mute":
                self.mute(bool(message.get("on", True)))
            elif cmd == "unplug":
                self.unplug()
            elif cmd == "replug":
                self.replug()
            elif cmd != "status":
                return {"ok": False, "error": f"unknown command {cmd!r}"}
        except (ValueError, KeyError, TypeError, TimeoutError) as err:
            return {"ok": False, "error": f"{type(err).__name__}: {err}"}
        return {
            "ok": True,
            "port": self.port,
            "link": str(self.link_path or ""),
            "plugged": self.plugged,
            "card": self.card_present,
        }


T = TypeVar("T")


def _take(pending: list[tuple[tuple[int, int] | None, T]], command: tuple[int, int]) -> T | None:
    """Remove and return the first one-shot meant for ``command`` (or for any command)."""
    for i, (target, value) in enumerate(pending):
        if target is None or target == command:
            del pending[i]
            return value
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GA 467 SAM reader simulator on a pty")
    parser.add_argument("--link", type=Path, help="keep this symlink pointing at the pty")
    parser.add_argument("--control-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--card", choices=sorted(SYNTHETIC_CARDS), help="a card placed at start")
    parser.add_argument("--halt-after-read", action="store_true")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=STANDARD.name)
    args = parser.parse_args(argv)
    sim = SamSimulator(
        link_path=args.link, halt_after_read=args.halt_after_read, profile=PROFILES[args.profile]
    )
    sim.start()
    if args.card:
        sim.insert(SYNTHETIC_CARDS[args.card])
    control = sim.serve_control(port=args.control_port)
    ready = {"port": sim.port, "link": str(args.link or ""), "control": control}
    return run_until_signal(ready, sim.stop)


if __name__ == "__main__":
    sys.exit(main())
