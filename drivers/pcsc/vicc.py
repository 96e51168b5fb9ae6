"""A virtual smart card speaking the vpcd socket protocol to a real pcscd (vsmartcard-vpcd).

vpcd (the reader driver loaded by pcscd) listens on a TCP port; a virtual card connects to it to
be "inserted" and closes the connection to be "removed". Messages are a two-byte big-endian
length and a payload: one byte is a control code (00 power off, 01 power on, 02 reset, 04 get
ATR), anything longer is a command APDU to answer. This card holds the social security card's
file structure (see :mod:`drivers.pcsc.profiles`) with synthetic data. By default it answers
like many real ones: SELECT of the application with ``61xx`` (GET RESPONSE needed), SELECT of an
EF with P1 = 02 or 00, READ RECORD with ``Le = 00`` with ``6Cxx`` (re-send with the right
length). A :class:`CardBehaviour` from :data:`BEHAVIOURS` makes it another issuer's card: one
SELECT form only, the FCI with ``9000``, ``6700`` to a wrong Le, ``61xx`` after every READ
RECORD, answers chained in small pieces behind a T=1 ATR, other padding.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass

from drivers.pcsc.profiles import SOCIAL_SECURITY, SOCIAL_SECURITY_SIZES, encode
from flows.identity import NATIONS
from flows.models import Identity

ATR = bytes.fromhex("3B6800000073C84013009000")  # T=0
ATR_T1 = bytes.fromhex("3B8180018080")  # T=1 only (TD2 = 01), one historical byte, TCK
FCI = bytes.fromhex("6F0F840F") + SOCIAL_SECURITY.aid[:15]


@dataclass(frozen=True, slots=True)
class CardBehaviour:
    """How one issuer's card answers, where cards differ."""

    name: str
    select_p1: frozenset[int] = frozenset({0x00, 0x02})  # EF SELECT forms accepted (09: path)
    refused: int = 0x6A86  # the answer to a SELECT form it does not accept
    fci_at_once: bool = False  # SELECT AID answers FCI + 9000 instead of 61xx
    wrong_le: str = "6C"  # READ RECORD with a wrong Le: "6C" (6Cxx), "6700", or "any" (Le 00 ok)
    chained_reads: bool = False  # READ RECORD answers 61xx: the record comes by GET RESPONSE
    chunk: int = 0  # GET RESPONSE gives at most this many bytes, 61xx for the rest (0: all)
    padding: bytes = b" "
    atr: bytes = ATR
    le_on_select: bool = True  # False: a SELECT AID with Le is answered 6700
    note: str = ""


FIELD = CardBehaviour("field", note="61xx, P1 = 02 or 00, 6Cxx to Le = 00, spaces")

BEHAVIOURS: dict[str, CardBehaviour] = {
    b.name: b
    for b in (
        FIELD,
        CardBehaviour("p1_02_only", frozenset({0x02}), 0x6A86, note="P1 = 00 refused: 6A86"),
        CardBehaviour("p1_00_only", frozenset({0x00}), 0x6A82, note="P1 = 02 refused: 6A82"),
        CardBehaviour("p1_00_only_6d00", frozenset({0x00}), 0x6D00, note="P1 = 02: 6D00"),
        CardBehaviour("path_only", frozenset({0x09}), 0x6A81, note="only SELECT by path"),
        CardBehaviour("fci_9000", fci_at_once=True, note="SELECT AID: FCI with 9000"),
        CardBehaviour("exact_le", wrong_le="6700", note="Le = 00 answered 6700, no length"),
        CardBehaviour("any_le", wrong_le="any", note="Le = 00 answers the record"),
        CardBehaviour("get_response_reads", chained_reads=True, note="61xx after READ RECORD"),
        CardBehaviour(
            "t1_chained",
            atr=ATR_T1,
            fci_at_once=False,
            chained_reads=True,
            chunk=8,
            note="T=1; every answer in 8-byte pieces behind 61xx",
        ),
        CardBehaviour("pad_00", padding=b"\x00", note="values padded with 00"),
        CardBehaviour("pad_ff", padding=b"\xff", note="values padded with FF"),
        CardBehaviour("no_le_on_select", le_on_select=False, note="case-4 SELECT: 6700"),
    )
}

_NATION_CODES = {name: code for code, name in NATIONS.items()}


def card_files(identity: Identity, padding: bytes = b" ") -> dict[int, dict[int, bytes]]:
    """EF → record number → TLV record, as the card stores them."""
    values = {
        "id_number": identity.id_number,
        "name": identity.name,
        "sex": {"男": "1", "女": "2"}.get(identity.sex, "0"),
        "nation": _NATION_CODES.get(identity.nation, "97"),
        "birth_date": identity.birth_date,
        "valid_to": identity.valid_to,
    }
    files: dict[int, dict[int, bytes]] = {0xEF05: {}, 0xEF06: {}}
    for spec in SOCIAL_SECURITY.fields:
        size = SOCIAL_SECURITY_SIZES.get(spec.record, 0)
        value = encode(values[spec.field], spec.encoding, size, padding)
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
        behaviour: CardBehaviour = FIELD,
    ) -> None:
        self.host = host
        self.port = port
        self.aid = aid
        self.behaviour = behaviour
        self.files = card_files(identity, behaviour.padding)
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
            return self.behaviour.atr
        return None

    def _later(self, data: bytes) -> bytes:
        """Answer ``61xx``: ``data`` waits for GET RESPONSE."""
        self._pending = data
        return bytes([0x61, min(len(data), self.behaviour.chunk or 256) & 0xFF])

    def _apdu(self, apdu: bytes) -> bytes:
        self.apdus.append(apdu)
        how = self.behaviour
        ins, p1, p2 = apdu[1], apdu[2], apdu[3]
        if ins == 0xA4 and p1 == 0x04:  # SELECT by AID
            aid = apdu[5 : 5 + apdu[4]]
            if not how.le_on_select and len(apdu) > 5 + apdu[4]:
                return b"\x67\x00"
            if aid != self.aid:
                return b"\x6a\x82"
            self._selected_app = True
            self._current = None
            return FCI + b"\x90\x00" if how.fci_at_once else self._later(FCI)
        if ins == 0xC0:  # GET RESPONSE
            size = how.chunk or 256
            data, self._pending = self._pending[:size], self._pending[size:]
            if not data:
                return b"\x6f\x00"
            if self._pending:  # chained: more behind this piece
                return data + bytes([0x61, min(len(self._pending), size) & 0xFF])
            return data + b"\x90\x00"
        if ins == 0xA4 and p1 in (0x00, 0x02, 0x09):  # SELECT EF (by id, in the DF, by path)
            if p1 not in how.select_p1:
                return how.refused.to_bytes(2, "big")
            fid = int.from_bytes(apdu[5 : 5 + apdu[4]][-2:], "big")
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
            if le != len(record) and not (how.wrong_le == "any" and le == 0):
                if how.wrong_le == "6700":
                    return b"\x67\x00"
                return bytes([0x6C, len(record)])
            if how.chained_reads:
                return self._later(record)
            return record + b"\x90\x00"
        return b"\x6d\x00"
