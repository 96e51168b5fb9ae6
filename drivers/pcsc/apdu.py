"""ISO 7816-4 commands and answers: building APDUs, status words as typed errors, BER-TLV.

pyscard sends APDUs and returns data and SW1 SW2; it does not issue GET RESPONSE for ``61xx``
nor re-send with the right Le for ``6Cxx``. :func:`exchange` does, the way OpenSC's
``sc_transmit`` does, with a bound on the number of rounds.
"""

from __future__ import annotations

from collections.abc import Callable

from flows.errors import ProtocolError

Transmit = Callable[[bytes], tuple[bytes, int, int]]
"""Send one command APDU; return (data, SW1, SW2)."""


class CardError(ProtocolError):
    """A status word other than success."""

    translation_key = "error.card.failed"
    sw = 0x0000

    def __init__(self, sw: int | None = None, message: str = "") -> None:
        if sw is not None:
            self.sw = sw
        super().__init__(message or f"SW {self.sw:04X}")


class FileNotFound(CardError):
    translation_key = "error.card.unsupported"


class RecordNotFoundOnCard(CardError):
    translation_key = "error.card.unsupported"


class SecurityNotSatisfied(CardError):
    """The card wants a PIN (or other authentication) before it answers."""

    translation_key = "error.card.pin_required"


class WrongLength(CardError):
    translation_key = "error.card.failed"


class NotSupported(CardError):
    translation_key = "error.card.unsupported"


class MalformedResponse(ProtocolError):
    translation_key = "error.card.failed"


_ERRORS: dict[int, type[CardError]] = {
    0x6A82: FileNotFound,
    0x6A83: RecordNotFoundOnCard,
    0x6982: SecurityNotSatisfied,
    0x6983: SecurityNotSatisfied,
    0x6700: WrongLength,
    0x6D00: NotSupported,
    0x6E00: NotSupported,
    0x6A81: NotSupported,
}


def status_error(sw: int) -> CardError:
    return _ERRORS.get(sw, CardError)(sw)


SELECT_REFUSED = frozenset({0x6A86, 0x6A81, 0x6D00, 0x6A82, 0x6B00})
"""Answers to a SELECT that mean "not in this form" (incorrect P1-P2, function not supported,
instruction not supported, file not found, wrong P1-P2): try the next form before giving up."""


def select_aid(aid: bytes, *, le: bool = True) -> bytes:
    """SELECT by DF name; ``le=False`` leaves Le out (cards that answer 6700 to a case-4 SELECT)."""
    return bytes([0x00, 0xA4, 0x04, 0x00, len(aid)]) + aid + (b"\x00" if le else b"")


def select_file(fid: int, p1: int = 0x00) -> bytes:
    """SELECT an EF by its identifier: P1 = 00 (by id) or 02 (an EF under the current DF)."""
    return bytes([0x00, 0xA4, p1, 0x00, 0x02, fid >> 8, fid & 0xFF])


def select_path(path: bytes, *, from_mf: bool) -> bytes:
    """SELECT by path: P1 = 08 from the MF, or 09 from the current DF."""
    return bytes([0x00, 0xA4, 0x08 if from_mf else 0x09, 0x00, len(path)]) + path


def read_record(number: int, le: int = 0) -> bytes:
    """READ RECORD of record ``number`` in the current EF (P2 = 04)."""
    return bytes([0x00, 0xB2, number, 0x04, le])


def read_binary(offset: int, le: int = 0) -> bytes:
    return bytes([0x00, 0xB0, (offset >> 8) & 0x7F, offset & 0xFF, le])


def get_response(le: int) -> bytes:
    return bytes([0x00, 0xC0, 0x00, 0x00, le])


MAX_ROUNDS = 16


def exchange(transmit: Transmit, apdu: bytes) -> bytes:
    """Send ``apdu``; follow ``61xx`` with GET RESPONSE and ``6Cxx`` with a re-send; raise on
    any other status than 9000. Returns the whole response data."""
    data = b""
    command = apdu
    for _ in range(MAX_ROUNDS):
        chunk, sw1, sw2 = transmit(command)
        if sw1 == 0x6C:  # wrong Le: the card says how many bytes it has
            command = command[:-1] + bytes([sw2]) if len(command) > 4 else command + bytes([sw2])
            continue
        data += chunk
        if sw1 == 0x61:  # more data waiting
            command = get_response(sw2)
            continue
        sw = (sw1 << 8) | sw2
        if sw != 0x9000:
            raise status_error(sw)
        return data
    raise MalformedResponse("the card kept asking for more rounds")


def parse_tlv(data: bytes) -> list[tuple[int, bytes]]:
    """Simple BER-TLV: one- or two-byte tags, short and long (81/82) lengths; no nesting."""
    items: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag & 0x1F == 0x1F:
            if i >= len(data):
                raise MalformedResponse("truncated tag")
            tag = (tag << 8) | data[i]
            i += 1
        if i >= len(data):
            raise MalformedResponse("missing length")
        length = data[i]
        i += 1
        if length == 0x81 or length == 0x82:
            count = length - 0x80
            if i + count > len(data):
                raise MalformedResponse("truncated length")
            length = int.from_bytes(data[i : i + count], "big")
            i += count
        elif length > 0x80:
            raise MalformedResponse("unsupported length form")
        if i + length > len(data):
            raise MalformedResponse("value longer than the data")
        items.append((tag, data[i : i + length]))
        i += length
    return items
