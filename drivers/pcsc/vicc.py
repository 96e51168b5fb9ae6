"""A virtual smart card speaking the vpcd socket protocol to a real pcscd (vsmartcard-vpcd).

vpcd (the reader driver loaded by pcscd) listens on a TCP port; a virtual card connects to it to
be "inserted" and closes the connection to be "removed". Messages are a two-byte big-endian
length and a payload: one byte is a control code (00 power off, 01 power on, 02 reset, 04 get
ATR), anything longer is a command APDU to answer. This card holds the social security card's
file structure (see :mod:`drivers.pcsc.profiles`) with synthetic data, and answers like many
real ones: SELECT of the application with ``61xx`` (GET RESPONSE needed), READ RECORD with
``Le = 00`` with ``6Cxx`` (re-send with the right length).
"""

from __future__ import annotations

import contextlib
import socket
import threading

from drivers.pcsc.profiles import SOCIAL_SECURITY, encode
from flows.models import Identity

ATR = bytes.fromhex("3B6800000073C84013009000")
FCI = bytes.fromhex("6F0F840F") + SOCIAL_SECURITY.aid[:15]
SIZES = {0x08: 18, 0x09: 30, 0x0A: 1, 0x0B: 1, 0x0D: 4, 0x06: 4}


def card_files(identity: Identity) -> dict[int, dict[int, bytes]]:
    """EF → record number → TLV record, as the card stores them."""
    values = {
        "id_number": identity.id_number,
        "name": identity.name,
        "sex": {"男": "1", "女": "2"}.get(identity.sex, "0"),
        "nation": "01" if identity.nation in ("汉", "") else "97",
        "birth_date": identity.birth_date,
        "valid_to": identity.valid_to,
    }
    files: dict[int, dict[int, bytes]] = {0xEF05: {}, 0xEF06: {}}
    for spec in SOCIAL_SECURITY.fields:
        value = encode(values[spec.field], spec.encoding, SIZES.get(spec.record, 0))
        files[spec.fid][spec.record] = bytes([spec.record, len(value)]) + value
    files[0xEF05][0x07] = bytes([0x07, 9]) + b"A12345678"  # card number
    return files


class VirtualCard:
    def __init__(
        self,
        port: int,
        identity: Identity,
        *,
        host: str = "127.0.0.1",
        aid: bytes = SOCIAL_SECURITY.aid,
        binary_files: dict[int, bytes] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.aid = aid
        self.files = card_files(identity)
        self.binary_files = dict(binary_files or {})  # transparent EFs for READ BINARY
        self.pin_required = False  # some issuers want a PIN before EF06 (SW 6982)
        self.apdus: list[bytes] = []  # commands seen, for tests
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._selected_app = False
        self._current: int | None = None
        self._pending = b""

    def insert(self, timeout_s: float = 5.0) -> None:
        self._sock = socket.create_connection((self.host, self.port), timeout=timeout_s)
        self._sock.settimeout(None)
        # small answers must not wait for Nagle's algorithm (≈40 ms per APDU otherwise)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._thread = threading.Thread(target=self._serve, args=(self._sock,), daemon=True)
        self._thread.start()

    def remove(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                head = self._recv(sock, 2)
                body = self._recv(sock, int.from_bytes(head, "big"))
                answer = self._control(body[0]) if len(body) == 1 else self._apdu(body)
                if answer is not None:
                    sock.sendall(len(answer).to_bytes(2, "big") + answer)
        except (OSError, ConnectionError):
            return

    @staticmethod
    def _recv(sock: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            # vpcd writes the length and the APDU separately; acknowledging at once keeps its
            # second write from waiting on our delayed ACK (Nagle on its side, ≈40 ms a round)
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("vpcd closed the connection")
            data += chunk
        return data

    def _control(self, code: int) -> bytes | None:
        if code in (0x00, 0x01, 0x02):  # power off, power on, reset
            self._selected_app = False
            self._current = None
            return None
        if code == 0x04:
            return ATR
        return None

    def _apdu(self, apdu: bytes) -> bytes:
        self.apdus.append(apdu)
        ins, p1, p2 = apdu[1], apdu[2], apdu[3]
        if ins == 0xA4 and p1 == 0x04:  # SELECT by AID
            aid = apdu[5 : 5 + apdu[4]]
            if aid != self.aid:
                return b"\x6a\x82"
            self._selected_app = True
            self._pending = FCI
            return bytes([0x61, len(FCI)])
        if ins == 0xC0:  # GET RESPONSE
            data, self._pending = self._pending, b""
            return data + b"\x90\x00" if data else b"\x6f\x00"
        if ins == 0xA4 and p1 == 0x00:  # SELECT EF
            fid = int.from_bytes(apdu[5:7], "big")
            if not self._selected_app or (fid not in self.files and fid not in self.binary_files):
                return b"\x6a\x82"
            self._current = fid
            return b"\x90\x00"
        if ins == 0xB0:  # READ BINARY of the current (transparent) EF
            content = self.binary_files.get(self._current or -1)
            if content is None:
                return b"\x69\x86"
            offset, le = ((p1 & 0x7F) << 8) | p2, apdu[4] if len(apdu) > 4 else 0
            chunk = content[offset : offset + (le or 256)]
            return chunk + b"\x90\x00" if chunk else b"\x6b\x00"
        if ins == 0xB2 and p2 == 0x04:  # READ RECORD p1 of the current EF
            if self._current is None:
                return b"\x69\x86"
            if self.pin_required and self._current == 0xEF06:
                return b"\x69\x82"
            record = self.files[self._current].get(p1)
            if record is None:
                return b"\x6a\x83"
            le = apdu[4] if len(apdu) > 4 else 0
            if le != len(record):
                return bytes([0x6C, len(record)])
            return record + b"\x90\x00"
        return b"\x6d\x00"
